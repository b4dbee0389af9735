/// Everything the client is configured with. The CLI fills it from flags.
public struct RelayClientConfiguration: Sendable {
    /// The server's base URL (`http` or `https`), without a trailing slash.
    public var serverURL: String
    /// Where webhooks are replayed; its path is the base for webhook paths.
    public var targetURL: String
    /// Session JWT for auth mode.
    public var sessionToken: String?
    /// Skip TLS certificate verification (self-signed servers).
    public var insecure: Bool
    /// Time the local app has to answer one webhook; `nil`: no limit.
    public var transferRequestTimeout: Duration?
    /// Ignore the saved channel and get a new one.
    public var newChannel: Bool
    /// Where channel ids and tokens are saved, per server URL.
    public var stateDirectory: String
    /// Backoff between reconnect attempts.
    public var backoff: Backoff
    /// What the server does with webhooks while this client is away.
    public var whenOffline: WhenOffline = .queue

    public init(
        serverURL: String,
        targetURL: String = "http://localhost:3000",
        sessionToken: String? = nil,
        insecure: Bool = false,
        transferRequestTimeout: Duration? = .seconds(10),
        newChannel: Bool = false,
        stateDirectory: String,
        backoff: Backoff = Backoff()
    ) {
        var serverURL = serverURL
        while serverURL.hasSuffix("/") { serverURL.removeLast() }
        self.serverURL = serverURL
        self.targetURL = targetURL
        self.sessionToken = sessionToken
        self.insecure = insecure
        self.transferRequestTimeout = transferRequestTimeout
        self.newChannel = newChannel
        self.stateDirectory = stateDirectory
        self.backoff = backoff
    }
}
