import Membership

/// How a replica finds and joins its peers (docs/clustering.md). `nil` in ``RelayServerConfiguration``: no cluster.
public struct ClusterConfiguration: Sendable {
    /// DNS name whose A/AAAA records are the peers (a Kubernetes headless service).
    public var peerDomain: String?
    /// `host[:port]` peers, as an alternative to DNS.
    public var peers: [String]
    /// Gossip port, UDP and TCP; 0 picks a free one.
    public var memberlistPort: Int
    /// How often discovery runs and peers' channels are re-read.
    public var syncInterval: Duration
    /// SWIM timers; Go's LAN defaults unless a test needs faster ones.
    public var swim: SWIMConfiguration
    /// How long a peer has to answer `/internal/channels` before it is left out of an answer.
    public var peerTimeout: Duration

    public init(
        peerDomain: String? = nil,
        peers: [String] = [],
        memberlistPort: Int = 7946,
        syncInterval: Duration = .seconds(5),
        swim: SWIMConfiguration = .lan,
        peerTimeout: Duration = .seconds(1)
    ) {
        self.peerDomain = peerDomain
        self.peers = peers
        self.memberlistPort = memberlistPort
        self.syncInterval = syncInterval
        self.swim = swim
        self.peerTimeout = peerTimeout
    }
}
