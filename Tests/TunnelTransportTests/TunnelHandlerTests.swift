import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
import TunnelProtocol

@testable import TunnelTransport

/// ``TunnelHandler`` on an `EmbeddedChannel`: what it writes for what it reads and for what stream
/// owners ask, and the connection's life (pings, close handshake, the channel going away).
@Suite struct TunnelHandlerTests {
    static let request = RequestHead(method: "POST", target: "/hook", headerFields: [:])
    static let answer = ResponseHead(status: 200, headerFields: [.contentType: "text/plain"])

    // MARK: Accepting streams

    @Test func theAcceptorGetsEachRequestHeadAndItsOwnerTheBody() throws {
        var accepted: [(UInt32, RequestHead, Bool)] = []
        let owner = RecordingOwner()
        let harness = try Harness(role: .acceptor) { _, id, head, endStream in
            accepted.append((id, head, endStream))
            return owner
        }
        try harness.receive(Peer.requestHead(1))
        try #require(accepted.count == 1)
        #expect(accepted[0].0 == 1)
        #expect(accepted[0].1 == RequestHead(method: "POST", target: "/hook", headerFields: [.contentType: "application/json"]))
        #expect(accepted[0].2 == false)
        #expect(harness.handler.isOpen(1))

        try harness.receive(Peer.data(1, "{}"))
        try harness.receive(Peer.data(1, "!", endStream: true))
        #expect(owner.events == [.data("{}", endStream: false), .data("!", endStream: true)])
        #expect(try harness.sent() == [])
    }

    @Test func anAcceptorThatRefusesAStreamResetsIt() throws {
        let harness = try Harness(role: .acceptor) { _, _, _, _ in nil }
        try harness.receive(Peer.requestHead(3, endStream: true))
        #expect(try harness.sent() == [.reset(3, StreamResetReason(.cancelled, "the client refused the stream"))])
        #expect(!harness.handler.isOpen(3))
        #expect(harness.handler.openStreamCount == 0)
    }

    @Test func theAnswerEndsTheStreamAndItsOwnerIsToldOnce() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .acceptor) { _, _, _, _ in owner }
        try harness.receive(Peer.requestHead(1, endStream: true))
        #expect(harness.handler.writeHead(Self.answer, endStream: false, on: 1))
        #expect(harness.handler.writeBody(ByteBuffer(string: "hello"), endStream: true, on: 1))
        #expect(try harness.sent() == [.responseHead(1, status: 200, endStream: false), .data(1, count: 5, endStream: true)])
        #expect(owner.events == [.closed(nil)])
        #expect(!harness.handler.isOpen(1))
        // Nothing more is sent or told for it.
        #expect(!harness.handler.writeHead(Self.answer, endStream: true, on: 1))
        harness.handler.reset(1, StreamResetReason(.cancelled, "late"))
        #expect(try harness.sent() == [])
        #expect(owner.closes.count == 1)
    }

    /// ``TunnelStreamDelegate``: the owner is told once when the stream ends, also when it ends
    /// inside the acceptor (an owner that answers a bodyless request at once, e.g. with an error).
    @Test func anOwnerThatAnswersWhileBeingAcceptedIsToldTheStreamEnded() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .acceptor) { handler, id, _, _ in
            handler.writeHead(ResponseHead(status: 502, headerFields: [:]), endStream: true, on: id)
            return owner
        }
        try harness.receive(Peer.requestHead(1, endStream: true))
        #expect(try harness.sent() == [.responseHead(1, status: 502, endStream: true)])
        #expect(!harness.handler.isOpen(1))
        #expect(owner.events == [.closed(nil)])
    }

    // MARK: Opening streams

    @Test func theOwnerReceivesThePartsInOrderAndIsClosedOnceWhenBothSidesEnded() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .opener)
        let id = try harness.openStream(owner, endStream: true)
        #expect(id == 1)
        #expect(try harness.sent() == [.requestHead(1, method: "POST", endStream: true)])

        try harness.receive(Peer.responseHead(1))
        try harness.receive(Peer.data(1, "a"))
        #expect(owner.closes.isEmpty)
        try harness.receive(Peer.data(1, "b", endStream: true))
        #expect(
            owner.events == [
                .responseHead(status: 200, endStream: false), .data("a", endStream: false), .data("b", endStream: true), .closed(nil),
            ]
        )
        #expect(harness.handler.openStreamCount == 0)
        // A late frame is a stray: no event, no answer.
        try harness.receive(Peer.end(1))
        #expect(owner.closes.count == 1)
        #expect(try harness.sent() == [])
    }

    @Test func anEndClosesTheStreamLikeEndStream() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .opener)
        let id = try harness.openStream(owner)
        harness.handler.writeBody(ByteBuffer(), endStream: true, on: id)
        try harness.receive(Peer.responseHead(id))
        try harness.receive(Peer.end(id))
        #expect(owner.events == [.responseHead(status: 200, endStream: false), .end, .closed(nil)])
    }

    @Test func openingMoreStreamsThanAllowedThrows() throws {
        let harness = try Harness(role: .opener, configuration: .init(maxOpenStreams: 1))
        _ = try harness.handler.openStream(owner: RecordingOwner())
        #expect(throws: StreamResetReason(.tooManyStreams, "too many webhooks in flight on this channel")) {
            try harness.handler.openStream(owner: RecordingOwner())
        }
    }

    // MARK: Writing bodies

    @Test func aBodyGoesOutInChunksUpToTheWindowAndResumesOnCredit() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .opener, configuration: .init(initialWindow: 1000, maxDataChunk: 300))
        let id = try harness.openStream(owner)
        _ = try harness.sent()

        // 2,500 bytes against a window of 1,000: the writer must pause after exactly one window.
        #expect(!harness.handler.writeBody(ByteBuffer(repeating: 1, count: 2500), endStream: false, on: id))
        #expect(
            try harness.sent() == [
                .data(1, count: 300, endStream: false), .data(1, count: 300, endStream: false), .data(1, count: 300, endStream: false),
                .data(1, count: 100, endStream: false),
            ]
        )
        #expect(harness.handler.pendingBytes(on: id) == 1500)
        // More bytes while paused wait behind the others.
        #expect(!harness.handler.writeBody(ByteBuffer(repeating: 2, count: 10), endStream: false, on: id))
        #expect(try harness.sent() == [])

        // Credit that does not clear the backlog sends what it allows and does not wake the writer.
        try harness.receive(Peer.windowUpdate(id, 1000))
        #expect(
            try harness.sent() == [
                .data(1, count: 300, endStream: false), .data(1, count: 300, endStream: false), .data(1, count: 300, endStream: false),
                .data(1, count: 100, endStream: false),
            ]
        )
        #expect(!owner.events.contains(.credit))
        #expect(harness.handler.pendingBytes(on: id) == 510)

        // Credit that clears it does.
        try harness.receive(Peer.windowUpdate(id, 1000))
        #expect(
            try harness.sent() == [
                .data(1, count: 300, endStream: false), .data(1, count: 200, endStream: false), .data(1, count: 10, endStream: false),
            ]
        )
        #expect(owner.events == [.credit])
        #expect(harness.handler.pendingBytes(on: id) == 0)
        #expect(harness.handler.writeBody(ByteBuffer(repeating: 3, count: 5), endStream: false, on: id))
    }

    @Test func theLastChunkOfAPausedBodyCarriesEndStream() throws {
        let harness = try Harness(role: .opener, configuration: .init(initialWindow: 100, maxDataChunk: 60))
        let id = try harness.openStream(RecordingOwner())
        _ = try harness.sent()
        #expect(!harness.handler.writeBody(ByteBuffer(repeating: 1, count: 150), endStream: true, on: id))
        #expect(try harness.sent() == [.data(1, count: 60, endStream: false), .data(1, count: 40, endStream: false)])
        try harness.receive(Peer.windowUpdate(id, 100))
        #expect(try harness.sent() == [.data(1, count: 50, endStream: true)])
        #expect(harness.handler.pendingBytes(on: id) == 0)
    }

    @Test func theLastDataFrameMayEndTheBody() throws {
        let harness = try Harness(role: .opener)
        let id = try harness.openStream(RecordingOwner())
        harness.handler.writeBody(ByteBuffer(string: "first "), endStream: false, on: id)
        harness.handler.writeBody(ByteBuffer(string: "last"), endStream: true, on: id)
        let written = try harness.written()
        // A server does not mask (RFC 6455 §5.1); DATA's header rides as extension data.
        #expect(written.allSatisfy { $0.maskKey == nil })
        #expect(written.dropFirst().allSatisfy { $0.extensionData?.readableBytes == Frame.headerSize })
        let frames = try written.map { try $0.tunnelFrame() }
        #expect(frames.map(\.type) == [.requestHead, .data, .data])
        #expect(frames.map(\.flags) == [[], [], .endStream])
        #expect(frames.dropFirst().map { String(buffer: $0.payload) } == ["first ", "last"])
    }

    @Test func anEmptyLastWriteSendsEnd() throws {
        let harness = try Harness(role: .opener, configuration: .init(initialWindow: 10, maxDataChunk: 10))
        let id = try harness.openStream(RecordingOwner())
        harness.handler.writeBody(ByteBuffer(repeating: 0, count: 10), endStream: false, on: id)
        // The window is spent; END needs none.
        #expect(harness.handler.writeBody(ByteBuffer(), endStream: true, on: id))
        #expect(try harness.sent() == [.requestHead(1, method: "POST", endStream: false), .data(1, count: 10, endStream: false), .end(1)])
    }

    @Test func consumedBytesAreCreditedBackAtAQuarterOfTheWindow() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .acceptor, configuration: .init(initialWindow: 1000)) { _, _, _, _ in owner }
        try harness.receive(Peer.requestHead(1))
        try harness.receive(Peer.data(1, String(repeating: "x", count: 600)))
        harness.handler.consume(200, on: 1)
        #expect(try harness.sent() == [])
        harness.handler.consume(100, on: 1)
        #expect(try harness.sent() == [.windowUpdate(1, 300)])
        harness.handler.consume(249, on: 1)
        #expect(try harness.sent() == [])
    }

    // MARK: Resets

    @Test func aLocalResetSendsRESETOnceAndTellsTheOwner() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .opener, configuration: .init(initialWindow: 10))
        let id = try harness.openStream(owner)
        harness.handler.writeBody(ByteBuffer(repeating: 0, count: 50), endStream: false, on: id)
        _ = try harness.sent()
        let reason = StreamResetReason(.timeout, "too slow")
        harness.handler.reset(id, reason)
        harness.handler.reset(id, StreamResetReason(.cancelled, "twice"))
        #expect(try harness.sent() == [.reset(1, reason)])
        #expect(owner.events == [.closed(reason)])
        #expect(harness.handler.pendingBytes(on: id) == 0)
        // Writes for it are dropped.
        #expect(harness.handler.writeBody(ByteBuffer(string: "more"), endStream: true, on: id))
        #expect(try harness.sent() == [])
    }

    @Test func aResetByThePeerTellsTheOwnerAndDropsItsPendingBody() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .opener, configuration: .init(initialWindow: 10))
        let id = try harness.openStream(owner)
        harness.handler.writeBody(ByteBuffer(repeating: 0, count: 50), endStream: true, on: id)
        _ = try harness.sent()
        let reason = StreamResetReason(.bodyTooLarge, "too big")
        try harness.receive(Peer.reset(id, reason))
        #expect(owner.events == [.closed(reason)])
        #expect(harness.handler.pendingBytes(on: id) == 0)
        #expect(try harness.sent() == [])
    }

    @Test func aFrameThatBreaksTheStreamsRulesResetsItAndTellsTheOwner() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .opener)
        let id = try harness.openStream(owner)
        _ = try harness.sent()
        try harness.receive(Peer.data(id, "before the head"))
        let reason = StreamResetReason(.protocolError, "body before head")
        #expect(try harness.sent() == [.reset(1, reason)])
        #expect(owner.events == [.closed(reason)])
        // Only the stream ended, not the connection.
        #expect(harness.channel.isActive)
        #expect(try harness.handler.openStream(owner: RecordingOwner()) == 3)
    }

    // MARK: Connection errors and the close handshake

    @Test func aConnectionErrorClosesWithProtocolErrorAndEndsEveryStream() throws {
        let owner = RecordingOwner()
        var closes: [StreamResetReason] = []
        let harness = try Harness(role: .opener, onClose: { closes.append($0) })
        let id = try harness.openStream(owner)
        _ = try harness.sent()
        try harness.receive(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: [0x09, 0, 0, 0, 0, 1])))
        let written = try harness.written()
        try #require(written.count == 1)
        #expect(written[0].opcode == .connectionClose)
        #expect(written[0].closeCode == .protocolError)
        // The connection is failed (RFC 6455 §7.1.7): it ends once the close is written, without
        // waiting for an echo, so a broken peer's channel is free again at once.
        harness.loop.run()
        #expect(!harness.channel.isActive)
        let lost = StreamResetReason(.connectionLost, "unknown frame type 0x9")
        #expect(owner.events == [.closed(lost)])
        #expect(closes == [lost])
        // Nothing goes out after it.
        harness.handler.writeBody(ByteBuffer(string: "x"), endStream: false, on: id)
        #expect(try harness.written().isEmpty)
    }

    @Test func aTextMessageIsAConnectionError() throws {
        let harness = try Harness(role: .acceptor)
        try harness.receive(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "{}")))
        let written = try harness.written()
        #expect(written.map(\.opcode) == [.connectionClose])
        #expect(written.first?.closeCode == .protocolError)
    }

    @Test func aPeersCloseIsEchoedAndThePeerAnswersOursByClosing() throws {
        var closes: [StreamResetReason] = []
        let harness = try Harness(role: .opener, onClose: { closes.append($0) })
        harness.handler.close(code: .goingAway, reason: "shutting down")
        let written = try harness.written()
        #expect(written.map(\.opcode) == [.connectionClose])
        #expect(written.first?.closeCode == .goingAway)
        try harness.receive(Peer.close(.goingAway))
        #expect(!harness.channel.isActive)
        #expect(try harness.written().isEmpty)
        #expect(closes.count == 1)
    }

    /// RFC 6455 §5.5.1: after sending and receiving a close, "the server MUST close the underlying
    /// TCP connection immediately".
    @Test func aServerEchoesThePeersCloseAndHangsUp() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .opener)
        _ = try harness.openStream(owner)
        _ = try harness.sent()
        try harness.receive(Peer.close(.normalClosure))
        let written = try harness.written()
        #expect(written.map(\.opcode) == [.connectionClose])
        #expect(written.first?.closeCode == .normalClosure)
        #expect(!harness.channel.isActive)
        #expect(owner.closes == [StreamResetReason(.connectionLost, "closed by the peer (\(WebSocketErrorCode.normalClosure))")])
    }

    @Test func aClientEchoesThePeersCloseAndClosesAtTheLatestAfterTheTimeout() throws {
        let harness = try Harness(role: .acceptor, settings: .init(pingInterval: nil, masksFrames: true))
        try harness.receive(Peer.close(.goingAway))
        let written = try harness.written()
        #expect(written.map(\.opcode) == [.connectionClose])
        #expect(written.first?.closeCode == .goingAway)
        #expect(written.first?.maskKey != nil)
        harness.loop.advanceTime(by: .seconds(5))
        #expect(!harness.channel.isActive)
    }

    // MARK: The channel going away

    @Test func channelInactiveEndsEveryOpenStreamWithConnectionLostAndRunsOnCloseOnce() throws {
        var closes: [StreamResetReason] = []
        let first = RecordingOwner()
        let second = RecordingOwner()
        let done = RecordingOwner()
        let harness = try Harness(role: .opener, onClose: { closes.append($0) })
        _ = try harness.openStream(first)
        _ = try harness.openStream(second)
        let finished = try harness.openStream(done, endStream: true)
        try harness.receive(Peer.responseHead(finished, endStream: true))
        #expect(done.closes == [nil])

        try harness.channel.close().wait()
        harness.loop.run()  // the channel removes its handlers: handlerRemoved must not end anything twice
        let lost = StreamResetReason(.connectionLost, "the tunnel connection was lost")
        #expect(first.events == [.closed(lost)])
        #expect(second.events == [.closed(lost)])
        #expect(done.closes == [nil])
        #expect(closes == [lost])
        #expect(throws: lost) { try harness.handler.openStream(owner: RecordingOwner()) }
    }

    @Test func aPeerThatClosesItsSideEndsTheConnectionOnAServerThatAllowsHalfClosure() throws {
        // Hummingbird's listener allows half-closure, so a client's FIN (or a killed client) arrives as
        // `inputClosed` and not as the channel going inactive: the tunnel must end on it.
        var closes: [StreamResetReason] = []
        let owner = RecordingOwner()
        let harness = try Harness(role: .opener, onClose: { closes.append($0) })
        _ = try harness.openStream(owner)
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        harness.loop.run()
        #expect(!harness.channel.isActive)
        let lost = StreamResetReason(.connectionLost, "the peer closed the connection")
        #expect(owner.closes == [lost])
        #expect(closes == [lost])
    }

    @Test func removingTheHandlerEndsEveryOpenStream() throws {
        var closes: [StreamResetReason] = []
        let owner = RecordingOwner()
        let harness = try Harness(role: .opener, onClose: { closes.append($0) })
        _ = try harness.openStream(owner)
        try harness.channel.pipeline.syncOperations.removeHandler(harness.handler).wait()
        #expect(owner.closes == [StreamResetReason(.connectionLost, "the tunnel connection was lost")])
        #expect(closes.count == 1)
        try harness.channel.close().wait()
        #expect(closes.count == 1)
    }

    // MARK: Keepalive

    @Test func aPingIsAnsweredWithAPongCarryingItsPayload() throws {
        let harness = try Harness(role: .acceptor)
        try harness.receive(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer(string: "are you there")))
        // Flushed at the read's end, without a loop tick.
        let pong = try #require(try harness.channel.readOutbound(as: WebSocketFrame.self))
        #expect(pong.opcode == .pong)
        #expect(pong.fin)
        #expect(String(buffer: pong.data) == "are you there")
    }

    @Test func aPingGoesOutEachIntervalAndAMissingPongClosesTheConnection() throws {
        let owner = RecordingOwner()
        var closes: [StreamResetReason] = []
        let harness = try Harness(role: .opener, settings: .init(pingInterval: .seconds(15), masksFrames: false), onClose: { closes.append($0) })
        _ = try harness.openStream(owner)
        _ = try harness.written()

        harness.loop.advanceTime(by: .seconds(14))
        #expect(try harness.written().isEmpty)
        harness.loop.advanceTime(by: .seconds(1))
        let ping = try #require(try harness.written().first)
        #expect(ping.opcode == .ping)
        try harness.receive(WebSocketFrame(fin: true, opcode: .pong, data: ping.data))

        // Answered: the next interval pings again and the connection stays.
        harness.loop.advanceTime(by: .seconds(15))
        #expect(try harness.written().map(\.opcode) == [.ping])
        #expect(harness.channel.isActive)

        // Not answered: the one after closes it.
        harness.loop.advanceTime(by: .seconds(15))
        #expect(!harness.channel.isActive)
        let reason = StreamResetReason(.connectionLost, "the peer did not answer a ping")
        #expect(owner.closes == [reason])
        #expect(closes == [reason])
    }

    @Test func noPingsWithoutAnInterval() throws {
        let harness = try Harness(role: .opener)
        harness.loop.advanceTime(by: .hours(1))
        #expect(try harness.written().isEmpty)
        #expect(harness.channel.isActive)
    }

    // MARK: Flushing

    @Test func writesOutsideAReadLeaveInOneFlushAtTheEndOfTheLoopTick() throws {
        let harness = try Harness(role: .opener)
        let id = try harness.openStream(RecordingOwner())
        harness.handler.writeBody(ByteBuffer(string: "{}"), endStream: true, on: id)
        // Written, not yet flushed.
        #expect(try harness.channel.readOutbound(as: WebSocketFrame.self) == nil)
        harness.loop.run()
        #expect(try harness.sent() == [.requestHead(1, method: "POST", endStream: false), .data(1, count: 2, endStream: true)])
    }

    @Test func writesDuringAReadAreFlushedAtReadComplete() throws {
        let owner = RecordingOwner()
        let harness = try Harness(role: .acceptor) { handler, id, _, _ in
            // An owner that answers at once, from inside the read.
            handler.writeHead(ResponseHead(status: 204, headerFields: [:]), endStream: true, on: id)
            return owner
        }
        try harness.receive(Peer.requestHead(1, endStream: true))
        let frame = try #require(try harness.channel.readOutbound(as: WebSocketFrame.self))
        #expect(try Sent(frame.tunnelFrame()) == .responseHead(1, status: 204, endStream: true))
    }

    // MARK: Masking

    @Test func aClientMasksEveryFrameAndDataKeepsItsHeaderInTheExtensionData() throws {
        let harness = try Harness(role: .acceptor, settings: .init(pingInterval: nil, masksFrames: true)) { _, _, _, _ in RecordingOwner() }
        try harness.receive(Peer.requestHead(1, endStream: true))
        harness.handler.writeHead(Self.answer, endStream: false, on: 1)
        harness.handler.writeBody(ByteBuffer(string: "answer"), endStream: true, on: 1)
        let written = try harness.written()
        #expect(written.allSatisfy { $0.maskKey != nil })
        try #require(written.count == 2)
        // DATA: the 6-byte header rides as extension data, the body is the payload itself (no copy).
        #expect(written[1].extensionData?.readableBytes == Frame.headerSize)
        #expect(String(buffer: written[1].data) == "answer")
    }

    @Test func maskedFramesDecodeOnTheOtherEndOfARealCodec() throws {
        let harness = try Harness(role: .acceptor, settings: .init(pingInterval: nil, masksFrames: true)) { _, _, _, _ in RecordingOwner() }
        try harness.channel.pipeline.syncOperations.addHandler(WebSocketFrameEncoder(), position: .first)
        try harness.receive(Peer.requestHead(1, endStream: true))
        harness.handler.writeHead(Self.answer, endStream: false, on: 1)
        harness.handler.writeBody(ByteBuffer(string: "the answer"), endStream: true, on: 1)
        harness.loop.run()
        var bytes = ByteBuffer()
        while var chunk = try harness.channel.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&chunk) }

        let server = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder()))
        try server.writeInbound(bytes)
        var frames: [Frame] = []
        while let message = try server.readInbound(as: WebSocketFrame.self) {
            #expect(message.maskKey != nil)
            frames.append(try Frame(decoding: message.unmaskedData))
        }
        try #require(frames.count == 2)
        #expect(try Sent(frames[0]) == .responseHead(1, status: 200, endStream: false))
        #expect(frames[1] == Frame(type: .data, flags: .endStream, streamID: 1, payload: ByteBuffer(string: "the answer")))
        _ = try server.finish()
    }
}
