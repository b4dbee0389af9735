import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// The inspector's JSON API through the real binary: a server, a client with
/// `--inspect 127.0.0.1:0` and a local app that records what it gets
/// (docs/inspector.md).
@Suite("Inspector API")
struct InspectorAPITests {
    /// What the local app received, in order.
    final class Recorder: Sendable {
        struct Request: Sendable {
            var path: String
            var headers: [(String, String)]
            var body: [UInt8]
        }

        private let requests = Mutex<[Request]>([])
        var all: [Request] { self.requests.withLock { $0 } }
        func add(_ request: Request) { self.requests.withLock { $0.append(request) } }
    }

    static func app(_ recorder: Recorder) -> LocalApp {
        LocalApp { router in
            let record: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
                let body = try await request.body.collect(upTo: 16 << 20)
                recorder.add(
                    .init(
                        path: request.uri.description,
                        headers: request.headers.map { ($0.name.rawName, $0.value) },
                        body: Array(body.readableBytesView)
                    )
                )
                return Response(
                    status: .ok,
                    headers: [.contentType: "text/plain"],
                    body: .init(byteBuffer: ByteBuffer(string: "got \(body.readableBytes)"))
                )
            }
            router.post("/**", use: record)
            router.put("/**", use: record)
        }
    }

    static func json(_ answer: Sender.Answer) throws -> [String: Any] {
        try #require((try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView))) as? [String: Any])
    }

    static func list(_ inspector: String) async throws -> [[String: Any]] {
        let answer = try await Sender.send(.GET, inspector + "/api/webhooks")
        #expect(answer.status == 200)
        return try #require(try Self.json(answer)["webhooks"] as? [[String: Any]])
    }

    /// Polls the list until `predicate` holds (the history is written off the data path).
    static func waitForList(
        _ inspector: String,
        _ what: String,
        _ predicate: @escaping @Sendable ([[String: Any]]) -> Bool
    ) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            let list = try await Self.list(inspector)
            if predicate(list) { return list }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimedOut(what: what)
    }

    static func withInspector<T: Sendable>(
        _ recorder: Recorder,
        clientArguments: [String] = [],
        serverArguments: [String] = [],
        _ body: @Sendable (ServerHandle, ClientHandle, String) async throws -> T
    ) async throws -> T {
        try await Tunnel.withTunnel(
            serverArguments: serverArguments,
            clientArguments: ["--inspect", "127.0.0.1:0"] + clientArguments,
            app: Self.app(recorder)
        ) { server, client in
            try await body(server, client, try #require(client.inspectorURL))
        }
    }

    @Test("A webhook's detail has both heads as received and the exact bytes")
    func detailHasHeadsAndBytes() async throws {
        let recorder = Recorder()
        try await Self.withInspector(recorder) { _, client, inspector in
            let body = #"{"zen":"Keep it logically awesome."}"#
            let answer = try await Sender.send(
                .POST,
                client.webhookURL + "/github?x=1",
                headers: [("Content-Type", "application/json"), ("X-Twice", "one"), ("x-twice", "two"), ("X-GitHub-Event", "ping")],
                body: ByteBuffer(string: body)
            )
            #expect(answer.status == 200)
            let list = try await Self.waitForList(inspector, "the webhook to be complete") { $0.first?["state"] as? String == "complete" }
            let id = try #require(list.first?["id"] as? String)
            #expect(list.first?["path"] as? String == "/github?x=1")
            #expect(list.first?["request_size"] as? Int == body.utf8.count)
            let detail = try Self.json(try await Sender.send(.GET, inspector + "/api/webhooks/\(id)"))
            let request = try #require(detail["request"] as? [String: Any])
            let headers = try #require(request["headers"] as? [[String]])
            let names = headers.map { $0[0] }
            let twice = try #require(names.firstIndex(of: "X-Twice"))
            #expect(headers[twice] == ["X-Twice", "one"] && headers[twice + 1] == ["x-twice", "two"])
            #expect(request["body_base64"] as? String == Data(body.utf8).base64EncodedString())
            #expect(request["body_sha256"] as? String == SHA256.hash(data: Data(body.utf8)).map { String(format: "%02x", $0) }.joined())
            let response = try #require(detail["response"] as? [String: Any])
            #expect(response["status"] as? Int == 200)
            #expect(Data(base64Encoded: response["body_base64"] as? String ?? "") == Data("got \(body.utf8.count)".utf8))
            let raw = try await Sender.send(.GET, inspector + "/api/webhooks/\(id)/request.body")
            #expect(raw.text == body)
            #expect(raw.headers.first(name: "Content-Type") == "application/octet-stream")
        }
    }

    @Test("Replay sends the same bytes to the local app with X-Webhook-Replay, and the console marks it")
    func replaySendsTheSameBytes() async throws {
        let recorder = Recorder()
        try await Self.withInspector(recorder) { _, client, inspector in
            let bytes: [UInt8] = Array(0...255) + Array("tail".utf8)
            _ = try await Sender.send(
                .POST,
                client.webhookURL + "/bin?a=b",
                headers: [("Content-Type", "application/octet-stream")],
                body: ByteBuffer(bytes: bytes)
            )
            let list = try await Self.waitForList(inspector, "the webhook") { $0.first?["state"] as? String == "complete" }
            let id = try #require(list.first?["id"] as? String)
            let answer = try await Sender.send(.POST, inspector + "/api/webhooks/\(id)/replay")
            #expect(answer.status == 201)
            let replay = try Self.json(answer)
            #expect(replay["replay_of"] as? String == id)
            #expect(replay["status"] as? Int == 200)
            #expect((replay["response"] as? [String: Any])?["status"] as? Int == 200)
            let received = recorder.all
            try #require(received.count == 2)
            #expect(received[1].body == bytes)
            #expect(received[1].path == "/bin?a=b")
            #expect(received[1].headers.contains { $0.0.lowercased() == "x-webhook-replay" && $0.1 == id })
            #expect(!received[0].headers.contains { $0.0.lowercased() == "x-webhook-replay" })
            _ = try await client.process.waitForLine(containing: "replay of \(id.prefix(8))")
            let after = try await Self.list(inspector)
            #expect(after.count == 2)
            #expect(after.first?["replay_of"] as? String == id)
        }
    }

    @Test("Edit and replay with GitHub re-signing verifies at the local app with the same secret")
    func editAndReplayWithGitHubSignature() async throws {
        let recorder = Recorder()
        try await Self.withInspector(recorder) { _, client, inspector in
            _ = try await Sender.send(
                .POST,
                client.webhookURL + "/github",
                headers: [("Content-Type", "application/json"), ("X-Hub-Signature-256", "sha256=0000")],
                body: ByteBuffer(string: #"{"action":"opened"}"#)
            )
            let list = try await Self.waitForList(inspector, "the webhook") { $0.first?["state"] as? String == "complete" }
            let id = try #require(list.first?["id"] as? String)
            let edited = #"{"action":"closed"}"#
            let edits = try JSONSerialization.data(withJSONObject: [
                "method": "PUT",
                "body_base64": Data(edited.utf8).base64EncodedString(),
                "sign": ["provider": "github", "secret": "It's a Secret to Everybody"],
            ])
            let answer = try await Sender.send(.POST, inspector + "/api/webhooks/\(id)/replay", body: ByteBuffer(bytes: Array(edits)))
            #expect(answer.status == 201)
            let received = try #require(recorder.all.last)
            #expect(String(decoding: received.body, as: UTF8.self) == edited)
            let signatures = received.headers.filter { $0.0.lowercased() == "x-hub-signature-256" }
            try #require(signatures.count == 1)
            let mac = HMAC<SHA256>.authenticationCode(
                for: Array(edited.utf8),
                using: SymmetricKey(data: Array("It's a Secret to Everybody".utf8))
            )
            #expect(signatures[0].1 == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
            // The secret is never stored.
            let detail = try await Sender.send(.GET, inspector + "/api/webhooks/\(try #require(Self.json(answer)["id"] as? String))")
            #expect(!detail.text.contains("Secret to Everybody"))
        }
    }

    @Test("Bad replay edits are a 400 and an unknown id a 404, both as JSON")
    func badReplays() async throws {
        let recorder = Recorder()
        try await Self.withInspector(recorder) { _, client, inspector in
            _ = try await Sender.send(.POST, client.webhookURL + "/x", body: ByteBuffer(string: "a"))
            let list = try await Self.waitForList(inspector, "the webhook") { $0.first?["state"] as? String == "complete" }
            let id = try #require(list.first?["id"] as? String)
            let bad = try await Sender.send(.POST, inspector + "/api/webhooks/\(id)/replay", body: ByteBuffer(string: "{\"headers\": 3}"))
            #expect(bad.status == 400)
            #expect(try Self.json(bad)["error"] is String)
            let unknown = try await Sender.send(.POST, inspector + "/api/webhooks/no-such-id/replay")
            #expect(unknown.status == 404)
            #expect(try Self.json(unknown)["error"] is String)
            #expect(recorder.all.count == 1)
        }
    }

    @Test("A foreign Host or Origin is refused with 403")
    func foreignHostOrOriginRefused() async throws {
        let recorder = Recorder()
        try await Self.withInspector(recorder) { _, client, inspector in
            _ = try await Sender.send(.POST, client.webhookURL + "/x", body: ByteBuffer(string: "a"))
            let list = try await Self.waitForList(inspector, "the webhook") { $0.first?["state"] as? String == "complete" }
            let id = try #require(list.first?["id"] as? String)
            let port = try #require(inspector.split(separator: ":").last.map(String.init))
            for (name, value) in [("Host", "attacker.example:\(port)"), ("Origin", "http://attacker.example"), ("Origin", "null")] {
                let answer = try await Sender.send(.GET, inspector + "/api/webhooks", headers: [(name, value)])
                #expect(answer.status == 403, "\(name): \(value)")
                #expect(try Self.json(answer)["error"] is String)
            }
            let replay = try await Sender.send(.POST, inspector + "/api/webhooks/\(id)/replay", headers: [("Origin", "http://evil.test")])
            #expect(replay.status == 403)
            #expect(recorder.all.count == 1)
            let own = try await Sender.send(
                .GET,
                inspector + "/api/webhooks",
                headers: [("Host", "localhost:\(port)"), ("Origin", "http://localhost:\(port)")]
            )
            #expect(own.status == 200)
        }
    }

    @Test("The HAR export is HAR 1.2 with one entry per chosen webhook")
    func harExport() async throws {
        let recorder = Recorder()
        try await Self.withInspector(recorder) { _, client, inspector in
            for name in ["one", "two", "three"] {
                _ = try await Sender.send(.POST, client.webhookURL + "/\(name)?n=\(name)", body: ByteBuffer(string: "{\"n\":\"\(name)\"}"))
            }
            let list = try await Self.waitForList(inspector, "three webhooks") {
                $0.count == 3 && $0.allSatisfy { $0["state"] as? String == "complete" }
            }
            let all = try Self.json(try await Sender.send(.GET, inspector + "/api/har"))
            let log = try #require(all["log"] as? [String: Any])
            #expect(log["version"] as? String == "1.2")
            #expect((log["creator"] as? [String: Any])?["name"] as? String == "webhook-over-websocket")
            let entries = try #require(log["entries"] as? [[String: Any]])
            #expect(entries.count == 3)
            let request = try #require(entries.first?["request"] as? [String: Any])
            #expect((request["url"] as? String)?.hasSuffix("/one?n=one") == true)
            #expect((request["postData"] as? [String: Any])?["text"] as? String == #"{"n":"one"}"#)
            #expect((entries.first?["response"] as? [String: Any])?["status"] as? Int == 200)
            #expect(entries.first?["timings"] is [String: Any])
            let ids = list.prefix(2).compactMap { $0["id"] as? String }
            let some = try Self.json(try await Sender.send(.GET, inspector + "/api/har?ids=" + ids.joined(separator: ",")))
            let chosen = try #require((some["log"] as? [String: Any])?["entries"] as? [[String: Any]])
            #expect(chosen.count == 2)
        }
    }

    @Test("The history survives a client restart")
    func historySurvivesRestart() async throws {
        let recorder = Recorder()
        try await Self.app(recorder).run { appPort in
            try await Tunnel.withServer { server in
                let stateDir = try Tunnel.makeStateDirectory()
                let target = "http://127.0.0.1:\(appPort)"
                let first = try await Tunnel.startClient(
                    server: server,
                    targetURL: target,
                    stateDir: stateDir,
                    extraArguments: ["--inspect", "127.0.0.1:0"]
                )
                do {
                    _ = try await Sender.send(.POST, first.webhookURL + "/before-restart", body: ByteBuffer(string: "kept"))
                    _ = try await Self.waitForList(try #require(first.inspectorURL), "the webhook") { $0.first?["state"] as? String == "complete" }
                    first.process.signal(SIGTERM)
                    #expect(await first.process.waitForExit() == 0)
                } catch {
                    await first.process.stop()
                    throw error
                }
                let second = try await Tunnel.startClient(
                    server: server,
                    targetURL: target,
                    stateDir: stateDir,
                    extraArguments: ["--inspect", "127.0.0.1:0"]
                )
                do {
                    let list = try await Self.list(try #require(second.inspectorURL))
                    #expect(list.map { $0["path"] as? String } == ["/before-restart"])
                    #expect(list.first?["request_size"] as? Int == 4)
                    await second.process.stop()
                } catch {
                    await second.process.stop()
                    throw error
                }
            }
        }
    }

    @Test("A large body listed in the history is still there, byte for byte, after the client is killed")
    func aLoggedBodySurvivesKill9() async throws {
        let recorder = Recorder()
        try await Self.app(recorder).run { appPort in
            try await Tunnel.withServer { server in
                let stateDir = try Tunnel.makeStateDirectory()
                let target = "http://127.0.0.1:\(appPort)"
                // Past the body log's threshold: kept in a segment file, not in the SQLite row.
                let body = (0..<100_000).map { _ in UInt8.random(in: 0...255) }
                let first = try await Tunnel.startClient(
                    server: server,
                    targetURL: target,
                    stateDir: stateDir,
                    extraArguments: ["--inspect", "127.0.0.1:0"]
                )
                do {
                    let sent = try await Sender.send(.POST, first.webhookURL + "/before-kill", body: ByteBuffer(bytes: body))
                    #expect(sent.text == "got \(body.count)")
                    // Listed complete: the row is committed. Killed right after, with no shutdown.
                    _ = try await Self.waitForList(try #require(first.inspectorURL), "the webhook") { $0.first?["state"] as? String == "complete" }
                } catch {
                    await first.process.stop()
                    throw error
                }
                await first.process.stop()
                let second = try await Tunnel.startClient(
                    server: server,
                    targetURL: target,
                    stateDir: stateDir,
                    extraArguments: ["--inspect", "127.0.0.1:0"]
                )
                do {
                    let inspector = try #require(second.inspectorURL)
                    let list = try await Self.list(inspector)
                    #expect(list.map { $0["path"] as? String } == ["/before-kill"])
                    #expect(list.first?["request_size"] as? Int == body.count)
                    let id = try #require(list.first?["id"] as? String)
                    let stored = try await Sender.send(.GET, inspector + "/api/webhooks/\(id)/request.body")
                    #expect(stored.status == 200, "\(stored.text)")
                    // Compared as buffers: a mismatch prints a short description, not 100,000 numbers.
                    #expect(stored.body == ByteBuffer(bytes: body), "\(stored.body.readableBytes) bytes read back")
                    await second.process.stop()
                } catch {
                    await second.process.stop()
                    throw error
                }
            }
        }
    }

    @Test("The count bound keeps the newest webhooks")
    func countBoundEvictsOldest() async throws {
        let recorder = Recorder()
        try await Self.withInspector(recorder, clientArguments: ["--inspect-max-webhooks", "3"]) { _, client, inspector in
            for index in 1...5 {
                _ = try await Sender.send(.POST, client.webhookURL + "/n\(index)", body: ByteBuffer(string: "\(index)"))
            }
            let list = try await Self.waitForList(inspector, "the newest three") { list in
                list.compactMap { $0["path"] as? String } == ["/n5", "/n4", "/n3"] && list.allSatisfy { $0["state"] as? String == "complete" }
            }
            #expect(list.count == 3)
        }
    }

    @Test("The byte bound keeps the newest webhooks")
    func byteBoundEvictsOldest() async throws {
        let recorder = Recorder()
        // Each webhook stores about 40 KiB (its request; the answer is a few bytes): 100 KiB holds two.
        try await Self.withInspector(recorder, clientArguments: ["--inspect-max-bytes", "100KiB"]) { _, client, inspector in
            let body = ByteBuffer(repeating: UInt8(ascii: "b"), count: 40 * 1024)
            for index in 1...4 {
                _ = try await Sender.send(.POST, client.webhookURL + "/b\(index)", body: body)
            }
            _ = try await Self.waitForList(inspector, "the newest two") { list in
                list.compactMap { $0["path"] as? String } == ["/b4", "/b3"] && list.allSatisfy { $0["state"] as? String == "complete" }
            }
        }
    }

    @Test("A 200 MiB webhook is kept as its first bytes, size and SHA-256; the client stays under 64 MiB")
    func largeBodyCapturedAsHead() async throws {
        let app = LocalApp { router in
            router.post("/sink") { request, _ -> String in
                var total = 0
                for try await chunk in request.body { total += chunk.readableBytes }
                return "\(total)"
            }
        }
        try await Tunnel.withTunnel(
            serverArguments: ["--max-body-size", "300MiB", "--request-timeout", "5m"],
            clientArguments: ["--inspect", "127.0.0.1:0", "--transfer-request-timeout", "5m"],
            app: app
        ) { _, client in
            let inspector = try #require(client.inspectorURL)
            let size = LargeBodyTests.size
            let expected = await GeneratedBody(size: size).sha256()
            var upload = HTTPClientRequest(url: client.webhookURL + "/sink")
            upload.method = .POST
            upload.body = .stream(GeneratedBody(size: size), length: .known(Int64(size)))
            let response = try await Sender.client.execute(upload, timeout: .minutes(5))
            #expect(response.status == .ok)
            #expect(String(buffer: try await response.body.collect(upTo: 1024)) == "\(size)")
            let list = try await Self.waitForList(inspector, "the large webhook") { $0.first?["state"] as? String == "complete" }
            // Streamed and captured (the row is committed): the peak so far is what capture cost.
            let peak = try #require(client.process.peakResidentBytes())
            #expect(peak < LargeBodyTests.memoryLimit, "client VmHWM \(peak / 1024 / 1024) MiB")
            let id = try #require(list.first?["id"] as? String)
            let detail = try Self.json(try await Sender.send(.GET, inspector + "/api/webhooks/\(id)"))
            let request = try #require(detail["request"] as? [String: Any])
            #expect(request["body_size"] as? Int == size)
            #expect(request["body_sha256"] as? String == expected)
            #expect(request["body_truncated"] as? Bool == true)
            let head = try #require(Data(base64Encoded: request["body_base64"] as? String ?? ""))
            #expect(head.count == 1 << 20)
            // The generator's chunk k is 64 KiB of byte k: the first MiB is chunks 0...15.
            #expect(head.first == 0 && head[GeneratedBody.chunkSize] == 1 && head.last == 15)
            // Not replayable as it was: only its head is kept.
            let replay = try await Sender.send(.POST, inspector + "/api/webhooks/\(id)/replay")
            #expect(replay.status == 409)
        }
    }

    @Test("The replay command prints the new answer, and exits 1 for an unknown id or no inspector")
    func replayCommand() async throws {
        let recorder = Recorder()
        try await Self.withInspector(recorder) { _, client, inspector in
            _ = try await Sender.send(.POST, client.webhookURL + "/cmd", body: ByteBuffer(string: #"{"a":1}"#))
            let list = try await Self.waitForList(inspector, "the webhook") { $0.first?["state"] as? String == "complete" }
            let id = try #require(list.first?["id"] as? String)
            let address = String(inspector.dropFirst("http://".count))
            let body = try Tunnel.makeStateDirectory() + "/body.json"
            try Data(#"{"a":2}"#.utf8).write(to: URL(fileURLWithPath: body))
            try await withProcess(["replay", id, "--inspect", address, "--edit-body", body, "--sign", "github:cmd-secret"]) { process in
                let line = try await process.waitForLine(containing: "Replayed \(id) as ")
                #expect(line.contains(": 200"))
                #expect(await process.waitForExit() == 0)
            }
            let received = try #require(recorder.all.last)
            #expect(String(decoding: received.body, as: UTF8.self) == #"{"a":2}"#)
            let mac = HMAC<SHA256>.authenticationCode(for: Array(#"{"a":2}"#.utf8), using: SymmetricKey(data: Array("cmd-secret".utf8)))
            #expect(
                received.headers.contains {
                    $0.0.lowercased() == "x-hub-signature-256" && $0.1 == "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
                }
            )
            try await withProcess(["replay", "no-such-id", "--inspect", address]) { process in
                #expect(await process.waitForExit() == 1)
            }
            try await withProcess(["replay", id, "--inspect", "127.0.0.1:1"]) { process in
                #expect(await process.waitForExit() == 1)
            }
        }
    }

    @Test("The event stream announces a webhook when it is captured and when it completes")
    func eventStream() async throws {
        let recorder = Recorder()
        try await Self.withInspector(recorder) { _, client, inspector in
            let response = try await Sender.client.execute(HTTPClientRequest(url: inspector + "/api/events"), timeout: .seconds(30))
            #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
            try await withTimeout("two webhook events", .seconds(20)) {
                var text = ""
                var sent = false
                for try await chunk in response.body {
                    text += String(buffer: chunk)
                    if !sent, text.contains(": connected") {
                        sent = true
                        _ = try await Sender.send(.POST, client.webhookURL + "/live", body: ByteBuffer(string: "x"))
                    }
                    let events = text.components(separatedBy: "\n\n").filter { $0.hasPrefix("event: webhook\ndata: ") }
                    if events.contains(where: { $0.contains(#""state":"complete""#) && $0.contains(#""path":"/live""#) }) {
                        #expect(events.first?.contains(#""path":"/live""#) == true)
                        return
                    }
                }
                Issue.record("the event stream ended")
            }
        }
    }
}
