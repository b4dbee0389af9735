import Logging
import NIOCore
import NIOWebSocket
import TunnelProtocol
import TunnelTransport
import WSCore

/// Runs a client's WebSocket once `ChannelGate` accepted it: a v2 tunnel as NIO handlers on its
/// event loop, the original JSON framing as a task. Each registers the connection with the
/// registry and unregisters it when it ends.
enum ClientConnections {
    /// Runs an accepted v2 WebSocket as a ``TunnelHandler`` on its event loop: no task while it is
    /// idle, pings on a loop timer, and webhooks delivered from the senders' loops
    /// (`WebhookChannelHandler`). Called on the channel's loop once the upgrade is done.
    static func installTunnel(
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
                maxAccumulatedFrameSize: ChannelGate.maxMessageSize
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

    static func runLegacy(
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
