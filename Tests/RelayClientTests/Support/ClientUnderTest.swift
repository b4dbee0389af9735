import AsyncHTTPClient
import Inspector
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import TunnelProtocol
import TunnelTransport

@testable import RelayClient

/// What an ended exchange reported: the console line's content.
struct Reported: Sendable {
    var summary: LocalForwarder.Summary
    var queuedID: String?
}

/// The client's data path, as `RelayClient` wires it, between a ``FakeRelay`` and a local app: the
/// real ``TunnelClientConnection``, ``LocalExchange`` and AsyncHTTPClient, on real sockets.
enum ClientUnderTest {
    /// Connects a client to a fresh relay and runs `body` with the relay's end of the connection and
    /// the exchanges' reports; everything is torn down afterwards.
    static func run(
        targetURL: String,
        timeout: Duration? = .seconds(10),
        observer: RecordingObserver? = nil,
        _ body: (RelayPeer, inout AsyncStream<Reported>.Iterator, TunnelClientSession) async throws -> Void
    ) async throws {
        let relay = try await FakeRelay.start()
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: RelayClient.httpConfiguration(tls: .makeClientConfiguration()))
        var logger = Logger(label: "client-under-test")
        logger.logLevel = .critical
        let forwarder = LocalForwarder(httpClient: httpClient, targetURL: targetURL, timeout: timeout, logger: logger, observer: observer)
        let (reports, reportsContinuation) = AsyncStream.makeStream(of: Reported.self)
        var reportIterator = reports.makeAsyncIterator()
        let report: LocalExchange.Report = { summary, _, queuedID in reportsContinuation.yield(Reported(summary: summary, queuedID: queuedID)) }
        var session: TunnelClientSession?
        do {
            let connection = try TunnelClientConnection(
                url: relay.url,
                headers: ["Sec-WebSocket-Protocol": "webhook-over-websocket.v2", "Authorization": "Bearer test-token"],
                tlsConfiguration: .makeClientConfiguration()
            )
            session = try await connection.open(
                onConnected: {},
                acceptor: { eventLoop in
                    { handler, id, head, endStream in
                        LocalExchange.start(
                            handler: handler,
                            id: id,
                            head: head,
                            endStream: endStream,
                            eventLoop: eventLoop,
                            forwarder: forwarder,
                            report: report
                        )
                    }
                }
            )
            var connections = relay.connections.makeAsyncIterator()
            guard let accepted = await connections.next() else { throw CancellationError() }
            try await body(RelayPeer(accepted), &reportIterator, session!)
        } catch {
            try? await session?.channel.close()
            try? await httpClient.shutdown()
            await relay.stop()
            throw error
        }
        try? await session?.channel.close()
        try await httpClient.shutdown()
        await relay.stop()
    }

    /// A loopback port nothing listens on.
    static func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }
}

/// The inspector's capture seam, recorded: one line per call, consecutive body chunks summed.
final class RecordingObserver: WebhookObserver {
    private let lines = Mutex<[String]>([])
    private let (finishes, finished) = AsyncStream.makeStream(of: Void.self)

    var events: [String] { self.lines.withLock { $0 } }

    /// Waits for the next `finished(error:)`: after a normal answer the client calls it in the loop
    /// task after the answer's flush, so it may come after the answer and the report.
    func nextFinish() async {
        var iterator = self.finishes.makeAsyncIterator()
        _ = await iterator.next()
    }

    func webhookStarted(_ head: ObservedRequestHead) -> any WebhookExchangeObserver {
        self.record("started \(head.method) \(head.path)")
        return Exchange(observer: self)
    }

    fileprivate func record(_ line: String, bytes: Int? = nil) {
        self.lines.withLock { lines in
            if let bytes, let last = lines.last, last.hasPrefix(line + " "), let sum = Int(last.dropFirst(line.count + 1)) {
                lines[lines.count - 1] = "\(line) \(sum + bytes)"
            } else {
                lines.append(bytes.map { "\(line) \($0)" } ?? line)
            }
        }
    }

    private struct Exchange: WebhookExchangeObserver {
        let observer: RecordingObserver
        var id: String { "recorded" }
        func requestBody(_ chunk: ByteBuffer) { self.observer.record("requestBody", bytes: chunk.readableBytes) }
        func responseHead(status: Int, headers: any ObservedHeaders) { self.observer.record("responseHead \(status)") }
        func responseBody(_ chunk: ByteBuffer) { self.observer.record("responseBody", bytes: chunk.readableBytes) }
        func finished(error: String?) {
            self.observer.record("finished \(error ?? "ok")")
            self.observer.finished.yield()
        }
    }
}
