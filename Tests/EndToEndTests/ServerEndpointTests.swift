import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@Suite("Server endpoints, channel life and the command line")
struct ServerEndpointTests {
    @Test("Bad flags and values: a one-line error naming the flag, exit 64, nothing started")
    func badFlags() async throws {
        let cases: [([String], String)] = [
            (["server", "--port", "x"], "--port"),
            (["server", "--port", "70000"], "--port"),
            (["server", "--cleanup-duration", "5q"], "--cleanup-duration"),
            (["server", "--max-body-size", "lots"], "--max-body-size"),
            (["server", "--bogus"], "--bogus"),
            (["server", "--github-client-id", "x"], "--github-client-id"),
            (["server", "--github-client-id", "x", "--github-client-secret", "y"], "--jwt-signing-key"),
            (["client"], "--server-url"),
            (["client", "--server-url", "ftp://x"], "--server-url"),
            (["client", "--server-url", "http://x", "--transfer-request-timeout", "soon"], "--transfer-request-timeout"),
        ]
        for (arguments, flag) in cases {
            let result = try await runToEnd(arguments)
            #expect(result.status == 64, "\(arguments)")
            let firstLine = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
            #expect(firstLine.hasPrefix("Error:") && firstLine.contains(flag), "\(arguments): \(firstLine)")
        }
        let version = try await runToEnd(["version"])
        #expect(version.status == 0)
        #expect(version.stdout.hasPrefix("webhook-over-websocket "))
    }

    @Test("/internal/channels and /traefik-config describe this replica's channels")
    func internalState() async throws {
        try await Tunnel.withTunnel(app: inspectingApp()) { server, client in
            let idle = try await issueChannel(server)
            let channels = try await Sender.send(.GET, "\(server.url)/internal/channels")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(channels.body.readableBytesView)) as? [String: Any])
            #expect(Set(object["ws_channels"] as? [String] ?? []) == [client.channelID, idle.channel_id])
            #expect(object["webhook_channels"] as? [String] == [client.channelID])
            #expect(object["server_url"] as? String == "http://127.0.0.1:\(server.port)")

            let config = try await Sender.send(.GET, "\(server.url)/traefik-config")
            let http = try #require(
                (try JSONSerialization.jsonObject(with: Data(config.body.readableBytesView)) as? [String: Any])?["http"] as? [String: Any]
            )
            let routers = try #require(http["routers"] as? [String: [String: Any]])
            let services = try #require(http["services"] as? [String: [String: Any]])
            #expect(routers["webhook-\(client.channelID)"]?["rule"] as? String == "PathPrefix(`/webhook/\(client.channelID)`)")
            #expect(routers["ws-\(idle.channel_id)"]?["service"] as? String == "service-\(idle.channel_id)")
            #expect(routers["webhook-\(idle.channel_id)"] == nil)
            let servers = (services["service-\(client.channelID)"]?["loadBalancer"] as? [String: Any])?["servers"] as? [[String: String]]
            #expect(servers == [["url": "http://127.0.0.1:\(server.port)"]])

            let health = try await Sender.send(.GET, "\(server.url)/healthz")
            #expect(health.status == 200 && health.text.contains("\"status\":\"OK\""))
        }
    }

    @Test("Unused channels are swept every cleanup period, not once; connected ones stay")
    func sweeping() async throws {
        try await Tunnel.withTunnel(serverArguments: ["--cleanup-duration", "1s"], app: inspectingApp()) { server, client in
            for _ in 0..<2 {
                let issued = try await issueChannel(server)
                try await waitUntil("channel \(issued.channel_id) is swept") {
                    try await !channelIDs(server).contains(issued.channel_id)
                }
            }
            #expect(try await channelIDs(server).contains(client.channelID))
            #expect(try await Sender.send(.POST, client.webhookURL).status == 201)
        }
    }

    @Test("A known channel in reject mode without a client: the webhook is held, then 503 with Retry-After")
    func heldThenUnavailable() async throws {
        try await Tunnel.withServer { server in
            // The mode a client sends with --when-offline reject (queue mode is docs/offline-queue.md).
            let new = try await Sender.send(.GET, "\(server.url)/new", headers: [("X-Webhook-When-Offline", "reject")])
            let issued = try JSONDecoder().decode(IssuedChannel.self, from: Data(new.body.readableBytesView))
            let started = ContinuousClock.now
            let answer = try await Sender.send(.POST, "\(server.url)/webhook/\(issued.channel_id)/x", body: ByteBuffer(string: "{}"))
            #expect(answer.status == 503)
            #expect(!answer.headers["Retry-After"].isEmpty)
            #expect(errorMessage(answer) != nil)
            #expect(ContinuousClock.now - started >= .seconds(9))
        }
    }
}

func channelIDs(_ server: ServerHandle) async throws -> [String] {
    let answer = try await Sender.send(.GET, "\(server.url)/internal/channels")
    let object = try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [String: Any]
    return object?["ws_channels"] as? [String] ?? []
}

/// Polls `condition` until it holds, failing after `timeout`: for state that
/// changes on the server's own clock (sweeps), where there is no event to wait on.
func waitUntil(_ what: String, timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            throw ToolProcess.Timeout(waitingFor: what, output: [])
        }
        try await Task.sleep(for: .milliseconds(100))
    }
}

struct Finished: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the binary to completion and collects its output.
func runToEnd(_ arguments: [String]) async throws -> Finished {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: ToolProcess.binaryPath)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    return await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            continuation.resume(
                returning: Finished(
                    status: process.terminationStatus,
                    stdout: String(decoding: stdout, as: UTF8.self),
                    stderr: String(decoding: stderr, as: UTF8.self)
                )
            )
        }
    }
}

@Suite("Metrics")
struct MetricsTests {
    @Test("/metrics counts channels, webhooks by exact status code and bytes")
    func metrics() async throws {
        try await Tunnel.withTunnel(app: inspectingApp()) { server, client in
            _ = try await Sender.send(.POST, client.webhookURL + "/m", body: ByteBuffer(string: "12345"))
            _ = try await Sender.send(.POST, "\(server.url)/webhook/\(UUID().uuidString.lowercased())")
            let text = try await Sender.send(.GET, "\(server.url)/metrics").text
            #expect(text.contains("wow_channels_issued_total 1"))
            #expect(text.contains("wow_channels_connected 1"))
            #expect(text.contains(#"wow_webhooks_total{code="201"} 1"#))
            #expect(text.contains(#"wow_webhooks_total{code="404"} 1"#))
            #expect(!text.contains("status=\""))
            #expect(text.contains("wow_webhook_request_bytes 5"))
            #expect(text.contains("wow_webhook_duration_seconds_count 2"))
        }
    }
}
