import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
import TunnelProtocol

@testable import TunnelTransport

/// The async adapter over two handlers wired back to back: a pump moves each side's written
/// messages to the other side's reads, as a WebSocket would.
@Suite struct TunnelStreamTests {
    /// One side of the wire: a handler on a thread-safe testing channel.
    struct Side {
        let channel: NIOAsyncTestingChannel
        let connection: TunnelConnection

        init(
            role: MultiplexerStateMachine.Role,
            configuration: TunnelConfiguration,
            accepted: AsyncStream<(TunnelStream, RequestHead)>.Continuation? = nil
        ) async throws {
            let loop = NIOAsyncTestingEventLoop()
            let settings = TunnelHandler.Settings(pingInterval: nil, masksFrames: role == .acceptor)
            self.channel = try await NIOAsyncTestingChannel(loop: loop) { channel in
                let acceptor: TunnelHandler.Acceptor? = accepted.map { continuation in
                    { handler, id, head, _ in
                        let owner = TunnelStream.Owner()
                        let connection = TunnelConnection(handler: handler, eventLoop: loop)
                        continuation.yield((TunnelStream(id: id, owner: owner, connection: connection), head))
                        return owner
                    }
                }
                let handler = TunnelHandler(role: role, configuration: configuration, settings: settings, acceptor: acceptor)
                try channel.pipeline.syncOperations.addHandler(handler)
            }
            let channel = self.channel
            self.connection = try await loop.submit {
                TunnelConnection(handler: try channel.pipeline.syncOperations.handler(type: TunnelHandler.self), eventLoop: loop)
            }.get()
            try await self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).get()
        }
    }

    /// Moves what `from` writes to `to`'s reads until either channel closes.
    static func pump(from: NIOAsyncTestingChannel, to: NIOAsyncTestingChannel) async {
        while let frame = try? await from.waitForOutboundWrite(as: WebSocketFrame.self) {
            guard (try? await to.writeInbound(frame.onTheWire)) != nil else { return }
        }
    }

    /// Runs `exchange` with the wire pumping both ways, then closes both channels and ends `accepted`,
    /// so the pumps and any responder end whether the exchange passed or not.
    static func wired(
        _ server: Side,
        _ client: Side,
        accepted: AsyncStream<(TunnelStream, RequestHead)>.Continuation,
        _ exchange: (inout ThrowingTaskGroup<Void, any Error>) async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await Self.pump(from: server.channel, to: client.channel) }
            group.addTask { await Self.pump(from: client.channel, to: server.channel) }
            var failure: (any Error)?
            do {
                try await exchange(&group)
            } catch {
                failure = error
            }
            accepted.finish()
            try? await client.channel.close()
            try? await server.channel.close()
            if let failure { throw failure }
            try await group.waitForAll()
        }
    }

    @Test func aRequestAndItsAnswerFlowThroughWithFlowControl() async throws {
        let configuration = TunnelConfiguration(initialWindow: 1024, maxDataChunk: 100)
        let (accepted, acceptedContinuation) = AsyncStream.makeStream(of: (TunnelStream, RequestHead).self)
        let server = try await Side(role: .opener, configuration: configuration)
        let client = try await Side(role: .acceptor, configuration: configuration, accepted: acceptedContinuation)
        let body = ByteBuffer(repeating: 0x61, count: 10_000)

        try await Self.wired(server, client, accepted: acceptedContinuation) { group in
            // The client: reads the whole request body (acknowledging it), then answers.
            group.addTask {
                for await (stream, head) in accepted {
                    #expect(head.method == "POST")
                    let received = try await stream.inboundBody().reduce(0) { $0 + $1.readableBytes }
                    try await stream.sendResponseHead(ResponseHead(status: 200, headerFields: [.contentType: "text/plain"]), endStream: false)
                    var writer = stream.makeBodyWriter()
                    try await writer.write(ByteBuffer(string: "got "))
                    try await writer.finish(with: ByteBuffer(string: "\(received)"))
                    return
                }
            }

            let stream = try await server.connection.openStream()
            try await stream.sendRequestHead(RequestHead(method: "POST", target: "/x", headerFields: [:]), endStream: false)
            var writer = stream.makeBodyWriter()
            try await writer.write(body)
            try await writer.finish()
            #expect(writer.bytesWritten == 10_000)

            var events = stream.events.makeAsyncIterator()
            guard case .responseHead(let head, endStream: false) = await events.next() else {
                Issue.record("expected a response head")
                return
            }
            #expect(head.status == 200)
            var answer = ""
            loop: while let event = await events.next() {
                switch event {
                case .data(let chunk):
                    answer += String(buffer: chunk)
                    try await stream.acknowledge(chunk.readableBytes)
                case .end: break loop
                default: Issue.record("unexpected \(event)")
                }
            }
            #expect(answer == "got 10000")
            // Both sides ended: the stream is gone on both handlers, and the events end.
            #expect(await events.next() == nil)
        }
    }

    @Test func aResetReachesTheOtherSidesEvents() async throws {
        let configuration = TunnelConfiguration()
        let (accepted, acceptedContinuation) = AsyncStream.makeStream(of: (TunnelStream, RequestHead).self)
        let server = try await Side(role: .opener, configuration: configuration)
        let client = try await Side(role: .acceptor, configuration: configuration, accepted: acceptedContinuation)

        try await Self.wired(server, client, accepted: acceptedContinuation) { _ in
            let stream = try await server.connection.openStream()
            try await stream.sendRequestHead(RequestHead(method: "GET", target: "", headerFields: [:]), endStream: true)
            var iterator = accepted.makeAsyncIterator()
            let (incoming, _) = try #require(await iterator.next())
            await incoming.reset(StreamResetReason(.timeout, "the app is slow"))

            var events = stream.events.makeAsyncIterator()
            guard case .reset(let reason) = await events.next() else {
                Issue.record("expected a reset")
                return
            }
            #expect(reason == StreamResetReason(.timeout, "the app is slow"))
            #expect(await events.next() == nil)
        }
    }

    @Test func theConnectionClosingEndsAnOpenStream() async throws {
        let server = try await Side(role: .opener, configuration: .init())
        let stream = try await server.connection.openStream()
        try await server.channel.close()
        var events = stream.events.makeAsyncIterator()
        guard case .reset(let reason) = await events.next() else {
            Issue.record("expected a reset")
            return
        }
        #expect(reason.code == .connectionLost)
        await #expect(throws: StreamResetReason.self) { try await server.connection.openStream() }
    }
}
