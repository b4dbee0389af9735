import NIOWebSocket

/// How a session with the server ended, for the reconnect line (`Connection lost: …`).
enum TunnelSessionEnd: Sendable, Equatable, CustomStringConvertible {
    /// The server started the close handshake (shutting down, the channel taken over, …).
    case closedByServer(WebSocketErrorCode, reason: String?)
    /// This side ended the connection, and why: the server broke the protocol or stopped answering
    /// pings (``TunnelHandler`` closes it then).
    case closedByClient(String)
    /// The connection dropped without a close handshake.
    case dropped

    var description: String {
        switch self {
        case .closedByServer(let code, let reason):
            return "closed by the server (\(code)\(reason.map { ": \($0)" } ?? ""))"
        case .closedByClient(let reason):
            return reason
        case .dropped:
            return "connection closed"
        }
    }
}
