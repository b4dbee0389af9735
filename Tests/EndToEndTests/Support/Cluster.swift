import Foundation
import NIOCore
import NIOHTTP1

/// A loopback network of a test's own, `127.A.B.x`, so clusters in tests that run in parallel never
/// meet, even though every replica uses the standard gossip port.
struct LoopbackNetwork: Sendable {
    let prefix: String

    static func random() -> LoopbackNetwork {
        LoopbackNetwork(prefix: "127.\(Int.random(in: 16...250)).\(Int.random(in: 1...250))")
    }

    func host(_ last: Int) -> String { "\(prefix).\(last)" }
}

/// Several replicas of the real server on one loopback network, found through `--peers`.
enum Cluster {
    static let signingKey = "cluster-tests-signing-key-0123456789abcdef"
    static let internalToken = "cluster-tests-internal-token"
    static let gossipPort = 7946

    /// Replica `index` (0-based) listens on `network.host(index + 2)`.
    static func arguments(replicas: Int, network: LoopbackNetwork, extra: [String] = []) -> [String] {
        let peers = (0..<replicas).map { "\(network.host($0 + 2)):\(gossipPort)" }.joined(separator: ",")
        return [
            "--peers", peers,
            "--memberlist-port", "\(gossipPort)",
            "--memberlist-sync-duration", "1s",
            // Room for a replica slowed by the whole suite running beside it (the default is 1 s).
            "--peer-timeout", "5s",
            "--jwt-signing-key", signingKey,
            "--internal-token", internalToken,
        ] + extra
    }

    static func startReplica(_ index: Int, of count: Int, network: LoopbackNetwork, extra: [String] = []) async throws -> ServerHandle {
        try await Tunnel.startServer(arguments(replicas: count, network: network, extra: extra), host: network.host(index + 2))
    }

    /// `count` replicas for the duration of `body`, killed afterwards whatever happens.
    static func withReplicas<T: Sendable>(
        _ count: Int,
        network: LoopbackNetwork = .random(),
        extra: [String] = [],
        _ body: @Sendable ([ServerHandle], LoopbackNetwork) async throws -> T
    ) async throws -> T {
        var replicas: [ServerHandle] = []
        do {
            for index in 0..<count {
                replicas.append(try await startReplica(index, of: count, network: network, extra: extra))
            }
            let result = try await body(replicas, network)
            for replica in replicas { await replica.process.stop() }
            return result
        } catch {
            for replica in replicas { await replica.process.stop() }
            throw error
        }
    }

    static var internalHeaders: [(String, String)] { [("Authorization", "Bearer \(internalToken)")] }

    /// The members a replica sees (`/internal/members`): name, address, url, status.
    static func members(of replica: ServerHandle) async throws -> [[String: String]] {
        let answer = try await Sender.send(.GET, "\(replica.url)/internal/members", headers: internalHeaders, timeout: .seconds(5))
        return try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [[String: String]] ?? []
    }

    /// Waits until `replica` sees exactly the members whose URLs are `urls`.
    static func waitForMembers(of replica: ServerHandle, urls: Set<String>, timeout: Duration = .seconds(15)) async throws {
        try await waitUntil("\(replica.url) sees members \(urls.sorted())", timeout: timeout) {
            Set(try await members(of: replica).compactMap { $0["url"] }) == urls
        }
    }

    /// `/traefik-config` of a replica: the router and service tables.
    static func traefikConfig(_ replica: ServerHandle) async throws -> (routers: [String: [String: Any]], services: [String: [String: Any]]) {
        let answer = try await Sender.send(.GET, "\(replica.url)/traefik-config", headers: internalHeaders, timeout: .seconds(10))
        let object = try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [String: Any]
        let http = object?["http"] as? [String: Any]
        return (http?["routers"] as? [String: [String: Any]] ?? [:], http?["services"] as? [String: [String: Any]] ?? [:])
    }

    static func serviceURLs(_ services: [String: [String: Any]], _ name: String) -> [String] {
        ((services[name]?["loadBalancer"] as? [String: Any])?["servers"] as? [[String: Any]] ?? []).compactMap { $0["url"] as? String }
    }

    /// Issues a channel on `replica` (`/new`).
    static func issue(on replica: ServerHandle) async throws -> IssuedChannel {
        let answer = try await Sender.send(.GET, "\(replica.url)/new")
        return try JSONDecoder().decode(IssuedChannel.self, from: Data(answer.body.readableBytesView))
    }
}
