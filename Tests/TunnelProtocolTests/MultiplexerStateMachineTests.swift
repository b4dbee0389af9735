import HTTPTypes
import NIOCore
import Testing

@testable import TunnelProtocol

/// Frames a peer sends, built as on the wire.
enum PeerFrame {
    static func requestHead(_ id: UInt32, method: String = "POST", endStream: Bool = false) -> Frame {
        var payload = ByteBuffer()
        try! RequestHead(method: method, target: "/hook", headerFields: [.contentType: "application/json"]).encode(into: &payload)
        return Frame(type: .requestHead, flags: endStream ? .endStream : [], streamID: id, payload: payload)
    }

    static func responseHead(_ id: UInt32, status: Int = 200, endStream: Bool = false) -> Frame {
        var payload = ByteBuffer()
        try! ResponseHead(status: status, headerFields: [:]).encode(into: &payload)
        return Frame(type: .responseHead, flags: endStream ? .endStream : [], streamID: id, payload: payload)
    }

    static func data(_ id: UInt32, _ text: String, endStream: Bool = false) -> Frame {
        Frame(type: .data, flags: endStream ? .endStream : [], streamID: id, payload: ByteBuffer(string: text))
    }

    static func data(_ id: UInt32, count: Int, endStream: Bool = false) -> Frame {
        Frame(type: .data, flags: endStream ? .endStream : [], streamID: id, payload: ByteBuffer(repeating: 0x61, count: count))
    }

    static func end(_ id: UInt32) -> Frame {
        Frame(type: .end, streamID: id)
    }

    static func reset(_ id: UInt32, _ reason: StreamResetReason) -> Frame {
        var payload = ByteBuffer()
        reason.encode(into: &payload)
        return Frame(type: .reset, streamID: id, payload: payload)
    }

    static func windowUpdate(_ id: UInt32, _ increment: UInt32) -> Frame {
        var payload = ByteBuffer()
        payload.writeInteger(increment)
        return Frame(type: .windowUpdate, streamID: id, payload: payload)
    }
}

/// A ``MultiplexerStateMachine/ReceiveAction`` reduced to what a test compares.
enum Seen: Equatable {
    enum Part: Equatable {
        case responseHead(status: Int, endStream: Bool)
        case data(String, endStream: Bool)
        case end
    }

    case open(UInt32, method: String, endStream: Bool)
    case deliver(UInt32, Part, closesStream: Bool)
    case credit(UInt32)
    case resetByPeer(UInt32, StreamResetReason)
    case resetStream(UInt32, StreamResetReason)
    case ignore

    init(_ action: MultiplexerStateMachine.ReceiveAction) {
        switch action {
        case .open(let id, let head, let endStream):
            self = .open(id, method: head.method, endStream: endStream)
        case .deliver(let id, let part, let closesStream):
            let seen: Part
            switch part {
            case .responseHead(let head, let endStream): seen = .responseHead(status: head.status, endStream: endStream)
            case .data(let buffer, let endStream): seen = .data(String(buffer: buffer), endStream: endStream)
            case .end: seen = .end
            }
            self = .deliver(id, seen, closesStream: closesStream)
        case .credit(let id): self = .credit(id)
        case .resetByPeer(let id, let reason): self = .resetByPeer(id, reason)
        case .resetStream(let id, let reason): self = .resetStream(id, reason)
        case .ignore: self = .ignore
        }
    }
}

extension MultiplexerStateMachine {
    /// Receives `frame` and reduces the action for comparison.
    mutating func take(_ frame: Frame) throws(TunnelProtocolError) -> Seen {
        Seen(try self.receive(frame))
    }
}

@Suite struct MultiplexerStateMachineTests {
    static let strayFlood = TunnelProtocolError.unexpectedFrame("too many frames for streams that are not open")

    /// An acceptor with stream `id` accepted (request body to follow) and its answer's head sent.
    static func acceptorAnswering(_ id: UInt32 = 1, configuration: TunnelConfiguration = .init()) throws -> MultiplexerStateMachine {
        var machine = MultiplexerStateMachine(role: .acceptor, configuration: configuration)
        _ = try machine.receive(PeerFrame.requestHead(id))
        #expect(machine.sendHead(on: id, endStream: false) == .send)
        return machine
    }

    // MARK: Opening and ids

    @Test func theOpenerNumbersStreamsWithOddIDsAndNeverReusesOne() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        #expect(try machine.openStream() == 1)
        #expect(try machine.openStream() == 3)
        #expect(machine.resetStream(3) == true)
        #expect(machine.resetStream(1) == true)
        #expect(machine.openStreamCount == 0)
        #expect(try machine.openStream() == 5)
        #expect(machine.isOpen(5))
        #expect(!machine.isOpen(1) && !machine.isOpen(3))
    }

    @Test func aStreamTheOpenerOpenedHasTheConfiguredWindow() throws {
        var machine = MultiplexerStateMachine(role: .opener, configuration: .init(initialWindow: 1000))
        let id = try machine.openStream()
        #expect(machine.sendWindow(id) == 1000)
        #expect(machine.sendWindow(id + 2) == 0)
    }

    @Test func theAcceptorOpensAStreamOnARequestHead() throws {
        var machine = MultiplexerStateMachine(role: .acceptor, configuration: .init(initialWindow: 500))
        #expect(try machine.take(PeerFrame.requestHead(1, method: "PUT")) == .open(1, method: "PUT", endStream: false))
        #expect(try machine.take(PeerFrame.requestHead(3, endStream: true)) == .open(3, method: "POST", endStream: true))
        #expect(machine.openStreamCount == 2)
        #expect(machine.isOpen(1) && machine.isOpen(3))
        #expect(machine.sendWindow(1) == 500)
    }

    @Test func theAcceptorHandsOverTheWholeRequestHead() throws {
        var machine = MultiplexerStateMachine(role: .acceptor)
        guard case .open(let id, let head, endStream: false) = try machine.receive(PeerFrame.requestHead(7)) else {
            Issue.record("expected .open")
            return
        }
        #expect(id == 7)
        #expect(head == RequestHead(method: "POST", target: "/hook", headerFields: [.contentType: "application/json"]))
    }

    @Test func streamIDsMayArriveOutOfOrderButAnOpenIDNotTwice() throws {
        var machine = MultiplexerStateMachine(role: .acceptor)
        #expect(try machine.take(PeerFrame.requestHead(5, endStream: true)) == .open(5, method: "POST", endStream: true))
        #expect(try machine.take(PeerFrame.requestHead(3)) == .open(3, method: "POST", endStream: false))
        #expect(throws: TunnelProtocolError.invalidStreamID(5)) { try machine.receive(PeerFrame.requestHead(5)) }
        #expect(machine.openStreamCount == 2)
    }

    @Test func anEvenStreamIDIsAConnectionError() {
        var machine = MultiplexerStateMachine(role: .acceptor)
        #expect(throws: TunnelProtocolError.invalidStreamID(4)) { try machine.receive(PeerFrame.requestHead(4)) }
        #expect(machine.openStreamCount == 0)
    }

    @Test func aRequestHeadSentToTheOpenerIsAConnectionError() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        _ = try machine.openStream()
        #expect(throws: TunnelProtocolError.unexpectedFrame("REQUEST_HEAD sent to the server")) {
            try machine.receive(PeerFrame.requestHead(1))
        }
    }

    @Test func aResponseHeadSentToTheAcceptorIsAConnectionError() throws {
        var machine = MultiplexerStateMachine(role: .acceptor)
        _ = try machine.receive(PeerFrame.requestHead(1))
        #expect(throws: TunnelProtocolError.unexpectedFrame("RESPONSE_HEAD sent to the client")) {
            try machine.receive(PeerFrame.responseHead(1))
        }
    }

    @Test func aHeadThatDoesNotDecodeIsAConnectionError() throws {
        var acceptor = MultiplexerStateMachine(role: .acceptor)
        #expect(throws: TunnelProtocolError.truncated("method length")) {
            try acceptor.receive(Frame(type: .requestHead, streamID: 1))
        }
        var opener = MultiplexerStateMachine(role: .opener)
        _ = try opener.openStream()
        #expect(throws: TunnelProtocolError.invalidField("status 42")) {
            var payload = ByteBuffer()
            payload.writeInteger(UInt16(42))
            payload.writeInteger(UInt16(0))
            return try opener.receive(Frame(type: .responseHead, streamID: 1, payload: payload))
        }
    }

    // MARK: Stream errors: RESET, the stream is gone

    @Test func bodyBeforeTheHeadResetsTheStream() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let id = try machine.openStream()
        _ = machine.sendHead(on: id, endStream: true)
        #expect(try machine.take(PeerFrame.data(id, "early")) == .resetStream(id, StreamResetReason(.protocolError, "body before head")))
        #expect(!machine.isOpen(id))
        // What the peer still sends on it is a stray, not a second error.
        #expect(try machine.take(PeerFrame.responseHead(id)) == .ignore)
        #expect(try machine.take(PeerFrame.end(id)) == .ignore)
    }

    @Test func anEndBeforeTheHeadResetsTheStream() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let id = try machine.openStream()
        #expect(try machine.take(PeerFrame.end(id)) == .resetStream(id, StreamResetReason(.protocolError, "end before head")))
        #expect(!machine.isOpen(id))
    }

    @Test func aSecondHeadResetsTheStream() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let id = try machine.openStream()
        _ = machine.sendHead(on: id, endStream: false)
        #expect(try machine.take(PeerFrame.responseHead(id)) == .deliver(id, .responseHead(status: 200, endStream: false), closesStream: false))
        #expect(
            try machine.take(PeerFrame.responseHead(id, status: 500))
                == .resetStream(id, StreamResetReason(.protocolError, "a second head on one stream"))
        )
        #expect(!machine.isOpen(id))
        #expect(machine.sendData(on: id, count: 1, endStream: false) == .drop)
    }

    @Test func bodyAfterTheEndResetsTheStream() throws {
        var afterEnd = try Self.acceptorAnswering()
        #expect(try afterEnd.take(PeerFrame.end(1)) == .deliver(1, .end, closesStream: false))
        #expect(try afterEnd.take(PeerFrame.data(1, "late")) == .resetStream(1, StreamResetReason(.protocolError, "body after the end")))
        #expect(!afterEnd.isOpen(1))

        var afterEndStream = try Self.acceptorAnswering()
        #expect(
            try afterEndStream.take(PeerFrame.data(1, "last", endStream: true)) == .deliver(1, .data("last", endStream: true), closesStream: false)
        )
        #expect(try afterEndStream.take(PeerFrame.end(1)) == .resetStream(1, StreamResetReason(.protocolError, "a second end")))

        var afterHeadEndStream = MultiplexerStateMachine(role: .acceptor)
        _ = try afterHeadEndStream.receive(PeerFrame.requestHead(1, endStream: true))
        #expect(
            try afterHeadEndStream.take(PeerFrame.data(1, "x")) == .resetStream(1, StreamResetReason(.protocolError, "body after the end"))
        )
    }

    // MARK: Ending normally

    @Test func aWholeExchangeEndsTheStreamOnTheLastFrameReceived() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let id = try machine.openStream()
        #expect(machine.sendHead(on: id, endStream: false) == .send)
        #expect(machine.sendData(on: id, count: 4, endStream: true) == .send)
        #expect(machine.isOpen(id))
        #expect(try machine.take(PeerFrame.responseHead(id)) == .deliver(id, .responseHead(status: 200, endStream: false), closesStream: false))
        #expect(try machine.take(PeerFrame.data(id, "ok")) == .deliver(id, .data("ok", endStream: false), closesStream: false))
        #expect(try machine.take(PeerFrame.data(id, "!", endStream: true)) == .deliver(id, .data("!", endStream: true), closesStream: true))
        #expect(!machine.isOpen(id))
        #expect(machine.openStreamCount == 0)
        // Later frames for it are strays.
        #expect(try machine.take(PeerFrame.end(id)) == .ignore)
        #expect(try machine.take(PeerFrame.windowUpdate(id, 10)) == .ignore)
    }

    @Test func aResponseHeadWithEndStreamEndsTheStreamWhenTheRequestIsComplete() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let id = try machine.openStream()
        #expect(machine.sendHead(on: id, endStream: true) == .send)
        #expect(
            try machine.take(PeerFrame.responseHead(id, status: 204, endStream: true))
                == .deliver(id, .responseHead(status: 204, endStream: true), closesStream: true)
        )
        #expect(!machine.isOpen(id))
    }

    @Test func anEndReceivedLastEndsTheStream() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let id = try machine.openStream()
        _ = machine.sendHead(on: id, endStream: true)
        _ = try machine.receive(PeerFrame.responseHead(id))
        #expect(try machine.take(PeerFrame.end(id)) == .deliver(id, .end, closesStream: true))
        #expect(!machine.isOpen(id))
    }

    @Test func theLastFrameSentEndsTheStream() throws {
        // Head with END_STREAM.
        var byHead = MultiplexerStateMachine(role: .acceptor)
        _ = try byHead.receive(PeerFrame.requestHead(1, endStream: true))
        #expect(byHead.sendHead(on: 1, endStream: true) == .sendClosing)
        #expect(!byHead.isOpen(1))
        #expect(byHead.sendEnd(on: 1) == .drop)

        // DATA with END_STREAM.
        var byData = MultiplexerStateMachine(role: .acceptor)
        _ = try byData.receive(PeerFrame.requestHead(1, endStream: true))
        #expect(byData.sendHead(on: 1, endStream: false) == .send)
        #expect(byData.sendData(on: 1, count: 10, endStream: false) == .send)
        #expect(byData.sendData(on: 1, count: 10, endStream: true) == .sendClosing)
        #expect(byData.openStreamCount == 0)

        // END.
        var byEnd = try Self.acceptorAnswering()
        _ = try byEnd.receive(PeerFrame.data(1, "body", endStream: true))
        #expect(byEnd.isOpen(1))
        #expect(byEnd.sendEnd(on: 1) == .sendClosing)
        #expect(!byEnd.isOpen(1))
    }

    @Test func sendingOnAStreamThatIsNotOpenIsDropped() {
        var machine = MultiplexerStateMachine(role: .opener)
        #expect(machine.sendHead(on: 1, endStream: false) == .drop)
        #expect(machine.sendData(on: 1, count: 1, endStream: false) == .drop)
        #expect(machine.sendEnd(on: 1) == .drop)
    }

    // MARK: Resets

    @Test func aResetByThePeerEndsTheStream() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let id = try machine.openStream()
        _ = machine.sendHead(on: id, endStream: false)
        let reason = StreamResetReason(.timeout, "too slow")
        #expect(try machine.take(PeerFrame.reset(id, reason)) == .resetByPeer(id, reason))
        #expect(!machine.isOpen(id))
        #expect(machine.sendData(on: id, count: 1, endStream: false) == .drop)
        #expect(machine.resetStream(id) == false)
        // A second RESET is a stray.
        #expect(try machine.take(PeerFrame.reset(id, reason)) == .ignore)
    }

    @Test func aResetWithoutACodeIsAConnectionError() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let id = try machine.openStream()
        #expect(throws: TunnelProtocolError.truncated("reset code")) {
            try machine.receive(Frame(type: .reset, streamID: id, payload: ByteBuffer(bytes: [0])))
        }
    }

    @Test func aLocalResetIsOwedOnceThenTheStreamIsGone() throws {
        var machine = try Self.acceptorAnswering(1)
        #expect(machine.resetStream(1) == true)
        #expect(machine.resetStream(1) == false)
        #expect(!machine.isOpen(1))
        #expect(machine.sendEnd(on: 1) == .drop)
        #expect(machine.consume(100_000, on: 1) == nil)
        #expect(try machine.take(PeerFrame.data(1, "in flight")) == .ignore)
        // A stream that ended normally owes no RESET either.
        var ended = MultiplexerStateMachine(role: .acceptor)
        _ = try ended.receive(PeerFrame.requestHead(1, endStream: true))
        _ = ended.sendHead(on: 1, endStream: true)
        #expect(ended.resetStream(1) == false)
    }

    // MARK: Flow control

    @Test func sendingSpendsTheWindowAndWindowUpdatesRefillIt() throws {
        var machine = MultiplexerStateMachine(role: .opener, configuration: .init(initialWindow: 100))
        let id = try machine.openStream()
        _ = machine.sendHead(on: id, endStream: false)
        #expect(machine.sendData(on: id, count: 60, endStream: false) == .send)
        #expect(machine.sendWindow(id) == 40)
        #expect(machine.sendData(on: id, count: 40, endStream: false) == .send)
        #expect(machine.sendWindow(id) == 0)
        #expect(try machine.take(PeerFrame.windowUpdate(id, 25)) == .credit(id))
        #expect(machine.sendWindow(id) == 25)
        #expect(try machine.take(PeerFrame.windowUpdate(id, 75)) == .credit(id))
        #expect(machine.sendWindow(id) == 100)
        // Credit for a body already ended is harmless and ignored.
        #expect(machine.sendEnd(on: id) == .send)
        #expect(try machine.take(PeerFrame.windowUpdate(id, 10)) == .ignore)
        #expect(machine.isOpen(id))
    }

    @Test func aWindowUpdateOfZeroIsAConnectionError() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let id = try machine.openStream()
        #expect(throws: TunnelProtocolError.invalidField("window increment")) {
            try machine.receive(PeerFrame.windowUpdate(id, 0))
        }
        // Also for a stream that is not open, and without the u32.
        #expect(throws: TunnelProtocolError.invalidField("window increment")) {
            try machine.receive(PeerFrame.windowUpdate(99, 0))
        }
        #expect(throws: TunnelProtocolError.invalidField("window increment")) {
            try machine.receive(Frame(type: .windowUpdate, streamID: id, payload: ByteBuffer(bytes: [0, 1])))
        }
    }

    @Test func aPeerThatIgnoresTheWindowIsAConnectionError() throws {
        var machine = try Self.acceptorAnswering(configuration: .init(initialWindow: 100, maxDataChunk: 100))
        #expect(
            try machine.take(PeerFrame.data(1, count: 100))
                == .deliver(1, .data(String(repeating: "a", count: 100), endStream: false), closesStream: false)
        )
        #expect(throws: TunnelProtocolError.flowControlViolation(streamID: 1)) {
            try machine.receive(PeerFrame.data(1, count: 1))
        }
    }

    @Test func creditedBytesMayBeSentAgainWithoutAViolation() throws {
        var machine = try Self.acceptorAnswering(configuration: .init(initialWindow: 100))
        for _ in 0..<10 {
            _ = try machine.receive(PeerFrame.data(1, count: 100))
            #expect(machine.consume(100, on: 1) == 100)
        }
        #expect(machine.isOpen(1))
    }

    @Test func creditGoesBackInQuarterWindowBatches() throws {
        var machine = try Self.acceptorAnswering(configuration: .init(initialWindow: 1000))
        _ = try machine.receive(PeerFrame.data(1, count: 1000))
        #expect(machine.consume(100, on: 1) == nil)
        #expect(machine.consume(149, on: 1) == nil)
        #expect(machine.consume(1, on: 1) == 250)
        #expect(machine.consume(600, on: 1) == 600)
        #expect(machine.consume(50, on: 1) == nil)
    }

    @Test func aTinyWindowCreditsEveryByte() throws {
        var machine = try Self.acceptorAnswering(configuration: .init(initialWindow: 3))
        _ = try machine.receive(PeerFrame.data(1, count: 3))
        #expect(machine.consume(1, on: 1) == 1)
    }

    @Test func noCreditGoesBackOnceThePeerHasEndedItsBody() throws {
        var machine = try Self.acceptorAnswering(configuration: .init(initialWindow: 1000))
        _ = try machine.receive(PeerFrame.data(1, count: 200))
        #expect(machine.consume(200, on: 1) == nil)
        _ = try machine.receive(PeerFrame.data(1, count: 800, endStream: true))
        #expect(machine.consume(800, on: 1) == nil)
        #expect(machine.consume(10, on: 7) == nil)
    }

    // MARK: Strays

    @Test func aFewLateFramesAreIgnoredAFloodEndsTheConnection() throws {
        var machine = MultiplexerStateMachine(role: .acceptor)
        for _ in 0..<64 { #expect(try machine.take(PeerFrame.data(7, "late")) == .ignore) }
        #expect(throws: Self.strayFlood) { try machine.receive(PeerFrame.end(9)) }
    }

    @Test func everyKindOfFrameForAStreamNotOpenCountsAsAStray() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let kinds = [
            PeerFrame.responseHead(9), PeerFrame.data(9, "x"), PeerFrame.end(9),
            PeerFrame.reset(9, StreamResetReason(.cancelled, "")), PeerFrame.windowUpdate(9, 1),
        ]
        for index in 0..<64 { #expect(try machine.take(kinds[index % kinds.count]) == .ignore) }
        for kind in kinds {
            var flooded = machine
            #expect(throws: Self.strayFlood) { try flooded.receive(kind) }
        }
    }

    @Test func eachStreamOpenedAllowsEightMoreStrays() throws {
        // Streams that ended normally, so the allowance is the opened streams' alone.
        var opener = MultiplexerStateMachine(role: .opener)
        for _ in 0..<3 {
            let id = try opener.openStream()
            _ = opener.sendHead(on: id, endStream: true)
            _ = try opener.receive(PeerFrame.responseHead(id, endStream: true))
        }
        #expect(opener.openStreamCount == 0)
        for _ in 0..<(64 + 3 * 8) { #expect(try opener.take(PeerFrame.end(1)) == .ignore) }
        #expect(throws: Self.strayFlood) { try opener.receive(PeerFrame.end(1)) }

        var acceptor = MultiplexerStateMachine(role: .acceptor)
        for id in stride(from: UInt32(1), through: 9, by: 2) {
            _ = try acceptor.receive(PeerFrame.requestHead(id, endStream: true))
            #expect(acceptor.sendHead(on: id, endStream: true) == .sendClosing)
        }
        for _ in 0..<(64 + 5 * 8) { #expect(try acceptor.take(PeerFrame.data(3, "x")) == .ignore) }
        #expect(throws: Self.strayFlood) { try acceptor.receive(PeerFrame.data(3, "x")) }
    }

    /// A sender may fill its window with small DATA frames (a body that arrived in small parts goes
    /// out as it came). When the receiver resets that stream, all of them are still in flight and
    /// arrive as strays: a peer that kept to its window must not lose its connection for it.
    @Test func aWindowOfSmallDataFramesInFlightWhenAStreamIsResetIsNotAFlood() throws {
        var machine = try Self.acceptorAnswering()
        #expect(machine.resetStream(1) == true)
        let window = machine.configuration.initialWindow
        for _ in 0..<(window / 1024) {
            #expect(try machine.take(PeerFrame.data(1, count: 1024)) == .ignore)
        }
        #expect(try machine.take(PeerFrame.end(1)) == .ignore)
    }

    // MARK: Limits and the end of the connection

    @Test func openingMoreThanMaxOpenStreamsIsRefused() throws {
        var machine = MultiplexerStateMachine(role: .opener, configuration: .init(maxOpenStreams: 2))
        let first = try machine.openStream()
        _ = try machine.openStream()
        #expect(throws: StreamResetReason(.tooManyStreams, "too many webhooks in flight on this channel")) {
            try machine.openStream()
        }
        #expect(machine.openStreamCount == 2)
        // A stream that ends makes room.
        #expect(machine.resetStream(first) == true)
        #expect(try machine.openStream() == 5)
    }

    @Test func closingTheConnectionListsTheOpenStreamsAndRefusesNewOnes() throws {
        var machine = MultiplexerStateMachine(role: .opener)
        let ids = try (0..<4).map { _ in try machine.openStream() }
        #expect(machine.resetStream(ids[1]) == true)
        let reason = StreamResetReason(.connectionLost, "bye")
        #expect(machine.connectionClosedReason == nil)
        #expect(machine.closeConnection(reason) == [1, 5, 7])
        #expect(machine.openStreamCount == 0)
        #expect(machine.connectionClosedReason == reason)
        #expect(throws: reason) { try machine.openStream() }
        #expect(machine.sendHead(on: 1, endStream: false) == .drop)
        // Only the first reason counts, and nothing is left to tell.
        #expect(machine.closeConnection(StreamResetReason(.cancelled, "again")) == [])
        #expect(machine.connectionClosedReason == reason)
    }

    @Test func anAcceptorThatClosedIgnoresNewRequests() throws {
        var machine = MultiplexerStateMachine(role: .acceptor)
        _ = try machine.receive(PeerFrame.requestHead(1))
        #expect(machine.closeConnection(StreamResetReason(.connectionLost, "gone")) == [1])
        #expect(try machine.take(PeerFrame.requestHead(3)) == .ignore)
        #expect(machine.openStreamCount == 0)
        #expect(try machine.take(PeerFrame.data(1, "late")) == .ignore)
    }
}

extension MultiplexerStateMachineTests {
    @Test func aWidenedWindowLetsThePeerSendThatMuchBeforeCredit() throws {
        var machine = try Self.acceptorAnswering(configuration: .init(initialWindow: 100, maxDataChunk: 100, widenedWindow: 250))
        #expect(machine.widenReceiveWindow(on: 1) == 150)
        // Granted once: asking again sends nothing.
        #expect(machine.widenReceiveWindow(on: 1) == nil)
        #expect(machine.widenReceiveWindow(on: 99) == nil)
        for _ in 0..<2 { _ = try machine.take(PeerFrame.data(1, count: 100)) }
        _ = try machine.take(PeerFrame.data(1, count: 50))
        #expect(throws: TunnelProtocolError.flowControlViolation(streamID: 1)) {
            try machine.receive(PeerFrame.data(1, count: 1))
        }
    }
}
