import Foundation
import GitHubAuth
import HTTPTypes
import Logging
import NIOCore
import NIOWebSocket
import OfflineQueue
import TunnelProtocol
import TunnelTransport
import WSCore

/// Decides who may hold a channel's WebSocket (docs/protocol.md, "Refusals happen before the upgrade").
/// Running an accepted connection is `ClientConnections`'.
struct ChannelGate: Sendable {
    static let v2Subprotocol = "webhook-over-websocket.v2"
    /// Largest WebSocket message accepted: a v2 frame carries at most 64 KiB
    /// of body; heads can be larger, but not this large.
    static let maxMessageSize = 1 << 20

    let registry: ChannelRegistry
    let tokens: TokenAuthority
    /// Per-connection limits for the streams a client's WebSocket carries.
    let multiplexing: TunnelConfiguration
    /// Auth mode: every WebSocket needs its channel token.
    let requireToken: Bool
    let logger: Logger
    /// Cluster mode: a channel connected at a peer is taken (409); one a peer knows may connect here.
    var directory: ClusterDirectory?
    /// The offline queue: records the mode a connecting client sends and delivers what was queued for it.
    var offline: OfflineDelivery?

    enum Refusal: Error {
        case unauthorized(String)
        case forbidden(String)
        case conflict(String)

        var status: HTTPResponse.Status {
            switch self {
            case .unauthorized: .unauthorized
            case .forbidden: .forbidden
            case .conflict: .conflict
            }
        }

        var message: String {
            switch self {
            case .unauthorized(let m), .forbidden(let m), .conflict(let m): m
            }
        }
    }

    static func channelID(fromPath path: String) -> String? {
        let prefix = "/ws/"
        guard path.hasPrefix(prefix) else { return nil }
        let id = path.dropFirst(prefix.count)
        guard !id.isEmpty, !id.contains("/") else { return nil }
        return String(id)
    }

    /// The refusal of an id that is not a canonical UUID, on `/ws/...` as on `/webhook/...`.
    static let notAChannelID = "no such channel: channel ids are UUIDs"

    static func bearerToken(_ fields: HTTPFields) -> String? {
        guard let value = fields.value(of: .authorization) else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].equalsASCIICaseInsensitive("bearer") else { return "" }
        return String(parts[1].trimmingOptionalWhitespace())
    }

    /// Checks the token: a token that is present is checked first. Returns
    /// whether it proves ownership (which lets an unknown channel come back).
    func authorize(_ id: String, token: String?) async throws(Refusal) -> Bool {
        guard let token else {
            if self.requireToken { throw .unauthorized("this server needs the channel token (Authorization: Bearer)") }
            return false
        }
        do {
            try await self.tokens.verify(token, as: .channel, subject: id)
            return true
        } catch .wrongSubject {
            throw .unauthorized("the token belongs to another channel")
        } catch {
            throw .unauthorized("the token is invalid or expired")
        }
    }

    /// What admission found out about a client that may hold the channel.
    struct Admitted {
        /// The token proves ownership, which lets an unknown channel come back.
        var owns: Bool
        /// A peer replica knows the channel (issued it, perhaps before it died).
        var peersKnow: Bool
    }

    /// The one admission policy, for the upgrade and for the plain GET that explains a refused one:
    /// the token (a present one is checked first; auth mode needs one), then a client connected at a
    /// peer (409). Cluster mode looks at the peers fresh, since a second client must not win a race.
    func admit(_ id: String, token: String?) async -> Result<Admitted, Refusal> {
        let owns: Bool
        do {
            owns = try await self.authorize(id, token: token)
        } catch {
            return .failure(error)
        }
        let peers = await self.directory?.locate(id, maxAge: .zero)
        if peers?.connectedAt != nil { return .failure(.conflict("the channel already has a connected client")) }
        return .success(Admitted(owns: owns, peersKnow: peers?.known == true))
    }

    /// The answer a plain (non-upgrade) `GET /ws/{id}` gets: the refusal an
    /// upgrade would get, or `nil` when the upgrade would be accepted. Lets a
    /// client whose upgrade failed learn why. It asks what ``decide(_:)`` asks, without claiming.
    func check(_ id: String, token: String?) async -> Refusal? {
        switch await self.admit(id, token: token) {
        case .failure(let refusal):
            return refusal
        case .success(let admitted):
            if await self.registry.isConnected(id) { return .conflict("the channel already has a connected client") }
            if !admitted.owns, !admitted.peersKnow, await !self.registry.isKnown(id) { return .forbidden("unknown channel") }
            return nil
        }
    }

    /// Decides an upgrade request, claiming the channel when it is accepted.
    func decide(_ request: HTTPRequest) async -> UpgradeDecision? {
        guard let id = Self.channelID(fromPath: request.path?.split(separator: "?").first.map(String.init) ?? "") else {
            return nil
        }
        // Not a UUID, so never a channel: refused before any token check or registry look-up.
        guard ChannelID.isCanonical(id) else { return .refuse(.notFound, message: Self.notAChannelID) }
        let admitted: Admitted
        switch await self.admit(id, token: Self.bearerToken(request.headerFields)) {
        case .failure(let refusal): return .refuse(refusal.status, message: refusal.message)
        case .success(let value): admitted = value
        }
        var decision = await self.registry.claim(id, recreate: admitted.owns)
        if case .unknown = decision, admitted.peersKnow {
            // Issued by a peer (perhaps one that died): the client may hold it here; webhooks follow it.
            decision = await self.registry.claim(id, recreate: true)
        }
        switch decision {
        case .unknown:
            return .refuse(.forbidden, message: "unknown channel")
        case .alreadyConnected:
            return .refuse(.conflict, message: "the channel already has a connected client")
        case .granted(let connection):
            if let offline = self.offline {
                let mode: OfflineMode?
                do {
                    mode = try OfflineDelivery.parseMode(request.headerFields)
                } catch {
                    await self.registry.detach(id, connection: connection)
                    return .refuse(.badRequest, message: error.message)
                }
                await offline.clientConnecting(id, mode: mode)
            }
            let offered = request.headerFields[values: .secWebSocketProtocol]
                .flatMap { $0.split(separator: ",").map { $0.trimmingOptionalWhitespace() } }
            let v2 = offered.contains { $0 == Self.v2Subprotocol }
            var headers = HTTPFields()
            if v2 { headers[.secWebSocketProtocol] = Self.v2Subprotocol }
            let registry = self.registry
            let logger = self.logger
            let multiplexing = self.multiplexing
            let connectionKind: AcceptedConnection
            if v2 {
                connectionKind = .tunnel { channel in
                    try ClientConnections.installTunnel(
                        id,
                        connection: connection,
                        on: channel,
                        registry: registry,
                        configuration: multiplexing,
                        logger: logger
                    )
                }
            } else {
                connectionKind = .legacy { inbound, outbound, _ in
                    await ClientConnections.runLegacy(
                        id,
                        connection: connection,
                        inbound: inbound,
                        outbound: outbound,
                        registry: registry,
                        maxPending: multiplexing.maxOpenStreams,
                        logger: logger
                    )
                }
            }
            return .accept(
                headers: headers,
                connection: connectionKind,
                abandon: { await registry.detach(id, connection: connection) }
            )
        }
    }
}
