/// What the server does with this client's webhooks while it is away
/// (`client --when-offline`, docs/offline-queue.md). Sent to the server on
/// `/new` and on every WebSocket connect in `X-Webhook-When-Offline`.
public enum WhenOffline: String, Sendable, CaseIterable {
    /// The server stores them, answers the sender 202, and delivers them when this client is back.
    case queue
    /// The server holds each up to 10 s, then answers the sender 503 + `Retry-After`.
    case reject
}
