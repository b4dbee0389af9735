import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization
import TunnelProtocol

/// A stand-in for the relay server on loopback, written with NIO's own WebSocket server: it accepts
/// the client's upgrade (or refuses it with a status) and hands each connection to the test as raw
/// WebSocket frames, so a test sends exactly the tunnel frames it wants and sees exactly what the
/// client answers.
final class FakeRelay: Sendable {
    /// One accepted connection: its channel, what arrives on it, and the upgrade request's headers.
    struct Accepted: Sendable {
        let channel: any Channel
        let frames: AsyncStream<WebSocketFrame>
        let requestHeaders: HTTPHeaders
    }

    let port: Int
    let connections: AsyncStream<Accepted>
    private let serverChannel: any Channel

    private init(port: Int, connections: AsyncStream<Accepted>, serverChannel: any Channel) {
        self.port = port
        self.connections = connections
        self.serverChannel = serverChannel
    }

    /// Starts listening; `refuseWith` makes every upgrade fail with that status instead, `tls` makes
    /// it a `wss://` server.
    static func start(refuseWith status: HTTPResponseStatus? = nil, tls: TLSConfiguration? = nil) async throws -> FakeRelay {
        let (connections, continuation) = AsyncStream.makeStream(of: Accepted.self)
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext)) }
                    let upgrader = NIOTypedWebSocketServerUpgrader<Void>(
                        maxFrameSize: 1 << 20,
                        shouldUpgrade: { channel, _ in
                            channel.eventLoop.makeSucceededFuture(
                                status == nil ? HTTPHeaders([("Sec-WebSocket-Protocol", "webhook-over-websocket.v2")]) : nil
                            )
                        },
                        upgradePipelineHandler: { channel, head in
                            channel.eventLoop.makeCompletedFuture {
                                let (frames, framesContinuation) = AsyncStream.makeStream(of: WebSocketFrame.self)
                                try channel.pipeline.syncOperations.addHandler(FrameCollector(continuation: framesContinuation))
                                continuation.yield(Accepted(channel: channel, frames: frames, requestHeaders: head.headers))
                            }
                        }
                    )
                    let configuration = NIOTypedHTTPServerUpgradeConfiguration<Void>(
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(Refuser(status: status ?? .notFound))
                            }
                        }
                    )
                    _ = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                        configuration: .init(upgradeConfiguration: configuration)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return FakeRelay(port: channel.localAddress?.port ?? 0, connections: connections, serverChannel: channel)
    }

    var url: String { "ws://127.0.0.1:\(self.port)/ws/test-channel" }

    func stop() async {
        try? await self.serverChannel.close()
    }
}

/// Passes the client's frames to the test.
private final class FrameCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    let continuation: AsyncStream<WebSocketFrame>.Continuation

    init(continuation: AsyncStream<WebSocketFrame>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.continuation.yield(self.unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.continuation.finish()
        context.fireChannelInactive()
    }
}

/// Answers a request that was not upgraded with a fixed status, then hangs up.
private final class Refuser: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let status: HTTPResponseStatus

    init(status: HTTPResponseStatus) {
        self.status = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = self.unwrapInboundIn(data) else { return }
        let head = HTTPResponseHead(version: .http1_1, status: self.status, headers: ["Content-Length": "0", "Connection": "close"])
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// The test's end of one connection: sends tunnel frames and reads the client's, frame by frame.
/// Used by one test task only.
final class RelayPeer {
    let channel: any Channel
    let requestHeaders: HTTPHeaders
    private var frames: AsyncStream<WebSocketFrame>.Iterator

    init(_ accepted: FakeRelay.Accepted) {
        self.channel = accepted.channel
        self.requestHeaders = accepted.requestHeaders
        self.frames = accepted.frames.makeAsyncIterator()
    }

    /// Sends one tunnel frame as a binary message (unmasked, as a server does).
    func send(_ frame: Frame) async throws {
        try await self.channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, data: frame.encoded())).get()
    }

    func sendRequestHead(_ head: RequestHead, on id: UInt32, endStream: Bool) async throws {
        var payload = ByteBuffer()
        try head.encode(into: &payload)
        try await self.send(Frame(type: .requestHead, flags: endStream ? .endStream : [], streamID: id, payload: payload))
    }

    func sendData(_ bytes: ByteBuffer, on id: UInt32, endStream: Bool = false) async throws {
        try await self.send(Frame(type: .data, flags: endStream ? .endStream : [], streamID: id, payload: bytes))
    }

    func sendWindowUpdate(_ increment: Int, on id: UInt32) async throws {
        try await self.send(Frame(type: .windowUpdate, streamID: id, payload: ByteBuffer(integer: UInt32(increment))))
    }

    func sendReset(_ reason: StreamResetReason, on id: UInt32) async throws {
        var payload = ByteBuffer()
        reason.encode(into: &payload)
        try await self.send(Frame(type: .reset, streamID: id, payload: payload))
    }

    func sendClose(_ code: WebSocketErrorCode, reason: String) async throws {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        try await self.channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).get()
    }

    /// The client's next WebSocket frame of any kind; nil once the connection closed.
    func nextWebSocketFrame() async -> WebSocketFrame? {
        await self.frames.next()
    }

    /// The client's next tunnel frame (pings skipped); nil once the connection closed or a close frame came.
    func nextFrame() async throws -> Frame? {
        while let frame = await self.frames.next() {
            switch frame.opcode {
            case .binary:
                return try Frame(decoding: frame.unmaskedData)
            case .connectionClose:
                return nil
            default:
                continue
            }
        }
        return nil
    }

    /// Reads a whole answer on `id`: the head, the body and whether the last DATA carried END_STREAM,
    /// granting credit as the body arrives, and checking the client never exceeds what it was granted.
    func readAnswer(on id: UInt32, window: Int = 256 * 1024) async throws -> Answer {
        var answer = Answer()
        var granted = window
        var received = 0
        while let frame = try await self.nextFrame() {
            guard frame.streamID == id else { continue }
            answer.frames.append(frame.type)
            switch frame.type {
            case .responseHead:
                answer.head = try ResponseHead(decoding: frame.payload)
                if frame.flags.contains(.endStream) { return answer }
            case .data:
                received += frame.payload.readableBytes
                answer.body.writeImmutableBuffer(frame.payload)
                answer.exceededWindow = answer.exceededWindow || received > granted
                if frame.flags.contains(.endStream) {
                    answer.lastDataEndedStream = true
                    return answer
                }
                if granted - received < window / 2 {
                    try await self.sendWindowUpdate(window / 2, on: id)
                    granted += window / 2
                }
            case .end:
                return answer
            case .reset:
                answer.reset = try StreamResetReason(decoding: frame.payload)
                return answer
            case .windowUpdate:
                answer.creditReturned += Int(frame.payload.getInteger(at: frame.payload.readerIndex, as: UInt32.self) ?? 0)
            case .requestHead:
                continue
            }
        }
        return answer
    }

    struct Answer {
        var head: ResponseHead?
        var body = ByteBuffer()
        var lastDataEndedStream = false
        var reset: StreamResetReason?
        var exceededWindow = false
        var creditReturned = 0
        /// Every frame type seen on the stream, in order.
        var frames: [FrameType] = []
    }
}
