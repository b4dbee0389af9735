import GitHubAuth

/// Everything the relay server is configured with. The CLI fills it from flags.
public struct RelayServerConfiguration: Sendable {
    /// Address to bind.
    public var host: String
    /// Port to bind; 0 picks a free one (printed at start).
    public var port: Int
    /// How often idle channels are swept, and how long an unused or
    /// disconnected channel stays reserved.
    public var cleanupDuration: Duration
    /// How long a webhook waits for the local app's response head.
    public var requestTimeout: Duration
    /// Webhook bodies larger than this get 413.
    public var maxBodySize: Int
    /// HMAC key for channel tokens. `nil`: a random key made at start.
    public var jwtSigningKey: String?
    /// External base URL for printed URLs; `nil`: taken from the request.
    public var publicURL: String?
    /// The address peers and Traefik use to reach this replica.
    public var advertiseAddress: String?
    /// Bearer token guarding `/internal/channels` and `/traefik-config`.
    public var internalToken: String?
    /// How long a webhook for a channel without a connected client waits for
    /// it before 503.
    public var reconnectHold: Duration
    /// After a start with a signing key, unknown channels are held too for
    /// this long, because their clients may be about to reconnect.
    public var startupGrace: Duration
    /// How long a channel token stays valid.
    public var channelTokenLifetime: Duration
    /// Channels this replica holds at most; `/new` answers 503 beyond.
    public var maxChannels: Int
    /// Webhooks in flight on one channel at most; more get 429.
    public var maxInFlightPerChannel: Int
    /// Auth mode: only users who log in with GitHub may create and hold
    /// channels. `nil`: open mode.
    public var auth: GitHubAuthConfiguration?
    /// How long a graceful shutdown waits for webhooks in flight before sending clients away.
    public var shutdownTimeout: Duration
    /// Cluster mode (docs/clustering.md): gossip with peers, route and forward across replicas. `nil`: one replica.
    public var cluster: ClusterConfiguration?
    /// The offline queue (docs/offline-queue.md). `nil`: every away client is
    /// treated as in `reject` mode.
    public var offlineQueue: OfflineQueueSettings?

    public init(
        host: String = "0.0.0.0",
        port: Int = 8080,
        cleanupDuration: Duration = .seconds(300),
        requestTimeout: Duration = .seconds(30),
        maxBodySize: Int = 100 * 1024 * 1024,
        jwtSigningKey: String? = nil,
        publicURL: String? = nil,
        advertiseAddress: String? = nil,
        internalToken: String? = nil,
        reconnectHold: Duration = .seconds(10),
        startupGrace: Duration = .seconds(30),
        channelTokenLifetime: Duration = .seconds(90 * 24 * 3600),
        maxChannels: Int = 10_000,
        maxInFlightPerChannel: Int = 256,
        auth: GitHubAuthConfiguration? = nil,
        cluster: ClusterConfiguration? = nil,
        shutdownTimeout: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.cleanupDuration = cleanupDuration
        self.requestTimeout = requestTimeout
        self.maxBodySize = maxBodySize
        self.jwtSigningKey = jwtSigningKey
        self.publicURL = publicURL
        self.advertiseAddress = advertiseAddress
        self.internalToken = internalToken
        self.reconnectHold = reconnectHold
        self.startupGrace = startupGrace
        self.channelTokenLifetime = channelTokenLifetime
        self.maxChannels = maxChannels
        self.maxInFlightPerChannel = maxInFlightPerChannel
        self.auth = auth
        self.cluster = cluster
        self.shutdownTimeout = shutdownTimeout
    }
}
