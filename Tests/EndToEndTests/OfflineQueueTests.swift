import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import LocalAppTestSupport
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization
import Testing

/// What the local app received, one entry per request.
struct Received: Sendable {
    var method: String
    var path: String
    var headers: [(String, String)]
    var bodySHA256: String
    var bodyCount: Int

    func header(_ name: String) -> String? {
        self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// A local app that records every request and answers with a status the
/// test chooses per request (so a test can make the app fail and recover).
final class RecordingApp: Sendable {
    private let received = Mutex<[Received]>([])
    private let answer: @Sendable (Received, Int) -> Int

    /// `answer` gets the request and how many requests came before it.
    init(answer: @escaping @Sendable (Received, Int) -> Int = { _, _ in 200 }) {
        self.answer = answer
    }

    var requests: [Received] { self.received.withLock { $0 } }

    var app: LocalApp {
        LocalApp { router in
            let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
                var hasher = SHA256()
                var count = 0
                for try await chunk in request.body {
                    count += chunk.readableBytes
                    hasher.update(data: Array(chunk.readableBytesView))
                }
                var path = request.uri.path
                if let query = request.uri.query { path += "?\(query)" }
                let seen = Received(
                    method: request.method.rawValue,
                    path: path,
                    headers: request.headers.map { ($0.name.rawName, $0.value) },
                    bodySHA256: hasher.finalize().map { String(format: "%02x", $0) }.joined(),
                    bodyCount: count
                )
                let before = self.received.withLock { list in
                    defer { list.append(seen) }
                    return list.count
                }
                let status = self.answer(seen, before)
                return Response(
                    status: .init(code: status),
                    headers: [.contentType: "text/plain"],
                    body: .init(byteBuffer: ByteBuffer(string: "app \(status)"))
                )
            }
            for method in [HTTPRequest.Method.get, .post, .put] {
                router.on("/**", method: method, use: handler)
                router.on("/", method: method, use: handler)
            }
        }
    }

    /// Waits until the app has received `count` requests.
    func waitFor(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [Received] {
        try await waitUntil("the local app receives \(count) request(s)", timeout: timeout) { self.requests.count >= count }
        return self.requests
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

/// The channels whose client is connected to `server` now.
func connectedChannels(_ server: ServerHandle) async throws -> [String] {
    let answer = try await Sender.send(.GET, "\(server.url)/internal/channels")
    let object = try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [String: Any]
    return object?["webhook_channels"] as? [String] ?? []
}

/// One sample of `/metrics`, `nil` when absent.
func metric(_ server: ServerHandle, _ line: String) async throws -> Double? {
    let text = try await Sender.send(.GET, "\(server.url)/metrics").text
    for row in text.split(separator: "\n") where row.hasPrefix(line + " ") {
        return Double(row.dropFirst(line.count + 1))
    }
    return nil
}

enum QueueTest {
    /// Kills the client and waits until the server has noticed.
    static func sendAway(_ client: ClientHandle, from server: ServerHandle) async throws {
        await client.process.stop()
        try await waitUntil("the server notices the client is gone") {
            try await !connectedChannels(server).contains(client.channelID)
        }
    }

    /// The sender's 202: the delivery id from the body and the header, which must agree.
    static func queuedID(_ answer: Sender.Answer) throws -> String {
        #expect(answer.status == 202, "\(answer.status) \(answer.text)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [String: Any])
        #expect(object["queued"] as? Bool == true)
        let id = try #require(object["id"] as? String)
        #expect(answer.headers["X-Webhook-Delivery-Id"] == [id])
        #expect(UUID(uuidString: id) != nil)
        return id
    }

    /// A body with every byte value, so any re-encoding shows.
    static let binaryBody: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
}

@Suite("Offline queue: webhooks for an away client are kept and delivered when it is back")
struct OfflineQueueTests {
    @Test("Client away: 202 after the hold; back: the app gets it byte-exact with the delivery headers, marked on the console")
    func queuedThenDelivered() async throws {
        let recorder = RecordingApp()
        try await recorder.app.run { appPort in
            try await Tunnel.withServer { server in
                let target = "http://127.0.0.1:\(appPort)/api"
                let stateDir = try Tunnel.makeStateDirectory()
                let first = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                try await QueueTest.sendAway(first, from: server)

                let started = ContinuousClock.now
                let answer = try await Sender.send(
                    .POST,
                    first.webhookURL + "/github?delivery=1",
                    headers: [
                        ("Content-Type", "application/octet-stream"), ("X-Hub-Signature-256", "sha256=abc"), ("X-Repeat", "a"), ("X-Repeat", "b"),
                    ],
                    body: ByteBuffer(bytes: QueueTest.binaryBody)
                )
                let waited = ContinuousClock.now - started
                let id = try QueueTest.queuedID(answer)
                #expect(waited >= .seconds(2), "answered after \(waited), before --offline-hold")
                #expect(waited < .seconds(9), "answered after \(waited): that is the reject hold")
                #expect(recorder.requests.isEmpty)
                #expect(try await metric(server, "wow_queue_stored_total") == 1)

                let second = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                #expect(second.channelID == first.channelID)
                let delivered = try #require(try await recorder.waitFor(1).first)
                #expect(delivered.method == "POST")
                #expect(delivered.path == "/api/github?delivery=1")
                #expect(delivered.bodyCount == QueueTest.binaryBody.count)
                #expect(delivered.bodySHA256 == sha256Hex(QueueTest.binaryBody))
                #expect(delivered.header("X-Hub-Signature-256") == "sha256=abc")
                #expect(delivered.headers.filter { $0.0.lowercased() == "x-repeat" }.map(\.1) == ["a", "b"])
                #expect(delivered.header("X-Webhook-Delivery-Id") == id)
                #expect(delivered.header("X-Webhook-Delivery-Attempt") == "1")
                let queuedAt = try #require(delivered.header("X-Webhook-Queued-At"))
                let date = try #require(
                    try? Date(queuedAt, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
                    "not RFC 3339: \(queuedAt)"
                )
                #expect(abs(date.timeIntervalSinceNow) < 120)

                _ = try await second.process.waitForLine(containing: "queued \(id.prefix(8))")
                try await waitUntil("the delivery is counted") { try await metric(server, "wow_queue_delivered_total") == 1 }
                try await waitUntil("the queue is empty") { try await metric(server, "wow_queue_depth") == 0 }
                // Exactly once.
                #expect(recorder.requests.count == 1)
                await second.process.stop()
            }
        }
    }

    @Test("--when-offline reject: the webhook is held 10 s, then 503 with Retry-After, as before")
    func rejectMode() async throws {
        let recorder = RecordingApp()
        try await recorder.app.run { appPort in
            try await Tunnel.withServer { server in
                let client = try await Tunnel.startClient(
                    server: server,
                    targetURL: "http://127.0.0.1:\(appPort)",
                    stateDir: try Tunnel.makeStateDirectory(),
                    extraArguments: ["--when-offline", "reject"]
                )
                try await QueueTest.sendAway(client, from: server)
                let started = ContinuousClock.now
                let answer = try await Sender.send(.POST, client.webhookURL, body: ByteBuffer(string: "{}"))
                #expect(answer.status == 503)
                #expect(!answer.headers["Retry-After"].isEmpty)
                #expect(errorMessage(answer) != nil)
                #expect(ContinuousClock.now - started >= .seconds(9))
                #expect(try await metric(server, "wow_queue_stored_total") == 0)
            }
        }
    }

    @Test("Server SIGKILLed right after a 202, restarted on the same --data-dir and key: delivered when the client connects")
    func survivesServerKill() async throws {
        let recorder = RecordingApp()
        try await recorder.app.run { appPort in
            let dataDir = try Tunnel.makeStateDirectory()
            let arguments = ["--data-dir", dataDir, "--jwt-signing-key", "offline-queue-tests-signing-key-0123456789", "--offline-hold", "300ms"]
            let target = "http://127.0.0.1:\(appPort)"
            let stateDir = try Tunnel.makeStateDirectory()
            let first = try await Tunnel.startServer(arguments)
            let id: String
            do {
                let client = try await Tunnel.startClient(server: first, targetURL: target, stateDir: stateDir)
                try await QueueTest.sendAway(client, from: first)
                id = try QueueTest.queuedID(
                    try await Sender.send(.PUT, client.webhookURL + "/durable", body: ByteBuffer(bytes: QueueTest.binaryBody))
                )
                first.process.signal(SIGKILL)
                _ = await first.process.waitForExit()
            } catch {
                await first.process.stop()
                throw error
            }
            // The same port, so the client's saved channel (kept per server URL) is the one it uses.
            try await Tunnel.withServer(arguments, port: first.port) { server in
                let client = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                let delivered = try #require(try await recorder.waitFor(1).first)
                #expect(delivered.method == "PUT")
                #expect(delivered.path == "/durable")
                #expect(delivered.header("X-Webhook-Delivery-Id") == id)
                #expect(delivered.bodySHA256 == sha256Hex(QueueTest.binaryBody))
                await client.process.stop()
            }
        }
    }

    @Test("Limits: a full channel gets 503 + Retry-After, a body larger than a channel may queue 413, never a 202")
    func limits() async throws {
        let recorder = RecordingApp()
        try await recorder.app.run { appPort in
            try await Tunnel.withServer(["--offline-hold", "200ms", "--queue-max-webhooks", "2", "--queue-max-bytes", "8KiB"]) { server in
                let target = "http://127.0.0.1:\(appPort)"
                let client = try await Tunnel.startClient(server: server, targetURL: target, stateDir: try Tunnel.makeStateDirectory())
                try await QueueTest.sendAway(client, from: server)
                for index in 0..<2 {
                    _ = try QueueTest.queuedID(try await Sender.send(.POST, client.webhookURL + "/\(index)", body: ByteBuffer(string: "small")))
                }
                let full = try await Sender.send(.POST, client.webhookURL + "/2", body: ByteBuffer(string: "small"))
                #expect(full.status == 503)
                #expect(!full.headers["Retry-After"].isEmpty)
                #expect(full.headers["X-Webhook-Delivery-Id"].isEmpty)
                #expect(errorMessage(full) != nil)

                let other = try await Tunnel.startClient(server: server, targetURL: target, stateDir: try Tunnel.makeStateDirectory())
                try await QueueTest.sendAway(other, from: server)
                let large = try await Sender.send(.POST, other.webhookURL, body: ByteBuffer(repeating: 0x61, count: 16 * 1024))
                #expect(large.status == 413)
                #expect(errorMessage(large) != nil)

                #expect(try await metric(server, "wow_queue_stored_total") == 2)
                #expect(try await metric(server, #"wow_queue_rejected_total{reason="channel_count"}"#) == 1)
                #expect(try await metric(server, #"wow_queue_rejected_total{reason="body_too_large"}"#) == 1)
            }
        }
    }

    @Test("Expiry: a webhook older than --queue-max-age is removed undelivered")
    func expiry() async throws {
        let recorder = RecordingApp()
        try await recorder.app.run { appPort in
            try await Tunnel.withServer(["--offline-hold", "200ms", "--queue-max-age", "2s"]) { server in
                let target = "http://127.0.0.1:\(appPort)"
                let stateDir = try Tunnel.makeStateDirectory()
                let first = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                try await QueueTest.sendAway(first, from: server)
                _ = try QueueTest.queuedID(try await Sender.send(.POST, first.webhookURL + "/old", body: ByteBuffer(string: "old")))
                try await waitUntil("the webhook expires") { try await metric(server, "wow_queue_expired_total") == 1 }
                try await waitUntil("the queue's gauges show it gone") { try await metric(server, "wow_queue_depth") == 0 }

                let second = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                #expect(try await Sender.send(.POST, second.webhookURL + "/live", body: ByteBuffer(string: "live")).status == 200)
                #expect(recorder.requests.map(\.path) == ["/live"])
                #expect(try await metric(server, "wow_queue_delivered_total") == 0)
                await second.process.stop()
            }
        }
    }

    @Test("A 5xx from the app is retried with backoff and a growing attempt number, then delivered once")
    func retriedAfterServerErrors() async throws {
        // The first two deliveries fail with 500 and 503; the third succeeds.
        let recorder = RecordingApp { _, before in before < 2 ? [500, 503][before] : 200 }
        try await recorder.app.run { appPort in
            try await Tunnel.withServer(["--offline-hold", "200ms"]) { server in
                let target = "http://127.0.0.1:\(appPort)"
                let stateDir = try Tunnel.makeStateDirectory()
                let first = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                try await QueueTest.sendAway(first, from: server)
                let id = try QueueTest.queuedID(try await Sender.send(.POST, first.webhookURL + "/flaky", body: ByteBuffer(string: "retry me")))

                let second = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                let seen = try await recorder.waitFor(3)
                #expect(seen.map { $0.header("X-Webhook-Delivery-Id") } == [id, id, id])
                #expect(seen.map { $0.header("X-Webhook-Delivery-Attempt") } == ["1", "2", "3"])
                try await waitUntil("the delivery is counted") { try await metric(server, "wow_queue_delivered_total") == 1 }
                try await waitUntil("the queue is empty") { try await metric(server, "wow_queue_depth") == 0 }
                #expect(recorder.requests.count == 3)
                await second.process.stop()
            }
        }
    }

    @Test("A channel with queued webhooks outlives --cleanup-duration; a live webhook during a backlog goes straight through")
    func reservedWhileQueued() async throws {
        // The first queued delivery is held at the app until the live webhook has been answered.
        let gate = AsyncStream.makeStream(of: Void.self)
        let arrived = AsyncStream.makeStream(of: Void.self)
        let app = LocalApp { router in
            router.post("/queued") { request, _ -> String in
                for try await _ in request.body {}
                arrived.continuation.yield()
                var iterator = gate.stream.makeAsyncIterator()
                await iterator.next()
                return "queued"
            }
            router.post("/live") { request, _ -> String in
                for try await _ in request.body {}
                return "live"
            }
        }
        try await app.run { appPort in
            try await Tunnel.withServer(["--offline-hold", "200ms", "--cleanup-duration", "1s"]) { server in
                let target = "http://127.0.0.1:\(appPort)"
                let stateDir = try Tunnel.makeStateDirectory()
                let first = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                try await QueueTest.sendAway(first, from: server)
                _ = try QueueTest.queuedID(try await Sender.send(.POST, first.webhookURL + "/queued", body: ByteBuffer(string: "q")))
                // Two unused channels issued one after the other and swept: at least two sweeps passed.
                for _ in 0..<2 {
                    let issued = try await issueChannel(server)
                    try await waitUntil("an unused channel is swept") { try await !channelIDs(server).contains(issued.channel_id) }
                }
                #expect(try await channelIDs(server).contains(first.channelID), "swept although it has a queued webhook")

                let second = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                #expect(second.channelID == first.channelID)
                let stream = arrived.stream
                try await withTimeout("the queued delivery reaching the app") {
                    for await _ in stream { return }
                }
                // The queued delivery is now waiting at the app; a live webhook does not wait behind it.
                let live = try await withTimeout("the live webhook's answer during the backlog", .seconds(20)) {
                    try await Sender.send(.POST, second.webhookURL + "/live", body: ByteBuffer(string: "l"))
                }
                #expect(live.status == 200)
                #expect(live.text == "live")
                gate.continuation.yield()
                gate.continuation.finish()
                try await waitUntil("the queued webhook is delivered") { try await metric(server, "wow_queue_delivered_total") == 1 }
                await second.process.stop()
            }
        }
    }

    @Test("The original Go client's framing: a webhook queued before it connects reaches it whole, marked, and is removed")
    func legacyClientGetsQueuedWebhook() async throws {
        try await Tunnel.withServer(["--offline-hold", "200ms"]) { server in
            // `/new` without X-Webhook-When-Offline, as the Go client calls it: queue mode.
            let channel = try await issueChannel(server)
            let id = try QueueTest.queuedID(
                try await Sender.send(.POST, "\(server.url)/webhook/\(channel.channel_id)/legacy?q=1", body: ByteBuffer(string: #"{"old":"client"}"#))
            )
            let captured = Mutex("")
            _ = try await withTimeout("the queued webhook at the legacy client", .seconds(30)) {
                try await WebSocketClient.connect(
                    url: "ws://127.0.0.1:\(server.port)/ws/\(channel.channel_id)",
                    configuration: .init(maxFrameSize: 1 << 20),
                    logger: Logger(label: "legacy-client")
                ) { inbound, outbound, _ in
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        guard case .text(let text) = message else { continue }
                        let envelope = try JSONDecoder().decode(LegacyClientTests.Envelope.self, from: Data(text.utf8))
                        let request = String(decoding: Data(base64Encoded: envelope.payload) ?? Data(), as: UTF8.self)
                        let response = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
                        let answer = LegacyClientTests.Envelope(req_id: envelope.req_id, payload: Data(response.utf8).base64EncodedString())
                        try await outbound.write(.text(String(decoding: try JSONEncoder().encode(answer), as: UTF8.self)))
                        try await waitUntil("the delivery is recorded") { try await metric(server, "wow_queue_delivered_total") == 1 }
                        captured.withLock { $0 = request }
                        try await outbound.close(.normalClosure, reason: nil)
                        return
                    }
                }
            }
            let request = captured.withLock { $0 }
            #expect(request.hasPrefix("POST /webhook/\(channel.channel_id)/legacy?q=1 HTTP/1.1\r\n"))
            #expect(request.lowercased().contains("x-webhook-delivery-id: \(id)\r\n"))
            #expect(request.lowercased().contains("x-webhook-delivery-attempt: 1\r\n"))
            #expect(request.hasSuffix(#"{"old":"client"}"#))
            try await waitUntil("the queue is empty") { try await metric(server, "wow_queue_depth") == 0 }
        }
    }

    @Test("A 200 MiB body is queued and delivered byte-exact with the server under 64 MiB resident")
    func largeQueuedBody() async throws {
        let size = LargeBodyTests.size
        let recorder = RecordingApp()
        try await recorder.app.run { appPort in
            let arguments = [
                "--offline-hold", "200ms", "--max-body-size", "300MiB", "--queue-max-bytes", "300MiB", "--request-timeout", "5m",
            ]
            try await Tunnel.withServer(arguments) { server in
                let target = "http://127.0.0.1:\(appPort)"
                let stateDir = try Tunnel.makeStateDirectory()
                let clientArguments = ["--transfer-request-timeout", "5m"]
                let first = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir, extraArguments: clientArguments)
                try await QueueTest.sendAway(first, from: server)

                var upload = HTTPClientRequest(url: first.webhookURL + "/large")
                upload.method = .POST
                upload.body = .stream(GeneratedBody(size: size), length: .known(Int64(size)))
                let response = try await Sender.client.execute(upload, timeout: .minutes(5))
                let answer = Sender.Answer(
                    status: Int(response.status.code),
                    headers: response.headers,
                    body: try await response.body.collect(upTo: 4096)
                )
                let id = try QueueTest.queuedID(answer)
                #expect(try await metric(server, "wow_queue_stored_total") == 1)

                let second = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir, extraArguments: clientArguments)
                let delivered = try #require(try await recorder.waitFor(1, timeout: .seconds(300)).first)
                #expect(delivered.header("X-Webhook-Delivery-Id") == id)
                #expect(delivered.bodyCount == size)
                #expect(delivered.bodySHA256 == (await GeneratedBody(size: size).sha256()))

                let peak = try #require(server.process.peakResidentBytes())
                print("VmHWM after queueing and delivering 200 MiB: server \(peak / 1024) KiB")
                #expect(peak < LargeBodyTests.memoryLimit, "server peak \(peak / 1024 / 1024) MiB")
                await second.process.stop()
            }
        }
    }

    @Test("Bad queue flags exit 64 naming the flag; a --data-dir that cannot be opened is a start-up error")
    func flags() async throws {
        for (arguments, flag) in [
            (["--queue-max-age", "0"], "--queue-max-age"),
            (["--queue-max-webhooks", "0"], "--queue-max-webhooks"),
            (["--queue-max-bytes", "lots"], "--queue-max-bytes"),
            (["--offline-hold", "soon"], "--offline-hold"),
            (["--queue-url", "mysql://db/queue"], "--queue-url"),
        ] {
            let result = try await runToEnd(["server", "--host", "127.0.0.1", "--port", "0"] + arguments)
            #expect(result.status == 64, "\(arguments)")
            let firstLine = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
            #expect(firstLine.hasPrefix("Error:") && firstLine.contains(flag), "\(arguments): \(firstLine)")
        }
        // A regular file where the directory should be: the server must not start.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("wow-not-a-dir-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        let result = try await withTimeout("the server refusing the --data-dir", .seconds(30)) {
            try await runToEnd(["server", "--host", "127.0.0.1", "--port", "0", "--data-dir", file])
        }
        #expect(result.status != 0)
        #expect(!result.stdout.contains("listening on"))
        #expect(result.stderr.contains("--data-dir"), "\(result.stderr)")
    }
}
