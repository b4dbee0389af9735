import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import LocalAppTestSupport
import Logging
import NIOCore
import Synchronization
import Testing
import TunnelProtocol

/// A relay that breaks the protocol: each WebSocket connection gets one kind of garbage, then the last
/// one a valid webhook, whose answer the fake relay reports.
final class HostileRelay: Sendable {
    static let garbage: [[UInt8]] = [
        [0x09, 0, 0, 0, 0, 1],  // unknown frame type
        [0x02, 0, 0, 0, 0, 1, 0, 200, 0, 0],  // RESPONSE_HEAD sent to the client
        [0x01, 0, 0, 0, 0, 1, 0xFF, 0x41, 0x41],  // REQUEST_HEAD whose method length runs past the end
    ]

    let connections = Mutex(0)

    /// Runs the relay for the duration of `body`, which gets its port and a stream of answered statuses.
    func run<T: Sendable>(_ body: @Sendable (Int, AsyncStream<Int>) async throws -> T) async throws -> T {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let (answers, answerContinuation) = AsyncStream.makeStream(of: Int.self)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                let router = self.makeRouter(answers: answerContinuation)
                var logger = Logger(label: "hostile-relay")
                logger.logLevel = .critical
                let app = Application(
                    router: router,
                    server: .http1WebSocketUpgrade(webSocketRouter: router),
                    configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
                    onServerRunning: { channel in
                        portContinuation.yield(channel.localAddress?.port ?? 0)
                        portContinuation.finish()
                    },
                    logger: logger
                )
                try await app.runService()
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            defer { group.cancelAll() }
            return try await body(port, answers)
        }
    }

    private func makeRouter(answers: AsyncStream<Int>.Continuation) -> Router<BasicWebSocketRequestContext> {
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.get("/new") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"channel_id":"hostile","token":"t"}"#))
            )
        }
        let offerV2: @Sendable (Request, BasicWebSocketRequestContext) async throws -> RouterShouldUpgrade = { _, _ in
            .upgrade([.secWebSocketProtocol: "webhook-over-websocket.v2"])
        }
        router.ws("/ws/{id}", shouldUpgrade: offerV2) { inbound, outbound, _ in
            let index = self.connections.withLock { count in
                defer { count += 1 }
                return count
            }
            if index < Self.garbage.count {
                try await outbound.write(.binary(ByteBuffer(bytes: Self.garbage[index])))
                for try await _ in inbound.messages(maxSize: 1 << 20) {}
                return
            }
            // Finally a well-formed webhook; the client must still deliver it.
            var head = ByteBuffer()
            try RequestHead(method: "POST", target: "/after-hostility", headerFields: [:]).encode(into: &head)
            try await outbound.write(.binary(Frame(type: .requestHead, flags: .endStream, streamID: 1, payload: head).encoded()))
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .binary(let buffer) = message, let frame = try? Frame(decoding: buffer), frame.type == .responseHead,
                    let response = try? ResponseHead(decoding: frame.payload)
                else { continue }
                answers.yield(response.status)
            }
        }
        return router
    }
}

@Suite("The client against a hostile server")
struct HostileServerTests {
    @Test("Malformed frames from the server end only that connection: the client reconnects and still delivers")
    func clientSurvivesAHostileServer() async throws {
        let relay = HostileRelay()
        try await inspectingApp().run { appPort in
            try await relay.run { relayPort, answers in
                let process = try ToolProcess([
                    "client", "--server-url", "http://127.0.0.1:\(relayPort)", "--target-url", "http://127.0.0.1:\(appPort)",
                    "--state-dir", try Tunnel.makeStateDirectory(),
                ])
                defer { process.signal(SIGKILL) }
                // One reconnect per kind of garbage (backoff 1 s, 2 s, 4 s), then the valid webhook.
                let status = try await withTimeout("the webhook after the garbage", .seconds(30)) {
                    for await status in answers { return status }
                    return 0
                }
                #expect(status == 201)
                #expect(relay.connections.withLock { $0 } == HostileRelay.garbage.count + 1)
                #expect(process.count { $0.contains("Connection lost") } >= HostileRelay.garbage.count)
                _ = try await process.waitForLine(containing: "/after-hostility")
            }
        }
    }
}
