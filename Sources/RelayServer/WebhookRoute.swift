import HTTPTypes
import Logging
import NIOCore
import TunnelProtocol
import TunnelTransport

/// Decides, from a request's head alone, whether `WebhookChannelHandler` delivers it on the event
/// loop, and holds what such an exchange needs (limits, metrics, the drain's count, the log).
///
/// It takes a webhook only when everything is known at once: a canonical channel id whose client
/// holds a v2 tunnel on this replica, a declared length within the limit, and no `Upgrade`. The rest
/// — waiting for a client, queueing, a peer's channel, the original framing, 404 and 413 — is
/// `WebhookForwarder`'s, behind the router, so each rule lives in one place.
///
/// A class, not a struct: every exchange keeps it, and copying the server's whole configuration
/// into each one cost a retain and a release for each of its strings and references per webhook
/// (docs/performance.md).
final class WebhookRoute: Sendable {
    let registry: ChannelRegistry
    let configuration: RelayServerConfiguration
    let metrics: RelayMetrics
    let drain: ShutdownDrain
    let logger: Logger

    init(registry: ChannelRegistry, configuration: RelayServerConfiguration, metrics: RelayMetrics, drain: ShutdownDrain, logger: Logger) {
        self.registry = registry
        self.configuration = configuration
        self.metrics = metrics
        self.drain = drain
        self.logger = logger
    }

    /// What the exchange needs from the decision.
    struct Plan {
        var target: WebhookForwarder.Target
        var tunnel: TunnelConnection
        var fromPeer: Bool
    }

    func plan(for head: HTTPRequest) -> Plan? {
        guard let fullPath = head.path, fullPath.hasPrefix("/webhook/") else { return nil }
        let (path, query) = Self.split(fullPath)
        guard let target = WebhookForwarder.parseTarget(path: path, query: query),
            ChannelID.isCanonical(target.channelID),
            !head.headerFields.contains(.upgrade),
            let tunnel = self.registry.liveTunnel(target.channelID)
        else { return nil }
        if let length = head.headerFields.value(of: .contentLength) {
            guard let declared = Int(length), declared <= self.configuration.maxBodySize else { return nil }
        }
        let fromPeer = PeerHop.isFromPeer(head.headerFields, internalToken: self.configuration.internalToken)
        return Plan(target: target, tunnel: tunnel, fromPeer: fromPeer)
    }

    /// `/a/b?x=1` → (`/a/b`, `x=1`), as Hummingbird's URI splits it. The mark is looked for as a
    /// byte: `firstIndex(of:)` on the string compares grapheme clusters, and this runs twice per
    /// webhook on the event loop.
    static func split(_ path: String) -> (String, String?) {
        guard let mark = path.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (path, nil) }
        return (String(path[..<mark]), String(path[path.index(after: mark)...]))
    }
}
