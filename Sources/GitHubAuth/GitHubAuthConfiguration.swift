/// Auth mode (docs/auth.md): who may create and use channels.
public struct GitHubAuthConfiguration: Sendable {
    /// The GitHub OAuth App's client id and secret.
    public var clientID: String
    public var clientSecret: String
    /// When set, only active members of this organisation may log in.
    public var organization: String?
    /// Web base URL (`https://github.com`, or a GitHub Enterprise host).
    public var githubURL: String
    /// API base URL (`https://api.github.com`, or `https://HOST/api/v3`).
    public var githubAPIURL: String
    /// How long a session token is valid.
    public var sessionLifetime: Duration
    /// How long the OAuth `state` is valid (the time to approve on GitHub).
    public var stateLifetime: Duration

    public init(
        clientID: String,
        clientSecret: String,
        organization: String? = nil,
        githubURL: String = "https://github.com",
        githubAPIURL: String = "https://api.github.com",
        sessionLifetime: Duration = .seconds(24 * 3600),
        stateLifetime: Duration = .seconds(600)
    ) {
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.organization = organization
        self.githubURL = Self.trimmed(githubURL)
        self.githubAPIURL = Self.trimmed(githubAPIURL)
        self.sessionLifetime = sessionLifetime
        self.stateLifetime = stateLifetime
    }

    static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}
