import AsyncHTTPClient
import Foundation

/// The GitHub login of docs/auth.md: a signed, expiring, single-use `state`; the
/// code exchanged for a user; the organisation checked; a session token
/// issued.
public struct OAuthFlow: Sendable {
    public let configuration: GitHubAuthConfiguration
    let tokens: TokenAuthority
    let github: GitHubClient

    public init(configuration: GitHubAuthConfiguration, tokens: TokenAuthority, httpClient: HTTPClient) {
        self.configuration = configuration
        self.tokens = tokens
        self.github = GitHubClient(httpClient: httpClient, configuration: configuration)
    }

    /// Where `/auth/login` sends the browser.
    public func authorizeURL(redirectURI: String) async throws -> String {
        let state = try await self.tokens.issue(.state, subject: "oauth", lifetime: self.configuration.stateLifetime)
        let query = [
            ("client_id", self.configuration.clientID),
            ("redirect_uri", redirectURI),
            ("scope", "read:org"),
            ("state", state),
        ]
        return "\(self.configuration.githubURL)/login/oauth/authorize?"
            + query.map { "\($0)=\(GitHubClient.formEncode($1))" }.joined(separator: "&")
    }

    public struct Session: Sendable {
        public var login: String
        public var token: String
        public var lifetime: Duration
    }

    /// Why a callback did not end in a session, with the HTTP status to answer.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var status: Int
        public var message: String
        public var description: String { self.message }
    }

    /// Handles `/auth/callback`.
    public func complete(code: String?, state: String?, redirectURI: String) async throws(Failure) -> Session {
        guard let state, !state.isEmpty else { throw Failure(status: 400, message: "the login is missing its state; start again at /auth/login") }
        do {
            _ = try await self.tokens.consumeState(state)
        } catch {
            throw Failure(status: 400, message: "the login state is invalid, expired or already used; start again at /auth/login")
        }
        guard let code, !code.isEmpty else { throw Failure(status: 400, message: "GitHub sent no code; start again at /auth/login") }
        let login: String
        do {
            let accessToken = try await self.github.exchange(code: code, redirectURI: redirectURI)
            login = try await self.github.login(accessToken: accessToken)
            if let organization = self.configuration.organization {
                let membership = try await self.github.membershipState(organization: organization, accessToken: accessToken)
                guard membership == "active" else {
                    throw Failure(status: 403, message: "\(login) is not an active member of the GitHub organisation \(organization)")
                }
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(status: 502, message: "\(error)")
        }
        do {
            let token = try await self.tokens.issue(.session, subject: login, lifetime: self.configuration.sessionLifetime)
            return Session(login: login, token: token, lifetime: self.configuration.sessionLifetime)
        } catch {
            throw Failure(status: 500, message: "could not sign the session token")
        }
    }
}
