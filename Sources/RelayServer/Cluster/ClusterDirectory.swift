import AsyncHTTPClient
import Foundation
import Logging
import Membership
import NIOCore
import NIOHTTP1

/// Where channels live in the cluster: this replica's peers and what each holds.
///
/// Peers are the live memberlist members; what they hold is read from their `/internal/channels`,
/// concurrently and with a short timeout, so a dead or slow peer is left out of an answer instead of
/// stalling it. Answers are cached briefly and concurrent readers share one refresh, so a burst of
/// webhooks that reach the wrong replica costs one round of requests, not one per webhook.
actor ClusterDirectory {
    struct Replica: Sendable {
        var url: String
        var known: Set<String>
        var connected: Set<String>
    }

    private var memberlist: Memberlist?
    private let httpClient: HTTPClient
    private let internalToken: String?
    private let timeout: Duration
    private let logger: Logger
    private var cached: (at: ContinuousClock.Instant, replicas: [Replica])?
    private var refreshing: Task<[Replica], Never>?
    /// Every channel seen on any peer, and when it was last seen: when a replica dies its channels
    /// are still known here, so their webhooks are held for the client's reconnect (then 503), not 404.
    private var remembered: [String: ContinuousClock.Instant] = [:]
    private let memory: Duration = .seconds(600)

    init(httpClient: HTTPClient, internalToken: String?, timeout: Duration, logger: Logger) {
        self.httpClient = httpClient
        self.internalToken = internalToken
        self.timeout = timeout
        self.logger = logger
    }

    func attach(_ memberlist: Memberlist) {
        self.memberlist = memberlist
    }

    /// Live members, this replica included; empty until the node is bound.
    func members() async -> [Member] {
        await memberlist?.members() ?? []
    }

    /// The base URLs of the live peers (from their metadata), this replica excluded.
    func peerURLs() async -> [String] {
        guard let memberlist else { return [] }
        return await memberlist.members().filter { $0.name != memberlist.name }.map(\.metaString).filter { !$0.isEmpty }
    }

    /// What every live peer holds, no older than `maxAge`.
    func replicas(maxAge: Duration) async -> [Replica] {
        if let cached, ContinuousClock.now - cached.at <= maxAge { return cached.replicas }
        if let refreshing { return await refreshing.value }
        let urls = await peerURLs()
        let task = Task { await self.fetch(urls) }
        refreshing = task
        let replicas = await task.value
        let now = ContinuousClock.now
        cached = (now, replicas)
        refreshing = nil
        for replica in replicas {
            for id in replica.known.union(replica.connected) { remembered[id] = now }
        }
        remembered = remembered.filter { now - $0.value < memory }
        return replicas
    }

    /// Where the cluster has a channel, from one look at the peers.
    struct Whereabouts {
        /// The peer whose client for the channel is connected now, if any.
        var connectedAt: String?
        /// Whether a peer knows the channel (issued or connected there), or did in the last minutes.
        var known: Bool
    }

    func locate(_ id: String, maxAge: Duration) async -> Whereabouts {
        let replicas = await replicas(maxAge: maxAge)
        let connectedAt = replicas.first { $0.connected.contains(id) }?.url
        let known = connectedAt != nil || remembered[id] != nil || replicas.contains { $0.known.contains(id) }
        return Whereabouts(connectedAt: connectedAt, known: known)
    }

    private nonisolated func fetch(_ urls: [String]) async -> [Replica] {
        await withTaskGroup(of: Replica?.self) { group in
            for url in urls {
                group.addTask {
                    do {
                        return try await self.fetch(url)
                    } catch {
                        self.logger.debug("peer left out: /internal/channels failed", metadata: ["peer": "\(url)", "error": "\(error)"])
                        return nil
                    }
                }
            }
            var replicas: [Replica] = []
            for await replica in group {
                if let replica { replicas.append(replica) }
            }
            return replicas.sorted { $0.url < $1.url }
        }
    }

    private nonisolated func fetch(_ url: String) async throws -> Replica {
        var request = HTTPClientRequest(url: url + "/internal/channels")
        if let internalToken, !internalToken.isEmpty {
            request.headers.add(name: "Authorization", value: "Bearer \(internalToken)")
        }
        let response = try await httpClient.execute(request, timeout: .init(timeout))
        let body = try await response.body.collect(upTo: 32 << 20)
        guard response.status == .ok else { throw PeerError("\(url)/internal/channels answered \(response.status.code)") }
        let channels = try JSONDecoder().decode(PeerChannels.self, from: Data(body.readableBytesView))
        return Replica(url: url, known: Set(channels.ws_channels), connected: Set(channels.webhook_channels))
    }
}

struct PeerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
