import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import JWTKit
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// Claims shaped like the server's, for tokens the tests forge or let expire.
struct TestClaims: JWTPayload {
    var sub: SubjectClaim
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    var jti: IDClaim
    var typ: String
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

func signToken(key: String, typ: String, subject: String, expiresIn seconds: Double) async throws -> String {
    // HS256 over the secret's bytes as given; zero-padding to 32 bytes only quiets jwt-kit's key-size
    // check, HMAC pads short keys with zeros anyway (docs/auth.md).
    let keys = JWTKeyCollection()
    var bytes = Array(key.utf8)
    if bytes.count < 32 { bytes += repeatElement(0, count: 32 - bytes.count) }
    await keys.add(hmac: HMACKey(key: SymmetricKey(data: bytes)), digestAlgorithm: .sha256)
    let now = Date()
    return try await keys.sign(
        TestClaims(
            sub: .init(value: subject),
            exp: .init(value: now.addingTimeInterval(seconds)),
            iat: .init(value: now),
            jti: .init(value: UUID().uuidString),
            typ: typ
        )
    )
}

func base64URL(_ text: String) -> String {
    Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

/// Drives the browser side of the OAuth flow by hand.
struct BrowserLogin {
    let server: ServerHandle

    /// `/auth/login` → GitHub's authorize page, as a URL.
    func authorizeURL(path: String = "/auth/login") async throws -> String {
        let answer = try await Sender.send(.GET, server.url + path)
        #expect(answer.status == 302)
        return try #require(answer.headers["Location"].first)
    }

    /// The whole flow for `user`; returns the callback's answer.
    func login(as user: String, json: Bool = true) async throws -> Sender.Answer {
        let authorize = try await self.authorizeURL()
        let approved = try await Sender.send(.GET, authorize + "&login=\(user)")
        #expect(approved.status == 302)
        let callback = try #require(approved.headers["Location"].first)
        return try await Sender.send(.GET, callback, headers: json ? [("Accept", "application/json")] : [])
    }
}

struct SessionAnswer: Decodable {
    var login: String
    var token: String
    var expires_in: Int
    var client_command: String
}

@Suite("Auth mode: GitHub login, organisation gate, session and channel tokens")
struct AuthTests {
    static let key = "auth-test-signing-key"

    static func authArguments(github: Int, org: Bool = true, web: String = "", api: String = "/api") -> [String] {
        var arguments = [
            "--github-client-id", "test-client", "--github-client-secret", "test-secret",
            "--jwt-signing-key", Self.key, "--internal-token", "internal-secret",
            "--github-url", "http://127.0.0.1:\(github)\(web)", "--github-api-url", "http://127.0.0.1:\(github)\(api)",
        ]
        if org { arguments += ["--github-org", FakeGitHub.organization] }
        return arguments
    }

    static func withAuthServer<T: Sendable>(
        org: Bool = true,
        web: String = "",
        api: String = "/api",
        _ body: @Sendable (ServerHandle) async throws -> T
    ) async throws -> T {
        try await FakeGitHub.app(webPrefix: web, apiPrefix: api).run { githubPort in
            try await Tunnel.withServer(Self.authArguments(github: githubPort, org: org, web: web, api: api), body)
        }
    }

    @Test("A member logs in and tunnels a webhook end to end; delivery needs no token")
    func memberTunnels() async throws {
        try await Self.withAuthServer { server in
            let authorize = try await BrowserLogin(server: server).authorizeURL()
            #expect(authorize.contains("client_id=test-client"))
            #expect(authorize.contains("scope=read%3Aorg"))
            #expect(authorize.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A\(server.port)%2Fauth%2Fcallback"))
            #expect(authorize.contains("state="))

            let answer = try await BrowserLogin(server: server).login(as: "octocat")
            #expect(answer.status == 200)
            let session = try JSONDecoder().decode(SessionAnswer.self, from: Data(answer.body.readableBytesView))
            #expect(session.login == "octocat")
            #expect(session.expires_in == 24 * 3600)
            #expect(session.client_command.contains("--token \(session.token)"))

            let html = try await BrowserLogin(server: server).login(as: "octocat", json: false)
            #expect(html.headers["Content-Type"].first?.hasPrefix("text/html") == true)
            #expect(html.text.contains("webhook-over-websocket client --server-url"))

            try await inspectingApp().run { appPort in
                let client = try await Tunnel.startClient(
                    server: server,
                    targetURL: "http://127.0.0.1:\(appPort)",
                    stateDir: try Tunnel.makeStateDirectory(),
                    extraArguments: ["--token", session.token]
                )
                let delivered = try await Sender.send(.POST, client.webhookURL + "/push", body: ByteBuffer(string: "{}"))
                #expect(delivered.status == 201)
                await client.process.stop()
            }
        }
    }

    @Test("A non-member gets 403 naming the organisation; without --github-org anyone may log in")
    func organisationGate() async throws {
        try await Self.withAuthServer { server in
            let answer = try await BrowserLogin(server: server).login(as: "mallory")
            #expect(answer.status == 403)
            #expect(errorMessage(answer)?.contains(FakeGitHub.organization) == true)
            #expect(!answer.text.contains("token"))
        }
        try await Self.withAuthServer(org: false) { server in
            let answer = try await BrowserLogin(server: server).login(as: "mallory")
            #expect(answer.status == 200)
        }
    }

    @Test("A missing, forged, expired or replayed state is 400")
    func badState() async throws {
        try await Self.withAuthServer { server in
            let base = "\(server.url)/auth/callback?code=code-octocat"
            #expect(try await Sender.send(.GET, base).status == 400)
            #expect(try await Sender.send(.GET, base + "&state=forged").status == 400)
            let otherKey = try await signToken(key: "other-key", typ: "state", subject: "oauth", expiresIn: 600)
            #expect(try await Sender.send(.GET, base + "&state=\(otherKey)").status == 400)
            let expired = try await signToken(key: Self.key, typ: "state", subject: "oauth", expiresIn: -60)
            #expect(try await Sender.send(.GET, base + "&state=\(expired)").status == 400)

            let authorize = try await BrowserLogin(server: server).authorizeURL()
            let callback = try #require(try await Sender.send(.GET, authorize + "&login=octocat").headers["Location"].first)
            #expect(try await Sender.send(.GET, callback).status == 200)
            #expect(try await Sender.send(.GET, callback).status == 400, "a state works once")
        }
    }

    @Test("/new needs a valid session token; channel tokens are per channel and not session tokens")
    func tokens() async throws {
        try await Self.withAuthServer { server in
            let missing = try await Sender.send(.GET, "\(server.url)/new")
            #expect(missing.status == 401)
            #expect(missing.headers["WWW-Authenticate"] == ["Bearer"])
            let forged = try await signToken(key: "other-key", typ: "session", subject: "octocat", expiresIn: 3600)
            let expired = try await signToken(key: Self.key, typ: "session", subject: "octocat", expiresIn: -60)
            let header = base64URL(#"{"alg":"none","typ":"JWT"}"#)
            let payload = base64URL(#"{"sub":"octocat","typ":"session","exp":4102444800,"iat":1,"jti":"x"}"#)
            let algNone = "\(header).\(payload)."
            for token in [forged, expired, algNone, "garbage"] {
                #expect(try await Sender.send(.GET, "\(server.url)/new", headers: [("Authorization", "Bearer \(token)")]).status == 401)
            }

            let session = try await signToken(key: Self.key, typ: "session", subject: "octocat", expiresIn: 3600)
            let newA = try await Sender.send(.GET, "\(server.url)/new", headers: [("Authorization", "Bearer \(session)")])
            #expect(newA.status == 200)
            let channelA = try JSONDecoder().decode(IssuedChannel.self, from: Data(newA.body.readableBytesView))
            let channelB = try JSONDecoder().decode(
                IssuedChannel.self,
                from: Data(try await Sender.send(.GET, "\(server.url)/new", headers: [("Authorization", "Bearer \(session)")]).body.readableBytesView)
            )
            #expect(try await upgradeStatus(server: server, channel: channelB.channel_id, token: channelA.token) == 401)
            #expect(try await upgradeStatus(server: server, channel: channelA.channel_id, token: session) == 401)
            #expect(try await upgradeStatus(server: server, channel: channelA.channel_id, token: nil) == 401)
            #expect(try await upgradeStatus(server: server, channel: channelA.channel_id, token: channelA.token) == 101)
        }
    }

    @Test("GitHub down or failing is 502 with a clear message")
    func githubDown() async throws {
        try await withClosedPort { port in try await githubDown(port: port) }
    }

    private func githubDown(port: Int) async throws {
        try await Tunnel.withServer(Self.authArguments(github: port)) { server in
            let authorize = try await BrowserLogin(server: server).authorizeURL()
            let state = try #require(URLComponents(string: authorize)?.queryItems?.first { $0.name == "state" }?.value)
            let answer = try await Sender.send(.GET, "\(server.url)/auth/callback?code=code-octocat&state=\(state)")
            #expect(answer.status == 502)
            #expect(errorMessage(answer)?.contains("GitHub") == true)
        }
    }

    @Test("GitHub Enterprise style base URLs work")
    func enterpriseURLs() async throws {
        try await Self.withAuthServer(web: "/ghe", api: "/ghe/api/v3") { server in
            let authorize = try await BrowserLogin(server: server).authorizeURL()
            #expect(authorize.hasPrefix("http://127.0.0.1:") && authorize.contains("/ghe/login/oauth/authorize?"))
            #expect(try await BrowserLogin(server: server).login(as: "octocat").status == 200)
        }
    }

    @Test("The client exits with 2 and a login hint when the server refuses its session token")
    func clientNeedsLogin() async throws {
        try await Self.withAuthServer { server in
            let client = try ToolProcess([
                "client", "--server-url", server.url, "--state-dir", try Tunnel.makeStateDirectory(), "--token", "expired-or-forged",
            ])
            let hint = try await client.waitForLine(containing: "/auth/login")
            #expect(hint.contains("Log in again at \(server.url)/auth/login"))
            #expect(await client.waitForExit() == 2)
        }
    }

    @Test("Internal endpoints need the internal token")
    func internalEndpoints() async throws {
        try await Self.withAuthServer { server in
            for path in ["/internal/channels", "/traefik-config"] {
                let without = try await Sender.send(.GET, server.url + path).status
                let wrong = try await Sender.send(.GET, server.url + path, headers: [("Authorization", "Bearer wrong")]).status
                let right = try await Sender.send(.GET, server.url + path, headers: [("Authorization", "Bearer internal-secret")]).status
                #expect(without == 401 && wrong == 401 && right == 200, "\(path): \(without) \(wrong) \(right)")
            }
        }
    }
}
