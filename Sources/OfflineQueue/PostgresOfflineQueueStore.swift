public import Foundation
import HTTPTypes
public import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TunnelProtocol

/// The offline queue in PostgreSQL (`--queue-url`), shared by every replica
/// of a cluster (docs/offline-queue.md, "Storage").
///
/// The store runs its own `PostgresClient` in a task it owns, from
/// ``open(url:limits:logger:)`` until ``close()``. Connections are opened with
/// `synchronous_commit=off`, so body chunks, deliveries and leases cost no
/// WAL flush each; the statement that makes a webhook pending runs in a
/// transaction with `synchronous_commit=on`, whose flush covers every WAL
/// record before it, the webhook's chunks included. PostgreSQL groups the
/// flushes of concurrent commits itself.
///
/// Claims take the oldest due row with `FOR UPDATE SKIP LOCKED` and set a
/// lease in the same statement, so two replicas never hold the same webhook
/// at once. Limits are checked under a per-channel advisory lock, with rows
/// still being ingested counted at the bytes reserved for them.
public final class PostgresOfflineQueueStore: OfflineQueueStore {
    static let schemaVersion = 1
    /// Any advisory lock key of ours: migrations (`key`, 0), a channel's limits (`key`, hash).
    static let advisoryLockKey: Int32 = 0x574F_5751  // "WOWQ"
    /// An ingest reserves this much more than it has received, so a body of
    /// unknown length takes one limit check per MiB, not per chunk.
    static let reservationStep: Int64 = 1 << 20
    /// An ingest whose replica died is removed this long after its last chunk.
    static let ingestLease = Duration.seconds(600)

    private struct LiveIngest: Sendable {
        var channelID: String
        var head: QueuedRequestHead
        var queuedAt: Date
        var reserved: Int64
    }

    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let limits: OfflineQueueLimits
    private let logger: Logger
    private let liveIngests = Mutex<[String: LiveIngest]>([:])

    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`,
    /// `?sslmode=disable|prefer|require`), runs the migrations and returns the
    /// store; throws ``OfflineQueueError`` for a bad URL or an unreachable
    /// database.
    public static func open(url: String, limits: OfflineQueueLimits, logger: Logger) async throws -> PostgresOfflineQueueStore {
        let configuration = try configuration(from: url)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let runner = Task { await client.run() }
        let store = PostgresOfflineQueueStore(client: client, runner: runner, limits: limits, logger: logger)
        do {
            try await withConnectDeadline(configuration) { try await store.migrate() }
            let removed = try await store.removeAbandonedIngests(now: Date())
            if removed > 0 { logger.notice("Removed webhooks a dead replica left half-stored", metadata: ["count": "\(removed)"]) }
            return store
        } catch {
            runner.cancel()
            await runner.value
            throw error
        }
    }

    private init(client: PostgresClient, runner: Task<Void, Never>, limits: OfflineQueueLimits, logger: Logger) {
        self.client = client
        self.runner = runner
        self.limits = limits
        self.logger = logger
    }

    static func configuration(from url: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw OfflineQueueError.invalidURL("\(url) is not a URL")
        }
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw OfflineQueueError.invalidURL("scheme \(scheme):// is not postgres:// or postgresql://")
        }
        guard let host = components.host, !host.isEmpty else { throw OfflineQueueError.invalidURL("\(url) names no host") }
        guard let user = components.user, !user.isEmpty else { throw OfflineQueueError.invalidURL("\(url) names no user") }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let sslmode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch sslmode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw OfflineQueueError.invalidURL("sslmode=\(sslmode) is not disable, prefer or require")
        }
        var configuration = PostgresClient.Configuration(
            host: host,
            port: components.port ?? 5_432,
            username: user.removingPercentEncoding ?? user,
            password: components.password?.removingPercentEncoding,
            database: database.isEmpty ? nil : database,
            tls: tls
        )
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [("synchronous_commit", "off"), ("application_name", "webhook-over-websocket")]
        return configuration
    }

    /// The pool keeps retrying a database that does not answer; at open that
    /// is an error to report, not a wait.
    private static func withConnectDeadline(
        _ configuration: PostgresClient.Configuration,
        _ body: @escaping @Sendable () async throws -> Void
    ) async throws {
        let target = "\(configuration.host ?? "?"):\(configuration.port ?? 5_432)"
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await body()
                } catch let error as PSQLError {
                    throw OfflineQueueError.unreachable("\(target): \(String(reflecting: error))")
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(15))
                throw OfflineQueueError.unreachable("\(target) did not answer within 15 s")
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Idempotent, and safe when several replicas start at once: the first
    /// takes the advisory lock and migrates, the others wait and find it done.
    private func migrate() async throws {
        try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey), 0)", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS wow_queue_schema (version integer NOT NULL)",
                logger: logger
            )
            var version = 0
            for try await (stored) in try await connection.query("SELECT max(version) FROM wow_queue_schema", logger: logger).decode(Int?.self) {
                version = stored ?? 0
            }
            if version > Self.schemaVersion { throw OfflineQueueError.newerSchema(version) }
            if version < 1 {
                for statement in Self.schemaV1 { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.query("INSERT INTO wow_queue_schema (version) VALUES (1)", logger: logger)
            }
        }
    }

    static let schemaV1 = [
        """
        CREATE TABLE wow_queue_channels (
            channel_id text PRIMARY KEY,
            mode text NOT NULL CHECK (mode IN ('queue', 'reject')),
            updated_at bigint NOT NULL
        )
        """,
        """
        CREATE TABLE wow_queue_webhooks (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            channel_id text NOT NULL,
            method text NOT NULL,
            target text NOT NULL,
            header_fields bytea NOT NULL,
            body_length bigint NOT NULL DEFAULT 0,
            chunk_count integer NOT NULL DEFAULT 0,
            queued_at bigint NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at bigint NOT NULL,
            state text NOT NULL CHECK (state IN ('ingesting', 'pending', 'failed')),
            lease_owner text,
            lease_until bigint
        )
        """,
        "CREATE INDEX wow_queue_webhooks_by_channel ON wow_queue_webhooks (channel_id, state, seq)",
        "CREATE INDEX wow_queue_webhooks_by_age ON wow_queue_webhooks (queued_at)",
        """
        CREATE TABLE wow_queue_body_chunks (
            webhook_id text NOT NULL REFERENCES wow_queue_webhooks (id) ON DELETE CASCADE,
            idx integer NOT NULL,
            data bytea NOT NULL,
            PRIMARY KEY (webhook_id, idx)
        )
        """,
    ]

    // MARK: - Modes

    public func setMode(_ mode: OfflineMode, channelID: String) async throws {
        if try await self.mode(channelID: channelID) == mode { return }
        let now = Self.milliseconds(Date())
        _ = try await durably { connection in
            try await connection.query(
                """
                INSERT INTO wow_queue_channels (channel_id, mode, updated_at) VALUES (\(channelID), \(mode.rawValue), \(now))
                ON CONFLICT (channel_id) DO UPDATE SET mode = excluded.mode, updated_at = excluded.updated_at
                """,
                logger: logger
            )
        }
    }

    public func mode(channelID: String) async throws -> OfflineMode? {
        let rows = try await client.query("SELECT mode FROM wow_queue_channels WHERE channel_id = \(channelID)", logger: logger)
        for try await mode in rows.decode(String.self) { return OfflineMode(rawValue: mode) }
        return nil
    }

    // MARK: - Ingest

    public func beginIngest(channelID: String, head: QueuedRequestHead, declaredLength: Int64?) async throws -> any OfflineQueueIngest {
        let id = UUID().uuidString.lowercased()
        let reserved = max(0, declaredLength ?? 0)
        if reserved > limits.maxBytesPerChannel { throw OfflineQueueRefusal.bodyTooLarge }
        let now = Date()
        let milliseconds = Self.milliseconds(now)
        let queuedAt = Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
        let leaseUntil = milliseconds + Self.milliseconds(Self.ingestLease)
        let fields = HeaderFieldsCodec.encode(head.headerFields)
        try await transaction { connection in
            let usage = try await usage(of: channelID, on: connection)
            if usage.count + 1 > limits.maxCountPerChannel { throw OfflineQueueRefusal.channelCountLimit }
            if usage.channelBytes + reserved > limits.maxBytesPerChannel { throw OfflineQueueRefusal.channelBytesLimit }
            if usage.totalBytes + reserved > limits.maxTotalBytes { throw OfflineQueueRefusal.serverBytesLimit }
            try await connection.query(
                """
                INSERT INTO wow_queue_webhooks (id, channel_id, method, target, header_fields, body_length, queued_at, next_attempt_at, state, lease_until)
                VALUES (\(id), \(channelID), \(head.method), \(head.target), \(fields), \(reserved), \(milliseconds), \(milliseconds), 'ingesting', \(leaseUntil))
                """,
                logger: logger
            )
        }
        liveIngests.withLock { $0[id] = LiveIngest(channelID: channelID, head: head, queuedAt: queuedAt, reserved: reserved) }
        return BufferedQueueIngest(backend: IngestHandle(store: self), id: id)
    }

    private struct Usage {
        var count: Int
        var channelBytes: Int64
        var totalBytes: Int64
    }

    /// The channel's and the whole queue's use, under the channel's advisory
    /// lock (held to the end of the transaction).
    private func usage(of channelID: String, on connection: PostgresConnection) async throws -> Usage {
        try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey), hashtext(\(channelID)))", logger: logger)
        let rows = try await connection.query(
            """
            SELECT count(*) FILTER (WHERE channel_id = \(channelID)),
                   coalesce(sum(body_length) FILTER (WHERE channel_id = \(channelID)), 0)::bigint,
                   coalesce(sum(body_length), 0)::bigint
            FROM wow_queue_webhooks
            """,
            logger: logger
        )
        for try await (count, channelBytes, totalBytes) in rows.decode((Int, Int64, Int64).self) {
            return Usage(count: count, channelBytes: channelBytes, totalBytes: totalBytes)
        }
        return Usage(count: 0, channelBytes: 0, totalBytes: 0)
    }

    private struct IngestHandle: IngestBackend {
        let store: PostgresOfflineQueueStore
        func account(id: String, bodyLength: Int64) async throws { try await store.account(id: id, bodyLength: bodyLength) }
        func writeChunk(id: String, index: Int, data: ByteBuffer) async throws {
            try await store.writeChunk(id: id, index: index, data: data)
        }
        func finishIngest(id: String, bodyLength: Int64, chunkCount: Int) async throws -> QueuedWebhook {
            try await store.finishIngest(id: id, bodyLength: bodyLength, chunkCount: chunkCount)
        }
        func abortIngest(id: String) async { await store.abortIngest(id: id) }
    }

    private func account(id: String, bodyLength: Int64) async throws {
        guard let ingest = liveIngests.withLock({ $0[id] }) else { throw OfflineQueueError.unknownIngest }
        guard bodyLength > ingest.reserved else { return }
        if bodyLength > limits.maxBytesPerChannel { throw OfflineQueueRefusal.bodyTooLarge }
        let reserved = try await transaction { connection in
            let usage = try await usage(of: ingest.channelID, on: connection)
            let channelRoom = limits.maxBytesPerChannel - usage.channelBytes
            let serverRoom = limits.maxTotalBytes - usage.totalBytes
            let needed = bodyLength - ingest.reserved
            if needed > channelRoom { throw OfflineQueueRefusal.channelBytesLimit }
            if needed > serverRoom { throw OfflineQueueRefusal.serverBytesLimit }
            let extra = min(needed + Self.reservationStep, channelRoom, serverRoom)
            let reserved = ingest.reserved + extra
            try await connection.query(
                "UPDATE wow_queue_webhooks SET body_length = \(reserved) WHERE id = \(id) AND state = 'ingesting'",
                logger: logger
            )
            return reserved
        }
        liveIngests.withLock { $0[id]?.reserved = reserved }
    }

    private func writeChunk(id: String, index: Int, data: ByteBuffer) async throws {
        let leaseUntil = Self.milliseconds(Date()) + Self.milliseconds(Self.ingestLease)
        // Touches the ingest's lease and stores the chunk in one statement;
        // nothing is inserted when the ingest's row is gone.
        let rows = try await client.query(
            """
            WITH touched AS (
                UPDATE wow_queue_webhooks SET lease_until = \(leaseUntil) WHERE id = \(id) AND state = 'ingesting' RETURNING id
            )
            INSERT INTO wow_queue_body_chunks (webhook_id, idx, data) SELECT id, \(index), \(data) FROM touched RETURNING idx
            """,
            logger: logger
        )
        var inserted = false
        for try await _ in rows.decode(Int.self) { inserted = true }
        guard inserted else { throw OfflineQueueError.unknownIngest }
    }

    private func finishIngest(id: String, bodyLength: Int64, chunkCount: Int) async throws -> QueuedWebhook {
        guard let ingest = liveIngests.withLock({ $0[id] }) else { throw OfflineQueueError.unknownIngest }
        let updated = try await durably { connection in
            let rows = try await connection.query(
                """
                UPDATE wow_queue_webhooks SET state = 'pending', body_length = \(bodyLength), chunk_count = \(chunkCount),
                    lease_until = NULL
                WHERE id = \(id) AND state = 'ingesting' RETURNING seq
                """,
                logger: logger
            )
            var updated = false
            for try await _ in rows.decode(Int64.self) { updated = true }
            return updated
        }
        guard updated else { throw OfflineQueueError.unknownIngest }
        liveIngests.withLock { $0[id] = nil }
        return QueuedWebhook(id: id, channelID: ingest.channelID, head: ingest.head, bodyLength: bodyLength, queuedAt: ingest.queuedAt, attempts: 0)
    }

    private func abortIngest(id: String) async {
        guard liveIngests.withLock({ $0.removeValue(forKey: id) }) != nil else { return }
        do {
            try await client.query("DELETE FROM wow_queue_webhooks WHERE id = \(id) AND state = 'ingesting'", logger: logger)
        } catch {
            logger.warning("Could not remove an aborted webhook; expiry removes it later", metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    /// Runs `body` in a transaction; its own errors (a refusal) come out as
    /// they are, not wrapped in `PostgresTransactionError`.
    private func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error
        }
    }

    /// Runs `body` in a transaction whose COMMIT waits for the WAL flush.
    private func durably<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction { connection in
            try await connection.query("SET LOCAL synchronous_commit TO on", logger: logger)
            return try await body(connection)
        }
    }

    // MARK: - Delivery

    public func claimNext(channelID: String, owner: String, lease: Duration) async throws -> QueuedWebhook? {
        let now = Self.milliseconds(Date())
        let until = now + Self.milliseconds(lease)
        let rows = try await client.query(
            """
            UPDATE wow_queue_webhooks SET lease_owner = \(owner), lease_until = \(until)
            WHERE id = (
                SELECT id FROM wow_queue_webhooks
                WHERE channel_id = \(channelID) AND state = 'pending' AND next_attempt_at <= \(now)
                    AND (lease_until IS NULL OR lease_until <= \(now))
                ORDER BY seq LIMIT 1
                FOR UPDATE SKIP LOCKED
            ) AND state = 'pending'
            RETURNING id, method, target, header_fields, body_length, queued_at, attempts
            """,
            logger: logger
        )
        for try await (id, method, target, fields, length, queuedAt, attempts) in rows.decode(
            (String, String, String, ByteBuffer, Int64, Int64, Int).self
        ) {
            return QueuedWebhook(
                id: id,
                channelID: channelID,
                head: QueuedRequestHead(method: method, target: target, headerFields: try HeaderFieldsCodec.decode(fields)),
                bodyLength: length,
                queuedAt: Date(timeIntervalSince1970: Double(queuedAt) / 1_000),
                attempts: attempts
            )
        }
        return nil
    }

    public func body(of id: String) -> AsyncThrowingStream<ByteBuffer, any Error> {
        let cursor = ChunkCursor()
        return AsyncThrowingStream {
            guard let index = cursor.next() else { return nil }
            guard let (chunk, isLast) = try await self.chunk(of: id, index: index) else {
                cursor.finish()
                return nil
            }
            if isLast { cursor.finish() }
            return chunk
        }
    }

    /// Chunk `index` and whether it is the last, in one round trip; nil past
    /// the end. Throws when the webhook is not stored.
    private func chunk(of id: String, index: Int) async throws -> (ByteBuffer, Bool)? {
        let rows = try await client.query(
            """
            SELECT w.chunk_count, c.data FROM wow_queue_webhooks w
            LEFT JOIN wow_queue_body_chunks c ON c.webhook_id = w.id AND c.idx = \(index)
            WHERE w.id = \(id)
            """,
            logger: logger
        )
        for try await (count, data) in rows.decode((Int, ByteBuffer?).self) {
            guard let data else { return nil }
            return (data, index + 1 >= count)
        }
        throw OfflineQueueError.unknownWebhook
    }

    public func markDelivered(id: String) async throws {
        try await client.query("DELETE FROM wow_queue_webhooks WHERE id = \(id)", logger: logger)
    }

    public func markFailed(id: String, retryAt: Date?) async throws {
        if let retryAt {
            try await client.query(
                """
                UPDATE wow_queue_webhooks SET attempts = attempts + 1, state = 'pending', next_attempt_at = \(Self.milliseconds(retryAt)),
                    lease_owner = NULL, lease_until = NULL
                WHERE id = \(id) AND state != 'ingesting'
                """,
                logger: logger
            )
        } else {
            try await client.query(
                """
                UPDATE wow_queue_webhooks SET attempts = attempts + 1, state = 'failed', lease_owner = NULL, lease_until = NULL
                WHERE id = \(id) AND state != 'ingesting'
                """,
                logger: logger
            )
        }
    }

    // MARK: - Housekeeping

    public func expire(now: Date) async throws -> Int {
        let cutoff = Self.milliseconds(now) - Self.milliseconds(limits.maxAge)
        let rows = try await client.query(
            "DELETE FROM wow_queue_webhooks WHERE state != 'ingesting' AND queued_at < \(cutoff) RETURNING seq",
            logger: logger
        )
        var removed = 0
        for try await _ in rows.decode(Int64.self) { removed += 1 }
        _ = try await removeAbandonedIngests(now: now)
        return removed
    }

    /// Ingests whose replica stopped writing (it died) long ago.
    private func removeAbandonedIngests(now: Date) async throws -> Int {
        let rows = try await client.query(
            "DELETE FROM wow_queue_webhooks WHERE state = 'ingesting' AND lease_until < \(Self.milliseconds(now)) RETURNING seq",
            logger: logger
        )
        var removed = 0
        for try await _ in rows.decode(Int64.self) { removed += 1 }
        return removed
    }

    public func channelsWithQueuedWebhooks() async throws -> [String] {
        let rows = try await client.query(
            "SELECT DISTINCT channel_id FROM wow_queue_webhooks WHERE state != 'ingesting' ORDER BY channel_id",
            logger: logger
        )
        var channels: [String] = []
        for try await channel in rows.decode(String.self) { channels.append(channel) }
        return channels
    }

    public func statistics() async throws -> OfflineQueueStatistics {
        let rows = try await client.query(
            "SELECT count(*), coalesce(sum(body_length), 0)::bigint, min(queued_at) FROM wow_queue_webhooks WHERE state != 'ingesting'",
            logger: logger
        )
        for try await (depth, bytes, oldest) in rows.decode((Int, Int64, Int64?).self) {
            return OfflineQueueStatistics(
                depth: depth,
                bytes: bytes,
                oldestQueuedAt: oldest.map { Date(timeIntervalSince1970: Double($0) / 1_000) }
            )
        }
        return OfflineQueueStatistics(depth: 0, bytes: 0, oldestQueuedAt: nil)
    }

    /// Stops the client's task; ingests still open are left to expiry.
    public func close() async throws {
        runner.cancel()
        await runner.value
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000).rounded(.down))
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
