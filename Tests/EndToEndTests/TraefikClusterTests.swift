import Foundation
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The production topology: Traefik in front, polling one replica's `/traefik-config`.
@Suite("Cluster behind a real Traefik", .enabled(if: Traefik.binary != nil, "needs TRAEFIK_BIN or traefik on the PATH"))
struct TraefikClusterTests {
    struct Connected: Sendable {
        var name: String
        var client: ClientHandle
    }

    @Test("Clients and webhooks go through Traefik; a killed replica's clients reconnect to survivors and webhooks flow again within 15 s")
    func failover() async throws {
        let network = LoopbackNetwork.random()
        let entry = "http://\(network.host(1)):8000"
        try await Cluster.withReplicas(3, network: network, extra: ["--public-url", entry]) { replicas, network in
            let urls = Set(replicas.map(\.url))
            for replica in replicas { try await Cluster.waitForMembers(of: replica, urls: urls) }
            let traefik = try await Traefik.start(host: network.host(1), port: 8000, provider: replicas[0], token: Cluster.internalToken)
            defer { traefik.process.signal(SIGKILL) }
            let gateway = ServerHandle(process: traefik.process, port: 8000, host: network.host(1))

            try await withApps(["app-0", "app-1", "app-2", "app-3", "app-4", "app-5"]) { ports in
                var connected: [Connected] = []
                defer { for entry in connected { entry.client.process.signal(SIGKILL) } }
                // Clients land on replicas as Traefik balances them; keep adding until one sits on a
                // replica other than the one Traefik polls, which is the one this test kills.
                var victim: ServerHandle?
                for (name, port) in ports where victim == nil || connected.count < 3 {
                    let client = try await Tunnel.startClient(
                        server: gateway,
                        targetURL: "http://127.0.0.1:\(port)",
                        stateDir: try Tunnel.makeStateDirectory()
                    )
                    connected.append(Connected(name: name, client: client))
                    #expect(client.webhookURL.hasPrefix("\(entry)/webhook/"))
                    let holder = try await Self.holder(of: client.channelID, in: replicas)
                    if victim == nil, let holder, holder.url != replicas[0].url { victim = holder }
                }
                let killed = try #require(victim, "no client landed on replicas 1 or 2 after \(connected.count) clients")

                for entry in connected { try await Self.expectDelivered(entry, via: traefik) }

                let moving = try await connected.asyncFilter { try await Self.holder(of: $0.client.channelID, in: replicas)?.url == killed.url }
                let killedAt = ContinuousClock.now
                await killed.process.stop()
                for entry in moving {
                    // Until the client is back, the sender may get 502/503; never another client's answer.
                    try await waitUntil("webhooks for \(entry.name) flow again", timeout: .seconds(15)) {
                        let answer = try await Sender.send(.POST, entry.client.webhookURL + "/who", body: ByteBuffer(string: "after"))
                        if answer.status == 200 { #expect(answer.text == "\(entry.name) after") }
                        return answer.status == 200
                    }
                }
                print("traefik: webhooks for \(moving.count) moved client(s) flowed again \(ContinuousClock.now - killedAt) after the kill")
                // Every channel flows within the same 15 s of the kill: Traefik may still send a
                // webhook to the dead replica (a 502 of its own) until its next poll of the config
                // drops it, which the faster data path now reaches before the poll does.
                for entry in connected {
                    let left = max(.seconds(1), .seconds(15) - (ContinuousClock.now - killedAt))
                    try await waitUntil("webhooks for \(entry.name) flow within 15 s of the kill", timeout: left) {
                        let answer = try await Sender.send(.POST, entry.client.webhookURL + "/who", body: ByteBuffer(string: "hello"))
                        if answer.status == 200 { #expect(answer.text == "\(entry.name) hello") }
                        return answer.status == 200
                    }
                }
            }
        }
    }

    static func expectDelivered(_ entry: Connected, via traefik: Traefik) async throws {
        let answer = try await Sender.send(.POST, entry.client.webhookURL + "/who", body: ByteBuffer(string: "hello"))
        #expect(answer.status == 200)
        #expect(answer.text == "\(entry.name) hello")
    }

    /// The replica whose client for `channel` is connected.
    static func holder(of channel: String, in replicas: [ServerHandle]) async throws -> ServerHandle? {
        for replica in replicas {
            guard
                let answer = try? await Sender.send(.GET, "\(replica.url)/internal/channels", headers: Cluster.internalHeaders, timeout: .seconds(2))
            else { continue }
            let object = try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [String: Any]
            if (object?["webhook_channels"] as? [String] ?? []).contains(channel) { return replica }
        }
        return nil
    }
}

/// Runs one named app per name for the duration of `body`, which gets (name, port) pairs.
func withApps<T: Sendable>(_ names: [String], _ body: @Sendable ([(String, Int)]) async throws -> T) async throws -> T {
    guard let first = names.first else { return try await body([]) }
    return try await namedApp(first).run { port in
        try await withApps(Array(names.dropFirst())) { rest in try await body([(first, port)] + rest) }
    }
}

extension Array {
    func asyncFilter(_ keep: (Element) async throws -> Bool) async rethrows -> [Element] {
        var kept: [Element] = []
        for element in self where try await keep(element) { kept.append(element) }
        return kept
    }
}
