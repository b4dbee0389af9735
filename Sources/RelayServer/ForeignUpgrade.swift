import NIOHTTP1
import TunnelProtocol

/// A request that asks for an upgrade this server does not do is served as plain HTTP/1.1.
///
/// Only `Upgrade: websocket` on `/ws/{id}` is an upgrade here. Anything else (`h2c`, which
/// `curl --http2` offers on plain http, `example/1`, or a WebSocket upgrade of another path) is
/// ignored the way nginx and Go ignore it: `Upgrade` and `HTTP2-Settings` are taken off the head
/// with their `Connection` tokens, so neither NIO's upgrade handler nor the local app ever sees
/// them, and the request is answered as HTTP/1.1 (docs/operations.md, "Limits").
///
/// NIO's parser stops reading a connection after any head it took for an upgrade, so the
/// connection cannot carry another request: ``HTTPConnectionGuard`` makes the answer say
/// `Connection: close` and closes the connection once it is written.
enum ForeignUpgrade {
    /// Names dropped with a foreign upgrade (lowercased, as `Connection` tokens are compared).
    static let upgradeFields: Set<String> = ["upgrade", "http2-settings"]

    /// Whether `head` is the one upgrade this server does: a WebSocket on `/ws/...`.
    static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        guard head.uri.hasPrefix("/ws/") else { return false }
        return head.headers["upgrade"].contains { value in
            value.split(separator: ",").contains { $0.trimmingOptionalWhitespace().equalsASCIICaseInsensitive("websocket") }
        }
    }

    /// `head` without a foreign upgrade, or `nil` when it asks for none (or for the WebSocket one).
    static func removed(from head: HTTPRequestHead) -> HTTPRequestHead? {
        guard head.headers.contains(name: "upgrade"), !Self.isWebSocketUpgrade(head) else { return nil }
        var head = head
        var connection: [String] = []
        for value in head.headers["connection"] {
            for token in value.split(separator: ",") {
                let trimmed = String(token.trimmingOptionalWhitespace())
                if !trimmed.isEmpty, !Self.upgradeFields.contains(trimmed.lowercased()) { connection.append(trimmed) }
            }
        }
        head.headers.remove(name: "connection")
        for name in Self.upgradeFields { head.headers.remove(name: name) }
        if !connection.isEmpty { head.headers.add(name: "Connection", value: connection.joined(separator: ", ")) }
        return head
    }
}
