import HTTPTypes

/// Marks a webhook one replica forwards to another.
///
/// The receiving replica delivers it locally and never forwards it again (no loops while replicas
/// disagree about where a channel is), and keeps the `X-Forwarded-*` headers the first replica added.
/// The marker carries the internal token when one is set, so outsiders cannot pose as a replica.
enum PeerHop {
    static let header = HTTPField.Name("X-Webhook-Relay-Hop")!

    static func value(internalToken: String?) -> String {
        guard let internalToken, !internalToken.isEmpty else { return "1" }
        return internalToken
    }

    static func isFromPeer(_ fields: HTTPFields, internalToken: String?) -> Bool {
        guard let marker = fields[header] else { return false }
        return marker == value(internalToken: internalToken)
    }
}
