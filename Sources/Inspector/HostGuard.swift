import Hummingbird
import Synchronization

/// Refuses any request whose `Host` is not the inspector's own address, or
/// whose `Origin` (when sent) is not `http://` + that address: a web page
/// the developer visits must not read webhooks or fire replays through DNS
/// rebinding or a cross-site request (docs/inspector.md, "Safety").
struct HostGuard<Context: RequestContext>: RouterMiddleware {
    let allowed: AllowedHosts

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let host = request.head.authority
        guard let host, self.allowed.contains(host) else {
            return InspectorAPI.error(.forbidden, "this inspector answers only to its own address (Host \(host.map { "'\($0)'" } ?? "missing"))")
        }
        if let origin = request.headers[.origin] {
            let lowered = origin.lowercased()
            guard lowered.hasPrefix("http://"), self.allowed.contains(String(lowered.dropFirst("http://".count))) else {
                return InspectorAPI.error(.forbidden, "requests from other origins are refused (Origin '\(origin)')")
            }
        }
        return try await next(request, context)
    }
}

/// The `host:port` forms that name the inspector; known once it is bound.
final class AllowedHosts: Sendable {
    private let hosts = Mutex<Set<String>>([])

    /// `127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT` for loopback, and the
    /// bound address itself.
    func bind(host: String, port: Int) {
        var names: Set<String> = ["127.0.0.1:\(port)", "localhost:\(port)"]
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        names.insert(bare.contains(":") ? "[\(bare.lowercased())]:\(port)" : "\(bare.lowercased()):\(port)")
        if bare == "::1" || bare == "::" { names.insert("[::1]:\(port)") }
        self.hosts.withLock { $0 = names }
    }

    func contains(_ host: String) -> Bool {
        let host = host.lowercased()
        return self.hosts.withLock { $0.contains(host) }
    }
}
