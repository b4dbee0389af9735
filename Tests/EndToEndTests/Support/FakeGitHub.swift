import Foundation
import HTTPTypes
import Hummingbird
import LocalAppTestSupport
import NIOCore

/// A stand-in for GitHub's OAuth and API endpoints on loopback.
///
/// The web endpoints live under `webPrefix`, the API under `apiPrefix`, so
/// both github.com-style and GitHub Enterprise-style (`/api/v3`) layouts are
/// served. Codes and tokens encode the user: `code-<login>`, `token-<login>`.
/// The test picks the user by adding `login=<name>` when it follows the
/// authorize redirect, standing in for the person approving in a browser.
enum FakeGitHub {
    static let members: Set<String> = ["octocat"]
    static let organization = "acme"

    static func app(webPrefix: String = "", apiPrefix: String = "/api") -> LocalApp {
        LocalApp { router in
            router.get("\(webPrefix)/login/oauth/authorize") { request, _ -> Response in
                let query = request.uri.queryParameters
                guard let redirect = query["redirect_uri"], let state = query["state"], query["client_id"] == "test-client",
                    query["scope"] == "read:org"
                else {
                    return Response(status: .badRequest)
                }
                let login = query["login"].map(String.init) ?? "octocat"
                let state64 = state.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? ""
                return Response(status: .found, headers: [.location: "\(redirect)?code=code-\(login)&state=\(state64)"])
            }
            router.post("\(webPrefix)/login/oauth/access_token") { request, _ -> Response in
                var request = request
                let form = String(buffer: try await request.collectBody(upTo: 64 * 1024))
                let fields = Dictionary(
                    form.split(separator: "&").map { pair -> (String, String) in
                        let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                        return (parts[0], parts.count > 1 ? parts[1].removingPercentEncoding ?? "" : "")
                    },
                    uniquingKeysWith: { $1 }
                )
                guard fields["client_id"] == "test-client", fields["client_secret"] == "test-secret",
                    let code = fields["code"], code.hasPrefix("code-")
                else {
                    return Self.json(#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#)
                }
                return Self.json(#"{"access_token":"token-\#(code.dropFirst(5))","token_type":"bearer","scope":"read:org"}"#)
            }
            router.get("\(apiPrefix)/user") { request, _ -> Response in
                guard let login = Self.login(request) else { return Response(status: .unauthorized) }
                return Self.json(#"{"login":"\#(login)","id":1}"#)
            }
            router.get("\(apiPrefix)/user/memberships/orgs/{org}") { request, context -> Response in
                guard let login = Self.login(request) else { return Response(status: .unauthorized) }
                let org = try context.parameters.require("org")
                guard org == Self.organization, Self.members.contains(login) else {
                    return Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: #"{"message":"Not Found"}"#)))
                }
                return Self.json(#"{"state":"active","role":"member","organization":{"login":"\#(org)"}}"#)
            }
        }
    }

    static func login(_ request: Request) -> String? {
        guard let value = request.headers[.authorization], value.hasPrefix("Bearer token-") else { return nil }
        return String(value.dropFirst("Bearer token-".count))
    }

    static func json(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
