import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A local app on loopback made with NIO directly, for what a Hummingbird app does not let a test
/// control or see: how many connections it accepted, on which one a request came, and answers
/// framed by hand (`Connection: close`, no length, a connection dropped without an answer).
final class ScriptedApp: Sendable {
    struct Request: Sendable {
        var head: HTTPRequestHead
        var body: ByteBuffer
        /// Which accepted connection it came on, counting from 1.
        var connection: Int
    }

    enum Answer: Sendable {
        /// `close`: the connection is closed after the answer.
        case respond(HTTPResponseStatus, HTTPHeaders = [:], [ByteBuffer] = [], close: Bool = false)
        /// The connection is closed without a byte of answer (the app restarted).
        case drop
    }

    private let channel: any Channel
    private let shared: Shared

    private init(channel: any Channel, shared: Shared) {
        self.channel = channel
        self.shared = shared
    }

    var port: Int { self.channel.localAddress?.port ?? 0 }
    var acceptedConnections: Int { self.shared.state.withLock { $0.accepted } }
    var requests: [Request] { self.shared.state.withLock { $0.requests } }

    static func start(_ answer: @escaping @Sendable (Request) -> Answer) async throws -> ScriptedApp {
        let shared = Shared()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                let number = shared.state.withLock { state in
                    state.accepted += 1
                    state.children.append(child)
                    return state.accepted
                }
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false)
                    try child.pipeline.syncOperations.addHandler(
                        Responder(connection: number, answer: answer) { request in shared.state.withLock { $0.requests.append(request) } }
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return ScriptedApp(channel: channel, shared: shared)
    }

    /// Closes every connection the app accepted (as an app that restarts does).
    func closeConnections() async {
        let children = self.shared.state.withLock { $0.children }
        for child in children { try? await child.close() }
    }

    func stop() async {
        await self.closeConnections()
        try? await self.channel.close()
    }

    private final class Shared: Sendable {
        let state = Mutex<(accepted: Int, children: [any Channel], requests: [Request])>((0, [], []))
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let connection: Int
        let answer: @Sendable (Request) -> Answer
        let record: @Sendable (Request) -> Void
        private var head: HTTPRequestHead?
        private var body = ByteBuffer()

        init(connection: Int, answer: @escaping @Sendable (Request) -> Answer, record: @escaping @Sendable (Request) -> Void) {
            self.connection = connection
            self.answer = answer
            self.record = record
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                self.body.clear()
            case .body(let chunk):
                self.body.writeImmutableBuffer(chunk)
            case .end:
                guard let head = self.head else { return }
                let request = Request(head: head, body: self.body, connection: self.connection)
                self.record(request)
                switch self.answer(request) {
                case .drop:
                    context.close(promise: nil)
                case .respond(let status, let headers, let chunks, let close):
                    context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                    for chunk in chunks { context.write(self.wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil) }
                    let done = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
                    if close {
                        let context = NIOLoopBound(context, eventLoop: context.eventLoop)
                        done.whenComplete { _ in context.value.close(promise: nil) }
                    }
                }
            }
        }
    }
}
