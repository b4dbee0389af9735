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

/// Decides who may hold a channel's WebSocket (docs/protocol.md, "Refusals happen before the upgrade"),
/// and runs the accepted connections.
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
        guard let value = fields[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return "" }
        return String(parts[1]).trimmingCharacters(in: .whitespaces)
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

    /// The answer a plain (non-upgrade) `GET /ws/{id}` gets: the refusal an
    /// upgrade would get, or `nil` when the upgrade would be accepted. Lets a
    /// client whose upgrade failed learn why.
    func check(_ id: String, token: String?) async -> Refusal? {
        do {
            let owns = try await self.authorize(id, token: token)
            if await self.registry.isConnected(id) { return .conflict("the channel already has a connected client") }
            let peers = await self.directory?.locate(id, maxAge: .zero)
            if peers?.connectedAt != nil { return .conflict("the channel already has a connected client") }
            if !owns, await !self.registry.isKnown(id), peers?.known != true { return .forbidden("unknown channel") }
            return nil
        } catch {
            return error
        }
    }

    /// Decides an upgrade request, claiming the channel when it is accepted.
    func decide(_ request: HTTPRequest) async -> UpgradeDecision? {
        guard let id = Self.channelID(fromPath: request.path?.split(separator: "?").first.map(String.init) ?? "") else {
            return nil
        }
        // Not a UUID, so never a channel: refused before any token check or registry look-up.
        guard ChannelID.isCanonical(id) else { return .refuse(.notFound, message: Self.notAChannelID) }
        let token = Self.bearerToken(request.headerFields)
        let owns: Bool
        do {
            owns = try await self.authorize(id, token: token)
        } catch {
            return .refuse(error.status, message: error.message)
        }
        // Cluster mode: one look at the peers, fresh, since a second client must not win a race.
        let peers = await self.directory?.locate(id, maxAge: .zero)
        if peers?.connectedAt != nil {
            return .refuse(.conflict, message: "the channel already has a connected client")
        }
        var decision = await self.registry.claim(id, recreate: owns)
        if case .unknown = decision, peers?.known == true {
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
                .flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            let v2 = offered.contains(Self.v2Subprotocol)
            var headers = HTTPFields()
            if v2 { headers[.secWebSocketProtocol] = Self.v2Subprotocol }
            let registry = self.registry
            let logger = self.logger
            let multiplexing = self.multiplexing
            let connectionKind: AcceptedConnection
            if v2 {
                connectionKind = .tunnel { channel in
                    try Self.installTunnel(
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
                    await Self.runLegacy(
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

    /// Runs an accepted v2 WebSocket as a ``TunnelHandler`` on its event loop: no task while it is
    /// idle, pings on a loop timer, and webhooks delivered from the senders' loops
    /// (`WebhookChannelHandler`). Called on the channel's loop once the upgrade is done.
    private static func installTunnel(
        _ id: String,
        connection: UInt64,
        on channel: any Channel,
        registry: ChannelRegistry,
        configuration: TunnelConfiguration,
        logger: Logger
    ) throws {
        // `attach` and `detach` go to the registry in this order, even when the connection ends at once.
        let attached = NIOLoopBoundBox<Task<Void, Never>?>.makeEmptyBox(eventLoop: channel.eventLoop)
        let handler = TunnelHandler(
            role: .opener,
            configuration: configuration,
            settings: .init(pingInterval: Self.pingInterval, masksFrames: false),
            onClose: { reason in
                registry.removeLive(id, connection: connection)
                let attach = attached.value
                Task {
                    await attach?.value
                    await registry.detach(id, connection: connection)
                    logger.info("client disconnected", metadata: ["channel": "\(id)", "reason": "\(reason.message)"])
                }
            }
        )
        try channel.pipeline.syncOperations.addHandler(
            NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 0,
                maxAccumulatedFrameCount: 1024,
                maxAccumulatedFrameSize: Self.maxMessageSize
            )
        )
        try channel.pipeline.syncOperations.addHandler(handler)
        let tunnel = TunnelConnection(handler: handler, eventLoop: channel.eventLoop)
        registry.setLive(id, connection: connection, tunnel: tunnel)
        attached.value = Task {
            await registry.attach(id, connection: connection, session: .multiplexed(tunnel)) {
                tunnel.close(reason: "server shutting down")
            }
        }
        logger.info("client connected", metadata: ["channel": "\(id)", "protocol": "v2"])
    }

    /// How often each side pings an idle tunnel; a ping unanswered by the next one closes it.
    static let pingInterval = TimeAmount.seconds(15)

    private static func runLegacy(
        _ id: String,
        connection: UInt64,
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter,
        registry: ChannelRegistry,
        maxPending: Int,
        logger: Logger
    ) async {
        let session = LegacySession(outbound: outbound, maxPending: maxPending)
        await registry.attach(id, connection: connection, session: .legacy(session)) {
            try? await outbound.close(.goingAway, reason: "server shutting down")
        }
        logger.info("client connected", metadata: ["channel": "\(id)", "protocol": "legacy"])
        do {
            // A whole response travels in one message (base64 of up to the body limit).
            for try await message in inbound.messages(maxSize: Int(Int32.max)) {
                guard case .text(let text) = message else { continue }
                do {
                    try session.receive(text)
                } catch {
                    logger.warning("malformed legacy message", metadata: ["channel": "\(id)", "error": "\(error)"])
                }
            }
        } catch {
            logger.debug("legacy connection failed", metadata: ["error": "\(error)"])
        }
        await registry.detach(id, connection: connection)
        session.close()
        logger.info("client disconnected", metadata: ["channel": "\(id)"])
    }
}
