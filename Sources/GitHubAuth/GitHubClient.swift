import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The three GitHub calls of the OAuth flow. Every failure (unreachable,
/// an error status, an answer we cannot read) is a ``Failure`` with a
/// message fit for the user; the server answers it with 502.
struct GitHubClient: Sendable {
    let httpClient: HTTPClient
    let configuration: GitHubAuthConfiguration
    let timeout: TimeAmount = .seconds(10)

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Exchanges the callback's code for an access token.
    func exchange(code: String, redirectURI: String) async throws(Failure) -> String {
        var request = HTTPClientRequest(url: "\(self.configuration.githubURL)/login/oauth/access_token")
        request.method = .POST
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        let form = [
            ("client_id", self.configuration.clientID),
            ("client_secret", self.configuration.clientSecret),
            ("code", code),
            ("redirect_uri", redirectURI),
        ]
        request.body = .bytes(ByteBuffer(string: form.map { "\($0)=\(Self.formEncode($1))" }.joined(separator: "&")))
        let object = try await self.json(request, what: "the token exchange")
        if let token = object["access_token"] as? String, !token.isEmpty { return token }
        let reason = (object["error_description"] as? String) ?? (object["error"] as? String) ?? "no access token in the answer"
        throw Failure(description: "GitHub refused the login code: \(reason)")
    }

    /// The login name of the token's user.
    func login(accessToken: String) async throws(Failure) -> String {
        let object = try await self.json(self.apiRequest("/user", accessToken: accessToken), what: "the user lookup")
        guard let login = object["login"] as? String, !login.isEmpty else {
            throw Failure(description: "GitHub's /user answer has no login")
        }
        return login
    }

    /// The user's membership state in `organization` (`active`,
    /// `pending`), or nil when not a member.
    func membershipState(organization: String, accessToken: String) async throws(Failure) -> String? {
        let path = "/user/memberships/orgs/\(Self.pathEncode(organization))"
        // GitHub answers 404 (or 403 for orgs that hide membership) to non-members.
        let object = try await self.json(
            self.apiRequest(path, accessToken: accessToken),
            what: "the membership check",
            absentOn: [.notFound, .forbidden]
        )
        return object?["state"] as? String
    }

    private func apiRequest(_ path: String, accessToken: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: self.configuration.githubAPIURL + path)
        request.headers.add(name: "Accept", value: "application/vnd.github+json")
        request.headers.add(name: "Authorization", value: "Bearer \(accessToken)")
        request.headers.add(name: "User-Agent", value: "webhook-over-websocket")
        return request
    }

    private func json(_ request: HTTPClientRequest, what: String) async throws(Failure) -> [String: Any] {
        // Without statuses meaning "absent", an answer is either an object or a failure.
        guard let object = try await self.json(request, what: what, absentOn: []) else {
            throw Failure(description: "GitHub's answer to \(what) is empty")
        }
        return object
    }

    /// Executes `request` and parses its JSON object; `nil` for a status in `absentOn`.
    private func json(_ request: HTTPClientRequest, what: String, absentOn: Set<HTTPResponseStatus>) async throws(Failure) -> [String: Any]? {
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await self.httpClient.execute(request, timeout: self.timeout)
            body = try await response.body.collect(upTo: 1024 * 1024)
        } catch {
            throw Failure(description: "GitHub is unreachable (\(what)): \(error)")
        }
        if absentOn.contains(response.status) { return nil }
        guard response.status == .ok else {
            throw Failure(description: "GitHub answered \(response.status.code) to \(what)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            throw Failure(description: "GitHub's answer to \(what) is not JSON")
        }
        return object
    }

    static func formEncode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    static func pathEncode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? value
    }
}
