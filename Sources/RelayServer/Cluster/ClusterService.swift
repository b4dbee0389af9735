import Foundation
import Logging
import Membership
import ServiceLifecycle

/// Runs this replica's memberlist node and peer discovery (docs/clustering.md).
///
/// The node's metadata is the replica's HTTP URL, which is known only once the HTTP server has
/// bound its port, so the node starts when the port arrives. Discovery resolves `--peer-domain` (or
/// `--peers`) every sync interval and joins the addresses that are not members yet, so replicas that
/// start in any order, or come back, find each other without a fixed seed.
struct ClusterService: Service {
    let configuration: ClusterConfiguration
    let directory: ClusterDirectory
    let bindHost: String
    let advertiseHost: String
    /// Yields the HTTP port once the server listens.
    let boundPorts: AsyncStream<Int>
    let serverURL: @Sendable (Int) -> String
    let logger: Logger

    func run() async throws {
        var ports = boundPorts.makeAsyncIterator()
        guard let port = await ports.next() else { return }
        let url = serverURL(port)
        let advertised = await Self.advertisedIP(advertiseHost)
        let memberlist = try await Memberlist.bind(
            MemberlistConfiguration(
                name: "\(ProcessInfo.processInfo.hostName)-\(UUID().uuidString.prefix(8).lowercased())",
                bindHost: bindHost,
                bindPort: configuration.memberlistPort,
                advertiseHost: advertised,
                meta: Array(url.utf8),
                swim: configuration.swim
            ),
            logger: logger
        )
        await directory.attach(memberlist)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await memberlist.run() }
            group.addTask { await discover(memberlist) }
            try await group.waitForAll()
        }
    }

    /// Joins the discovered peers that are not members yet, every sync interval until shutdown.
    private func discover(_ memberlist: Memberlist) async {
        while !Task.isCancelled {
            let candidates = await peerAddresses()
            let members = Set(await memberlist.members().map(\.address))
            let fresh = candidates.filter { $0 != memberlist.address && !members.contains($0) }
            if !fresh.isEmpty {
                let joined = await memberlist.join(fresh)
                logger.debug("peer discovery", metadata: ["candidates": "\(fresh.count)", "answered": "\(joined)"])
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: configuration.syncInterval) }
            } catch {
                return
            }
        }
    }

    /// `--peer-domain`'s A/AAAA records and the `--peers` entries, as gossip addresses.
    private func peerAddresses() async -> [NodeAddress] {
        let port = UInt16(clamping: configuration.memberlistPort)
        var entries: [(host: String, port: UInt16)] = []
        if let domain = configuration.peerDomain, !domain.isEmpty { entries.append((domain, port)) }
        for peer in configuration.peers {
            let (host, peerPort) = NodeAddress.splitHostPort(peer, defaultPort: port)
            entries.append((host, peerPort))
        }
        var addresses: [NodeAddress] = []
        for entry in entries {
            for ip in await HostResolver.resolve(entry.host) {
                if let bytes = NodeAddress.parseIP(ip) { addresses.append(NodeAddress(ip: bytes, port: entry.port)) }
            }
        }
        return addresses
    }

    /// The advertise address as an IP: names are resolved, since gossip carries raw IPs.
    static func advertisedIP(_ host: String) async -> String {
        await HostResolver.resolve(host).first ?? host
    }
}

extension ClusterService: CustomStringConvertible {
    var description: String { "ClusterService" }
}
