public import HTTPTypes

/// The request headers of the offline queue (docs/offline-queue.md), named
/// once for both sides: the client sends its mode with them, the server marks
/// queued deliveries with them.
public enum OfflineQueueHeaders {
    /// Client → server on `/new` and on each WebSocket connect: `queue` or
    /// `reject`, what the server does with webhooks while this client is away.
    public static let whenOffline = HTTPField.Name("X-Webhook-When-Offline")!
    /// Server → local app on a queued delivery (and in the sender's 202): the
    /// delivery id, a UUID.
    public static let deliveryID = HTTPField.Name("X-Webhook-Delivery-Id")!
    /// Server → local app on a queued delivery: when the webhook was queued (RFC 3339, UTC).
    public static let queuedAt = HTTPField.Name("X-Webhook-Queued-At")!
    /// Server → local app on a queued delivery: 1 for the first attempt.
    public static let deliveryAttempt = HTTPField.Name("X-Webhook-Delivery-Attempt")!
}
