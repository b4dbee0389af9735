import TunnelTransport

/// A connected client, as webhooks see it.
enum ClientSession: Sendable {
    /// v2 framing: many streams over one WebSocket.
    case multiplexed(TunnelConnection)
    /// The original JSON framing: one whole request and response per message.
    case legacy(LegacySession)
}
