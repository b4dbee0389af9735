import Foundation
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import PostgresTestSupport
import Testing

@Suite("Offline queue in a cluster: PostgreSQL shared by the replicas")
struct OfflineQueueClusterTests {
    @Test(
        "Three replicas on one --queue-url: queued through A, A SIGKILLed, the client connects at B, the webhook arrives exactly once",
        .enabled(if: PostgresTestServer.isAvailable, "\(PostgresTestServer.unavailableMessage)")
    )
    func queuedAtOneReplicaDeliveredAtAnother() async throws {
        let postgres = try await PostgresTestServer.start()
        do {
            let queueURL = try await postgres.createDatabase("wow_queue")
            try await Self.run(queueURL: queueURL)
            try await postgres.stop()
        } catch {
            try? await postgres.stop()
            throw error
        }
    }

    private static func run(queueURL: String) async throws {
        let recorder = RecordingApp()
        try await recorder.app.run { appPort in
            try await Cluster.withReplicas(3, extra: ["--queue-url", queueURL, "--offline-hold", "500ms"]) { replicas, _ in
                let (a, b, c) = (replicas[0], replicas[1], replicas[2])
                let target = "http://127.0.0.1:\(appPort)"
                let stateDir = try Tunnel.makeStateDirectory()
                let client = try await Tunnel.startClient(server: a, targetURL: target, stateDir: stateDir)
                try await QueueTest.sendAway(client, from: a)
                let id = try QueueTest.queuedID(
                    try await Sender.send(.POST, client.webhookURL + "/clustered", body: ByteBuffer(bytes: QueueTest.binaryBody))
                )
                a.process.signal(SIGKILL)
                _ = await a.process.waitForExit()

                // The client comes back through another replica, as a load balancer would send it:
                // its saved channel (kept per server URL) under B's URL.
                try Self.copySavedChannel(in: stateDir, from: a.url, to: b.url)
                let moved = try await Tunnel.startClient(server: b, targetURL: target, stateDir: stateDir)
                #expect(moved.channelID == client.channelID)
                let delivered = try #require(try await recorder.waitFor(1).first)
                #expect(delivered.path == "/clustered")
                #expect(delivered.header("X-Webhook-Delivery-Id") == id)
                #expect(delivered.bodySHA256 == sha256Hex(QueueTest.binaryBody))

                // Once the shared queue is empty nobody can deliver it again: exactly once.
                try await waitUntil("the cluster's queue is empty") { try await metric(b, "wow_queue_depth") == 0 }
                try await waitUntil("B counts the delivery") { try await metric(b, "wow_queue_delivered_total") == 1 }
                #expect(try await metric(c, "wow_queue_delivered_total") == 0)
                #expect(recorder.requests.count == 1)
                await moved.process.stop()
            }
        }
    }

    /// Copies the client's saved channel from one server URL's file to another's (RelayClient's ChannelStore naming).
    static func copySavedChannel(in directory: String, from source: String, to destination: String) throws {
        func path(_ serverURL: String) -> String {
            let safe = serverURL.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }
            return directory + "/channel-\(String(safe)).json"
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path(source)))
        try data.write(to: URL(fileURLWithPath: path(destination)))
    }
}
