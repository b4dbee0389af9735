import Foundation
import GitHubAuth
import HTTPTypes
import Hummingbird
import NIOCore

extension RelayServer {
    struct SessionAnswer: Encodable {
        var login: String
        var token: String
        var expires_in: Int
        var client_command: String
    }

    func addAuthRoutes(to router: Router<BasicRequestContext>, oauth: OAuthFlow) {
        let publicURL = self.configuration.publicURL
        let login: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let redirectURI = Self.baseURL(for: request, publicURL: publicURL) + "/auth/callback"
            let location = try await oauth.authorizeURL(redirectURI: redirectURI)
            return Response(status: .found, headers: [.location: location, .cacheControl: "no-store"])
        }
        router.get("/auth/login", use: login)
        router.get("/auth/github", use: login)

        router.get("/auth/callback") { request, _ -> Response in
            let base = Self.baseURL(for: request, publicURL: publicURL)
            let query = request.uri.queryParameters
            let session: OAuthFlow.Session
            do {
                session = try await oauth.complete(
                    code: query["code"].map(String.init),
                    state: query["state"].map(String.init),
                    redirectURI: base + "/auth/callback"
                )
            } catch let failure as OAuthFlow.Failure {
                return Self.errorResponse(HTTPResponse.Status(code: failure.status), failure.message)
            }
            let command = "webhook-over-websocket client --server-url \(base) --token \(session.token)"
            if request.headers[.accept]?.contains("application/json") == true {
                var response = try Self.json(
                    SessionAnswer(
                        login: session.login,
                        token: session.token,
                        expires_in: Int(session.lifetime.components.seconds),
                        client_command: command
                    )
                )
                response.headers[.cacheControl] = "no-store"
                return response
            }
            let html = Self.sessionPage(login: session.login, token: session.token, command: command, lifetime: session.lifetime)
            return Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: html))
            )
        }
    }

    /// The server's external base URL: `--public-url`, else what the request
    /// (or the proxy in front, through `X-Forwarded-*`) says.
    static func baseURL(for request: Request, publicURL: String?) -> String {
        if var publicURL {
            while publicURL.hasSuffix("/") { publicURL.removeLast() }
            return publicURL
        }
        let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!
        let forwardedHost = HTTPField.Name("X-Forwarded-Host")!
        let scheme = request.headers[forwardedProto]?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "http"
        let host =
            request.headers[forwardedHost]?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
            ?? request.head.authority ?? "localhost"
        return "\(scheme)://\(host)"
    }

    static func sessionPage(login: String, token: String, command: String, lifetime: Duration) -> String {
        let hours = lifetime.components.seconds / 3600
        return """
            <!doctype html>
            <html><head><meta charset="utf-8"><title>webhook-over-websocket: logged in</title>
            <style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem}
            pre{background:#f4f4f4;padding:1rem;white-space:pre-wrap;word-break:break-all}</style></head>
            <body>
            <h1>Logged in as \(Self.escape(login))</h1>
            <p>Your session token (valid for \(hours) hours):</p>
            <pre>\(Self.escape(token))</pre>
            <p>Start the client with:</p>
            <pre>\(Self.escape(command))</pre>
            <p>Keep the token secret: it lets anyone create channels on this server as you.</p>
            </body></html>
            """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
