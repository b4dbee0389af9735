public import OfflineQueue

/// How the server keeps webhooks for away clients (docs/offline-queue.md).
public struct OfflineQueueSettings: Sendable {
    /// Where the embedded (SQLite) queue lives; unused with ``queueURL``.
    public var dataDirectory: String
    /// `postgres://...`: the queue is in PostgreSQL, shared by every replica.
    public var queueURL: String?
    /// In `queue` mode, how long a webhook waits for an away client before it is stored.
    public var hold: Duration
    public var limits: OfflineQueueLimits
    /// Delivery attempts of one queued webhook at most; after the last failed
    /// one it is kept as failed until it expires.
    public var maxAttempts: Int
    /// How often connected channels are checked for due deliveries and the
    /// queue's gauges are refreshed.
    public var tick: Duration

    public init(
        dataDirectory: String,
        queueURL: String? = nil,
        hold: Duration = .seconds(2),
        limits: OfflineQueueLimits = .init(),
        maxAttempts: Int = 5,
        tick: Duration = .seconds(2)
    ) {
        self.dataDirectory = dataDirectory
        self.queueURL = queueURL
        self.hold = hold
        self.limits = limits
        self.maxAttempts = maxAttempts
        self.tick = tick
    }

    /// The settings with the limits given one by one (the CLI's flags).
    public init(
        dataDirectory: String,
        queueURL: String?,
        hold: Duration,
        maxWebhooksPerChannel: Int,
        maxBytesPerChannel: Int64,
        maxAge: Duration,
        maxTotalBytes: Int64
    ) {
        self.init(
            dataDirectory: dataDirectory,
            queueURL: queueURL,
            hold: hold,
            limits: OfflineQueueLimits(
                maxCountPerChannel: maxWebhooksPerChannel,
                maxBytesPerChannel: maxBytesPerChannel,
                maxAge: maxAge,
                maxTotalBytes: maxTotalBytes
            )
        )
    }

    /// The delay before retry `attempt` (1 after the first failure): 1 s,
    /// 2 s, 4 s, ... capped at 5 minutes, so a local app that is down for a
    /// moment gets its webhooks soon after it is back.
    public static func retryDelay(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 20)
        return min(.seconds(1 << exponent), .seconds(300))
    }
}
