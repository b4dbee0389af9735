import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import Testing
import TunnelProtocol
import TunnelTransport

@testable import RelayServer

/// The event-loop webhook path in process: a sender's HTTP channel with `WebhookChannelHandler`
/// and a client's tunnel with `TunnelHandler`, two `EmbeddedChannel`s on one loop.
@Suite("The webhook path on the event loop, in process")
struct WebhookChannelHandlerTests {
    static let channelID = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"

    final class Harness {
        let loop = EmbeddedEventLoop()
        let http: EmbeddedChannel
        let tunnel: EmbeddedChannel
        let registry = ChannelRegistry(ttl: .seconds(60), hold: .seconds(1), startupGrace: .zero)

        init(configuration: RelayServerConfiguration = .init(), tunnelConfiguration: TunnelConfiguration = .init()) throws {
            self.http = EmbeddedChannel(loop: self.loop)
            self.tunnel = EmbeddedChannel(loop: self.loop)
            let logger = Logger(label: "test")
            let route = WebhookRoute(
                registry: self.registry,
                configuration: configuration,
                metrics: RelayMetrics(),
                drain: ShutdownDrain(registry: self.registry, timeout: .seconds(1), logger: logger),
                logger: logger
            )
            let tunnelHandler = TunnelHandler(
                role: .opener,
                configuration: tunnelConfiguration,
                settings: .init(pingInterval: nil, masksFrames: false)
            )
            try self.tunnel.pipeline.syncOperations.addHandler(tunnelHandler)
            // As in `RelayChannel`: NIO's HTTP/1 parts in, the router's side behind the HTTP-types codec.
            try self.http.pipeline.syncOperations.addHandler(WebhookChannelHandler(route: route))
            try self.http.pipeline.syncOperations.addHandler(HTTPServerTypesCodec())
            try self.http.connect(to: SocketAddress(ipAddress: "192.0.2.7", port: 4321)).wait()
            try self.tunnel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            self.registry.setLive(
                WebhookChannelHandlerTests.channelID,
                connection: 1,
                tunnel: TunnelConnection(handler: tunnelHandler, eventLoop: self.loop)
            )
        }

        /// Frames the tunnel sent to the client, decoded.
        func sentFrames() throws -> [Frame] {
            self.loop.run()
            var frames: [Frame] = []
            while let message = try self.tunnel.readOutbound(as: WebSocketFrame.self) {
                guard message.opcode == .binary else { continue }
                var bytes = message.extensionData ?? ByteBuffer()
                var data = message.data
                bytes.writeBuffer(&data)
                frames.append(try Frame(decoding: bytes))
            }
            return frames
        }

        /// What the client says, as it would arrive on the tunnel.
        func clientSends(_ frame: Frame) throws {
            try self.tunnel.writeInbound(WebSocketFrame(fin: true, opcode: .binary, data: frame.encoded()))
            self.loop.run()
        }

        /// What the sender got, as HTTP types.
        func answer() throws -> [HTTPResponsePart] {
            self.loop.run()
            var parts: [HTTPResponsePart] = []
            while let part = try self.http.readOutbound(as: HTTPServerResponsePart.self) {
                switch part {
                case .head(let head): parts.append(.head(try HTTPResponse(head)))
                case .body(.byteBuffer(let buffer)): parts.append(.body(buffer))
                case .body(let data): Issue.record("a body that is not a buffer: \(data)")
                case .end(let trailers): parts.append(.end(trailers.map { HTTPFields($0, splitCookie: false) }))
                }
            }
            return parts
        }

        /// Parts that arrive in one read, as NIO's HTTP decoder hands them over (written here as
        /// HTTP types for brevity).
        func send(_ parts: HTTPRequestPart...) throws {
            for part in parts {
                let nioPart: HTTPServerRequestPart =
                    switch part {
                    case .head(let request): .head(try HTTPRequestHead(request))
                    case .body(let buffer): .body(buffer)
                    case .end(let trailers): .end(trailers.map(HTTPHeaders.init))
                    }
                self.http.pipeline.fireChannelRead(nioPart)
            }
            self.http.pipeline.fireChannelReadComplete()
            self.loop.run()
        }
    }

    static func post(_ path: String, length: Int?) -> HTTPRequestPart {
        var fields: HTTPFields = [.contentType: "application/json"]
        if let length { fields[.contentLength] = "\(length)" }
        return .head(HTTPRequest(method: .post, scheme: "http", authority: "relay.example", path: path, headerFields: fields))
    }

    static func responseHead(_ id: UInt32, status: Int, endStream: Bool = false) throws -> Frame {
        var payload = ByteBuffer()
        try ResponseHead(status: status, headerFields: [.contentType: "text/plain"]).encode(into: &payload)
        return Frame(type: .responseHead, flags: endStream ? .endStream : [], streamID: id, payload: payload)
    }

    @Test("A small webhook's head and body leave in one batch with END_STREAM, and the answer streams back")
    func smallWebhookRoundTrip() throws {
        let harness = try Harness()
        try harness.send(
            Self.post("/webhook/\(Self.channelID)/github?x=1", length: 5),
            .body(ByteBuffer(string: "hello")),
            .end(nil)
        )
        let frames = try harness.sentFrames()
        #expect(frames.map(\.type) == [.requestHead, .data])
        let head = try RequestHead(decoding: frames[0].payload)
        #expect(head.method == "POST" && head.target == "/github?x=1")
        #expect(head.headerFields[HTTPField.Name("X-Forwarded-For")!] == "192.0.2.7")
        #expect(head.headerFields[HTTPField.Name("X-Forwarded-Host")!] == "relay.example")
        #expect(!frames[0].flags.contains(.endStream))
        #expect(frames[1].flags.contains(.endStream) && String(buffer: frames[1].payload) == "hello")

        let id = frames[0].streamID
        try harness.clientSends(try Self.responseHead(id, status: 201))
        try harness.clientSends(Frame(type: .data, flags: .endStream, streamID: id, payload: ByteBuffer(string: "ok")))
        let answer = try harness.answer()
        guard answer.count == 3, case .head(let response) = answer[0], case .body(let body) = answer[1], case .end = answer[2] else {
            Issue.record("unexpected answer \(answer)")
            return
        }
        #expect(response.status.code == 201 && response.headerFields[.contentType] == "text/plain")
        #expect(String(buffer: body) == "ok")
    }

    /// Records what reaches the router's side, in order: request parts, and the shutdown event
    /// (Hummingbird's state handler there closes a connection with no request in progress on it).
    final class EventRecorder: ChannelInboundHandler {
        typealias InboundIn = HTTPRequestPart
        var log: [String] = []
        var quiesced: Int { self.log.filter { $0 == "quiesce" }.count }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head(let head) = self.unwrapInboundIn(data) { self.log.append(head.path ?? "?") }
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is ChannelShouldQuiesceEvent { self.log.append("quiesce") }
        }
    }

    @Test("A graceful shutdown during an exchange reaches the router's side only once the answer is out")
    func quiesceWaitsForTheExchange() throws {
        let harness = try Harness()
        let recorder = EventRecorder()
        try harness.http.pipeline.syncOperations.addHandler(recorder)
        try harness.send(Self.post("/webhook/\(Self.channelID)/x", length: 0), .end(nil))
        let id = try #require(try harness.sentFrames().first).streamID
        harness.http.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(recorder.quiesced == 0)
        try harness.clientSends(try Self.responseHead(id, status: 204, endStream: true))
        #expect(try harness.answer().count == 2)
        #expect(recorder.quiesced == 1)
        // Between requests it goes on at once.
        harness.http.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(recorder.quiesced == 2)
    }

    @Test("A shutdown held during an exchange goes on after a pipelined request, so that request is still answered")
    func quiesceFollowsAPipelinedRequest() throws {
        let harness = try Harness()
        let recorder = EventRecorder()
        try harness.http.pipeline.syncOperations.addHandler(recorder)
        try harness.send(Self.post("/webhook/\(Self.channelID)/", length: 0), .end(nil), Self.post("/healthz", length: 0), .end(nil))
        let id = try #require(try harness.sentFrames().first).streamID
        harness.http.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(recorder.log.isEmpty)
        try harness.clientSends(try Self.responseHead(id, status: 200, endStream: true))
        _ = try harness.answer()
        #expect(recorder.log == ["/healthz", "quiesce"])
    }

    @Test("A request for a channel with no tunnel here passes through to the router untouched")
    func otherRequestsPassThrough() throws {
        let harness = try Harness()
        try harness.send(Self.post("/webhook/0c7a5a26-8c0e-4f61-9b38-3f0a1d2b9e10/x", length: 2), .body(ByteBuffer(string: "hi")), .end(nil))
        var passed: [HTTPRequestPart] = []
        while let part = try harness.http.readInbound(as: HTTPRequestPart.self) { passed.append(part) }
        // The handler is last in this pipeline, so what it passes on lands in the channel's inbound buffer.
        #expect(passed.count == 3)
        #expect(try harness.sentFrames().isEmpty)
    }

    @Test("A RESET from the client before the answer gives the sender 502 with a JSON error")
    func resetBeforeHeadIs502() throws {
        let harness = try Harness()
        try harness.send(Self.post("/webhook/\(Self.channelID)/", length: 0), .end(nil))
        let frames = try harness.sentFrames()
        #expect(frames.count == 1 && frames[0].flags.contains(.endStream))
        var payload = ByteBuffer()
        StreamResetReason(.protocolError, "boom").encode(into: &payload)
        try harness.clientSends(Frame(type: .reset, streamID: frames[0].streamID, payload: payload))
        let answer = try harness.answer()
        guard case .head(let response) = answer.first, case .body(let body) = answer.dropFirst().first else {
            Issue.record("unexpected answer \(answer)")
            return
        }
        #expect(response.status == .badGateway)
        #expect(String(buffer: body).contains("boom"))
    }

    @Test("No answer within the request timeout: the stream is reset and the sender gets 504")
    func timeoutIs504() throws {
        let harness = try Harness(configuration: .init(requestTimeout: .seconds(3)))
        try harness.send(Self.post("/webhook/\(Self.channelID)/", length: 0), .end(nil))
        let id = try #require(try harness.sentFrames().first?.streamID)
        harness.loop.advanceTime(by: .seconds(3))
        let answer = try harness.answer()
        guard case .head(let response) = answer.first else {
            Issue.record("no answer")
            return
        }
        #expect(response.status == .gatewayTimeout)
        let reset = try harness.sentFrames()
        #expect(reset.map(\.type) == [.reset] && reset.first?.streamID == id)
    }

    @Test("The sender leaving mid-answer resets the stream, so the client stops sending")
    func senderLeavingResets() throws {
        let harness = try Harness()
        try harness.send(Self.post("/webhook/\(Self.channelID)/", length: 0), .end(nil))
        let id = try #require(try harness.sentFrames().first?.streamID)
        try harness.clientSends(try Self.responseHead(id, status: 200))
        _ = try harness.answer()
        // An answer of unknown length: the window for it was widened first (below).
        #expect(try harness.sentFrames().map(\.type) == [.windowUpdate])
        harness.http.pipeline.fireChannelInactive()
        let frames = try harness.sentFrames()
        #expect(frames.map(\.type) == [.reset] && frames.first?.streamID == id)
    }

    @Test("An answer of unknown or large length is granted a widened window at once; a small one is not")
    func largeAnswersGetAWiderWindow() throws {
        let harness = try Harness()
        for (length, widened) in [(nil, true), ("\(1 << 20)", true), ("1000", false)] as [(String?, Bool)] {
            try harness.send(Self.post("/webhook/\(Self.channelID)/", length: 0), .end(nil))
            let id = try #require(try harness.sentFrames().first?.streamID)
            var payload = ByteBuffer()
            var fields: HTTPFields = [:]
            if let length { fields[.contentLength] = length }
            try ResponseHead(status: 200, headerFields: fields).encode(into: &payload)
            try harness.clientSends(Frame(type: .responseHead, streamID: id, payload: payload))
            let frames = try harness.sentFrames()
            if widened {
                #expect(frames.map(\.type) == [.windowUpdate], "\(length ?? "no length")")
                #expect(frames.first?.payload.getInteger(at: frames.first!.payload.readerIndex, as: UInt32.self) == UInt32((1 << 20) - (256 << 10)))
            } else {
                #expect(frames.isEmpty, "\(length ?? "no length")")
            }
            try harness.clientSends(Frame(type: .end, streamID: id))
            _ = try harness.answer()
        }
    }

    @Test("A body larger than the window waits for credit; reads are held meanwhile")
    func uploadWaitsForCredit() throws {
        let harness = try Harness(tunnelConfiguration: .init(initialWindow: 8, maxDataChunk: 8))
        try harness.send(Self.post("/webhook/\(Self.channelID)/", length: 20), .body(ByteBuffer(string: "0123456789abcdefghij")))
        var frames = try harness.sentFrames()
        #expect(frames.map(\.type) == [.requestHead, .data])
        #expect(String(buffer: frames[1].payload) == "01234567")
        let id = frames[0].streamID
        var credit = ByteBuffer()
        credit.writeInteger(UInt32(16))
        try harness.clientSends(Frame(type: .windowUpdate, streamID: id, payload: credit))
        frames = try harness.sentFrames()
        #expect(frames.map { String(buffer: $0.payload) } == ["89abcdef", "ghij"])
        try harness.send(.end(nil))
        frames = try harness.sentFrames()
        #expect(frames.map(\.type) == [.end])
    }
}

extension WebhookChannelHandlerTests {
    @Test("Two webhooks one after the other on one kept-alive connection are both answered")
    func keepAlive() throws {
        let harness = try Harness()
        for round in 0..<2 {
            try harness.send(Self.post("/webhook/\(Self.channelID)/\(round)", length: 0), .end(nil))
            let frames = try harness.sentFrames()
            #expect(frames.map(\.type) == [.requestHead], "round \(round)")
            let id = try #require(frames.first?.streamID)
            try harness.clientSends(try Self.responseHead(id, status: 200 + round, endStream: true))
            let answer = try harness.answer()
            guard case .head(let response) = answer.first else {
                Issue.record("round \(round): no answer \(answer)")
                return
            }
            #expect(response.status.code == 200 + round)
        }
        // Every part was the handler's: nothing reached the router.
        #expect(try harness.http.readInbound(as: HTTPRequestPart.self) == nil)
    }
}

extension WebhookChannelHandlerTests {
    @Test("A sender that half-closes mid-upload has left: the stream is reset and the connection closed")
    func halfCloseMidUploadIsLeaving() throws {
        let harness = try Harness()
        try harness.send(Self.post("/webhook/\(Self.channelID)/", length: 10), .body(ByteBuffer(string: "01234")))
        let id = try #require(try harness.sentFrames().first?.streamID)
        harness.http.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let frames = try harness.sentFrames()
        #expect(frames.map(\.type) == [.reset] && frames.first?.streamID == id)
        #expect(!harness.http.isActive)
    }
}

extension WebhookChannelHandlerTests {
    @Test("The tunnel dying right after the answer's head: the sender gets that head before the cut, not a bare close")
    func headIsFlushedBeforeTheCut() throws {
        let harness = try Harness()
        try harness.send(Self.post("/webhook/\(Self.channelID)/", length: 0), .end(nil))
        let id = try #require(try harness.sentFrames().first?.streamID)
        // Head and the connection's end in one read of the tunnel: no loop tick in between to flush.
        harness.tunnel.pipeline.fireChannelRead(WebSocketFrame(fin: true, opcode: .binary, data: try Self.responseHead(id, status: 200).encoded()))
        harness.tunnel.pipeline.fireChannelInactive()
        let answer = try harness.answer()
        guard case .head(let response) = answer.first else {
            Issue.record("no head before the cut: \(answer)")
            return
        }
        #expect(response.status == .ok)
        #expect(!harness.http.isActive)
    }
}

extension WebhookChannelHandlerTests {
    /// Counts read-completes that reach the router's side, as its async channel only yields then.
    final class ReadCompleteCounter: ChannelInboundHandler {
        typealias InboundIn = HTTPRequestPart
        var parts = 0
        var completes = 0
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { self.parts += 1 }
        func channelReadComplete(context: ChannelHandlerContext) { self.completes += 1 }
    }

    @Test("A request pipelined behind a webhook reaches the router with a read-complete after its parts")
    func pipelinedRequestIsHandedOn() throws {
        let harness = try Harness()
        let counter = ReadCompleteCounter()
        try harness.http.pipeline.syncOperations.addHandler(counter)
        // The webhook and, in the same read, a request for the router (no tunnel for its id).
        try harness.send(
            Self.post("/webhook/\(Self.channelID)/", length: 0),
            .end(nil),
            Self.post("/healthz", length: 0),
            .end(nil)
        )
        let id = try #require(try harness.sentFrames().first?.streamID)
        let completesBefore = counter.completes
        #expect(counter.parts == 0)
        try harness.clientSends(try Self.responseHead(id, status: 200, endStream: true))
        _ = try harness.answer()
        #expect(counter.parts == 2)
        #expect(counter.completes > completesBefore)
    }
}

extension WebhookChannelHandlerTests {
    /// Counts the reads that get past `WebhookChannelHandler` towards the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            self.reads += 1
            context.read()
        }
    }

    static func countingReads(_ harness: Harness) throws -> ReadCounter {
        let counter = ReadCounter()
        try harness.http.pipeline.syncOperations.addHandler(counter, position: .first)
        return counter
    }

    @Test("A sender waiting for its answer is still read; a pipelined request holds reads until its turn")
    func readsAreHeldOnlyForAPipelinedRequest() throws {
        let harness = try Harness()
        let counter = try Self.countingReads(harness)
        try harness.send(Self.post("/webhook/\(Self.channelID)/", length: 0), .end(nil))
        let id = try #require(try harness.sentFrames().first?.streamID)
        harness.http.read()
        #expect(counter.reads == 1, "one request at a time: reading goes on while the answer is awaited")

        // The next request comes before the answer: it waits, and so does reading.
        try harness.send(Self.post("/webhook/\(Self.channelID)/next", length: 0))
        harness.http.read()
        #expect(counter.reads == 1)
        #expect(try harness.sentFrames().isEmpty)

        try harness.clientSends(try Self.responseHead(id, status: 200, endStream: true))
        _ = try harness.answer()
        // Its turn: it has started, and reading resumed to fetch the rest of it.
        #expect(try harness.sentFrames().map(\.type) == [.requestHead])
        #expect(counter.reads == 2)
    }

    @Test("Reads wait while the tunnel's window is full and resume with credit")
    func readsWaitForCredit() throws {
        let harness = try Harness(tunnelConfiguration: .init(initialWindow: 8, maxDataChunk: 8))
        let counter = try Self.countingReads(harness)
        try harness.send(Self.post("/webhook/\(Self.channelID)/", length: 20), .body(ByteBuffer(string: "0123456789abcdefghij")))
        let id = try #require(try harness.sentFrames().first?.streamID)
        harness.http.read()
        #expect(counter.reads == 0)
        var credit = ByteBuffer()
        credit.writeInteger(UInt32(16))
        try harness.clientSends(Frame(type: .windowUpdate, streamID: id, payload: credit))
        #expect(counter.reads == 1)
    }
}
