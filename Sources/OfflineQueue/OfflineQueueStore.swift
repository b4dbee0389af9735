public import Foundation
public import HTTPTypes
public import NIOCore
public import TunnelProtocol

/// What the server does with a webhook while its channel's client is away,
/// chosen by the client (`client --when-offline`) and kept with the channel.
public enum OfflineMode: String, Sendable, Equatable, CaseIterable {
    /// Hold briefly, then store the webhook and answer 202; deliver it when
    /// the client comes back.
    case queue
    /// Hold up to the reconnect window, then 503 + `Retry-After`.
    case reject
}

/// The bounds of the queue. Over any of them a webhook is refused (503 +
/// `Retry-After`, or 413 when the body alone is too large): never a 202 for
/// something not stored.
public struct OfflineQueueLimits: Sendable, Equatable {
    /// Webhooks queued for one channel at most.
    public var maxCountPerChannel: Int
    /// Body bytes queued for one channel at most.
    public var maxBytesPerChannel: Int64
    /// A queued webhook not delivered by then expires.
    public var maxAge: Duration
    /// Body bytes queued on this server (or cluster, with PostgreSQL) at most.
    public var maxTotalBytes: Int64

    public init(
        maxCountPerChannel: Int = 1_000,
        maxBytesPerChannel: Int64 = 100 << 20,
        maxAge: Duration = .seconds(72 * 3_600),
        maxTotalBytes: Int64 = 1 << 30
    ) {
        self.maxCountPerChannel = maxCountPerChannel
        self.maxBytesPerChannel = maxBytesPerChannel
        self.maxAge = maxAge
        self.maxTotalBytes = maxTotalBytes
    }
}

/// The request as the local app will see it, minus the body: exactly what
/// the tunnel's REQUEST_HEAD carries for a live webhook (method, the target
/// appended to the client's URL, end-to-end fields in their original order
/// with the `X-Forwarded-*` fields added), so a queued webhook is delivered
/// through the same path.
public typealias QueuedRequestHead = RequestHead

/// One stored webhook.
public struct QueuedWebhook: Sendable, Equatable {
    /// The delivery id (a UUID) the sender got in its 202.
    public var id: String
    public var channelID: String
    public var head: QueuedRequestHead
    public var bodyLength: Int64
    public var queuedAt: Date
    /// Delivery attempts made before this one.
    public var attempts: Int

    public init(id: String, channelID: String, head: QueuedRequestHead, bodyLength: Int64, queuedAt: Date, attempts: Int) {
        self.id = id
        self.channelID = channelID
        self.head = head
        self.bodyLength = bodyLength
        self.queuedAt = queuedAt
        self.attempts = attempts
    }
}

/// Why a webhook was not queued.
public enum OfflineQueueRefusal: Error, Sendable, Equatable {
    /// The channel holds as many webhooks as it may: 503 + `Retry-After`.
    case channelCountLimit
    /// The channel's queued bytes would pass its limit: 503 + `Retry-After`.
    case channelBytesLimit
    /// The server's queued bytes would pass its limit: 503 + `Retry-After`.
    case serverBytesLimit
    /// This body alone is larger than a channel may queue: 413.
    case bodyTooLarge
}

/// Depth, size and age of the whole queue, for `/metrics`.
public struct OfflineQueueStatistics: Sendable, Equatable {
    public var depth: Int
    public var bytes: Int64
    public var oldestQueuedAt: Date?

    public init(depth: Int, bytes: Int64, oldestQueuedAt: Date?) {
        self.depth = depth
        self.bytes = bytes
        self.oldestQueuedAt = oldestQueuedAt
    }
}

/// A webhook being written to the queue, chunk by chunk as the sender
/// uploads it: the body is never held whole in memory.
public protocol OfflineQueueIngest: Sendable {
    /// Stores the next body chunk. Throws ``OfflineQueueRefusal`` when the
    /// body grows past a limit (the ingest is then aborted).
    func append(_ chunk: ByteBuffer) async throws
    /// Makes the whole webhook durable (committed and synced) and visible to
    /// delivery. Only after this returns may the sender get its 202.
    func commit() async throws -> QueuedWebhook
    /// Drops what was stored so far (the sender left, or a limit was hit).
    func abort() async
}

/// Durable storage of the offline queue: SQLite in `--data-dir`, or
/// PostgreSQL with `--queue-url` (docs/offline-queue.md).
public protocol OfflineQueueStore: Sendable {
    /// Records the channel's mode (sent by its client when it creates or
    /// reconnects to the channel), so it survives a restart and, with
    /// PostgreSQL, is seen by every replica.
    func setMode(_ mode: OfflineMode, channelID: String) async throws
    /// The channel's recorded mode; nil for a channel never seen.
    func mode(channelID: String) async throws -> OfflineMode?

    /// Starts storing a webhook after checking the limits against the
    /// declared length, if any. Throws ``OfflineQueueRefusal``.
    func beginIngest(channelID: String, head: QueuedRequestHead, declaredLength: Int64?) async throws -> any OfflineQueueIngest

    /// Takes up to `limit` of the channel's webhooks that are due for
    /// delivery and not being delivered by anyone else, oldest first, and
    /// leases them all to `owner` for `lease`; empty when there are none. Two
    /// callers (two replicas) never get the same webhook while its lease
    /// lasts. One claim for several webhooks saves a round trip per webhook;
    /// the caller still delivers them one at a time, in the order returned.
    func claim(channelID: String, owner: String, lease: Duration, limit: Int) async throws -> [QueuedWebhook]
    /// The stored body of a webhook, chunk by chunk.
    func body(of id: String) -> AsyncThrowingStream<ByteBuffer, any Error>
    /// The local app answered: the webhooks are removed. Not synced before
    /// it returns: delivery is at least once, and a crash that loses this
    /// only delivers the webhooks again (docs/offline-queue.md, "Delivery").
    func markDelivered(ids: [String]) async throws
    /// Gives back claimed webhooks that were not attempted (the client went
    /// away, or a failure stopped the channel's deliveries): due again at
    /// once, their attempts unchanged. Leases another owner took meanwhile
    /// are left alone.
    func release(ids: [String], owner: String) async throws
    /// The attempt failed (app unreachable or 5xx). `retryAt` nil: no more
    /// attempts; the webhook is kept as failed until it expires.
    func markFailed(id: String, retryAt: Date?) async throws

    /// Removes webhooks older than the limits' `maxAge`; returns how many.
    func expire(now: Date) async throws -> Int
    /// Channels with webhooks still queued: they stay reserved.
    func channelsWithQueuedWebhooks() async throws -> [String]
    func statistics() async throws -> OfflineQueueStatistics

    func close() async throws
}

extension OfflineQueueStore {
    /// The oldest due webhook of the channel, leased to `owner`; nil when
    /// there is none.
    public func claimNext(channelID: String, owner: String, lease: Duration) async throws -> QueuedWebhook? {
        try await claim(channelID: channelID, owner: owner, lease: lease, limit: 1).first
    }

    /// The local app answered: the webhook is removed.
    public func markDelivered(id: String) async throws {
        try await markDelivered(ids: [id])
    }
}
