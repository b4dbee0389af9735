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
/// The store runs two `PostgresClient`s in a task it owns, from
/// ``open(url:limits:logger:)`` until ``close()``: `client`, whose connections
/// run with `synchronous_commit=off`, so admissions, body chunks, deliveries
/// and leases cost no WAL flush each; and `durable`, whose connections run
/// with `synchronous_commit=on`, for the one statement that makes a webhook
/// pending (with its last chunk). That statement's commit waits for the WAL
/// flush, which covers every WAL record before it, the webhook's earlier
/// chunks included. PostgreSQL groups the flushes of concurrent commits
/// itself.
///
/// A small webhook costs two round trips to store: `wow_queue_admit` (the
/// limit check under the admission advisory lock and the row's insert, in one
/// call) and the durable statement. Usage is kept per channel in
/// `wow_queue_usage` by a trigger, so a check reads two small sums instead of
/// scanning the queue; rows still being ingested count at the bytes reserved
/// for them.
///
/// Claims take the oldest due rows with `FOR UPDATE SKIP LOCKED` and set
/// their lease in the same statement, so two replicas never hold the same
/// webhook at once.
public final class PostgresOfflineQueueStore: OfflineQueueStore {
    static let schemaVersion = 3
    /// Any advisory lock key of ours: migrations (`key`, ``migrationLock``), admissions
    /// (`key`, ``admissionLock``), expiry (`key`, ``expiryLock``).
    static let advisoryLockKey: Int32 = 0x574F_5751  // "WOWQ"
    static let migrationLock: Int32 = 0
    /// One lock for every admission and reservation of the cluster, so the server-wide total is
    /// as exact as a channel's limits. It is held only by transactions that commit without a WAL
    /// flush (a few hundred microseconds), never through the durable statement.
    static let admissionLock: Int32 = 1
    /// Taken with `pg_try_advisory_xact_lock`: one replica expires at a time, the others skip.
    static let expiryLock: Int32 = 2
    /// An ingest reserves this much more than it has received, so a body of
    /// unknown length takes one limit check per MiB, not per chunk.
    static let reservationStep: Int64 = 1 << 20
    /// An ingest whose replica died is removed this long after its last chunk.
    static let ingestLease = Duration.seconds(600)
    /// Connections of the synchronous_commit=on pool, at most.
    static let durableConnections = 8

    private struct LiveIngest: Sendable {
        var channelID: String
        var head: QueuedRequestHead
        var queuedAt: Date
        var reserved: Int64
    }

    private let client: PostgresClient
    private let durable: PostgresClient
    private let runner: Task<Void, Never>
    private let limits: OfflineQueueLimits
    private let logger: Logger
    private let liveIngests = Mutex<[String: LiveIngest]>([:])
    private let inlineBodies = InlineBodyCache()

    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`,
    /// `?sslmode=disable|prefer|require`), runs the migrations and returns the
    /// store; throws ``OfflineQueueError`` for a bad URL or an unreachable
    /// database.
    public static func open(url: String, limits: OfflineQueueLimits, logger: Logger) async throws -> PostgresOfflineQueueStore {
        let configuration = try configuration(from: url)
        var durableConfiguration = configuration
        durableConfiguration.options.additionalStartupParameters = [
            ("synchronous_commit", "on"), ("application_name", "webhook-over-websocket"),
        ]
        // Each statement here holds its connection for one WAL flush, which
        // concurrent commits share: a few connections carry thousands of
        // commits a second, and the replica's share of max_connections grows
        // by this much, not by another full pool.
        durableConfiguration.options.maximumConnections = Self.durableConnections
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let durable = PostgresClient(configuration: durableConfiguration, backgroundLogger: logger)
        let runner = Task {
            async let clientRun: Void = client.run()
            async let durableRun: Void = durable.run()
            _ = await (clientRun, durableRun)
        }
        let store = PostgresOfflineQueueStore(client: client, durable: durable, runner: runner, limits: limits, logger: logger)
        do {
            try await withConnectDeadline(configuration) { try await store.migrate() }
            let removed = try await client.withConnection { try await store.removeAbandonedIngests(now: Date(), on: $0) }
            if removed > 0 { logger.notice("Removed webhooks a dead replica left half-stored", metadata: ["count": "\(removed)"]) }
            return store
        } catch {
            runner.cancel()
            await runner.value
            throw error
        }
    }

    private init(client: PostgresClient, durable: PostgresClient, runner: Task<Void, Never>, limits: OfflineQueueLimits, logger: Logger) {
        self.client = client
        self.durable = durable
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
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey), \(Self.migrationLock))", logger: logger)
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
            if version < 2 {
                for statement in Self.schemaV2 { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.query("INSERT INTO wow_queue_schema (version) VALUES (2)", logger: logger)
            }
            if version < 3 {
                for statement in Self.schemaV3 { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await connection.query("INSERT INTO wow_queue_schema (version) VALUES (3)", logger: logger)
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

    /// Usage per channel kept by a trigger (so a limit check reads two sums
    /// instead of scanning the queue), and the admission as one call.
    static let schemaV2 = [
        """
        CREATE TABLE wow_queue_usage (
            channel_id text PRIMARY KEY,
            webhooks bigint NOT NULL,
            bytes bigint NOT NULL
        )
        """,
        """
        INSERT INTO wow_queue_usage (channel_id, webhooks, bytes)
        SELECT channel_id, count(*), sum(body_length) FROM wow_queue_webhooks GROUP BY channel_id
        """,
        """
        CREATE FUNCTION wow_queue_count_usage() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO wow_queue_usage AS u (channel_id, webhooks, bytes) VALUES (NEW.channel_id, 1, NEW.body_length)
                ON CONFLICT (channel_id) DO UPDATE SET webhooks = u.webhooks + 1, bytes = u.bytes + excluded.bytes;
            ELSIF TG_OP = 'DELETE' THEN
                UPDATE wow_queue_usage SET webhooks = webhooks - 1, bytes = bytes - OLD.body_length WHERE channel_id = OLD.channel_id;
            ELSE
                UPDATE wow_queue_usage SET bytes = bytes + NEW.body_length - OLD.body_length WHERE channel_id = NEW.channel_id;
            END IF;
            RETURN NULL;
        END
        $$
        """,
        """
        CREATE TRIGGER wow_queue_count_rows AFTER INSERT OR DELETE ON wow_queue_webhooks
        FOR EACH ROW EXECUTE FUNCTION wow_queue_count_usage()
        """,
        """
        CREATE TRIGGER wow_queue_count_resizes AFTER UPDATE OF body_length ON wow_queue_webhooks
        FOR EACH ROW WHEN (OLD.body_length IS DISTINCT FROM NEW.body_length) EXECUTE FUNCTION wow_queue_count_usage()
        """,
        // Schema 2 locked per channel (see `schemaV3`).
        admitFunction(lock: "hashtext(channel)"),
    ]

    /// Admission under one cluster-wide lock instead of the channel's: with a lock per channel, two
    /// channels admitting at the same instant could pass the server-wide total together. The
    /// signature is unchanged, so replicas of version 2 keep calling it during a rolling update.
    static let schemaV3 = [admitFunction(lock: "\(admissionLock)")]

    /// `wow_queue_admit`: the lock, the limit check and the insert in one call. `lock` is the
    /// second key of the advisory lock. VOLATILE: each statement inside takes a fresh snapshot, so
    /// the sums read after the lock include every ingest admitted before it.
    static func admitFunction(lock: String) -> String {
        """
        CREATE OR REPLACE FUNCTION wow_queue_admit(
            lock_key integer, new_id text, channel text, new_method text, new_target text, fields bytea, reserved bigint,
            now_ms bigint, lease_until_ms bigint, max_webhooks bigint, max_channel_bytes bigint, max_total_bytes bigint
        ) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            used_webhooks bigint;
            used_bytes bigint;
            total_bytes bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_key, \(lock));
            SELECT coalesce(sum(webhooks) FILTER (WHERE channel_id = channel), 0),
                   coalesce(sum(bytes) FILTER (WHERE channel_id = channel), 0),
                   coalesce(sum(bytes), 0)
            INTO used_webhooks, used_bytes, total_bytes FROM wow_queue_usage;
            IF used_webhooks + 1 > max_webhooks THEN RETURN 'channel_count'; END IF;
            IF used_bytes + reserved > max_channel_bytes THEN RETURN 'channel_bytes'; END IF;
            IF total_bytes + reserved > max_total_bytes THEN RETURN 'server_bytes'; END IF;
            INSERT INTO wow_queue_webhooks (id, channel_id, method, target, header_fields, body_length, queued_at, next_attempt_at, state, lease_until)
            VALUES (new_id, channel, new_method, new_target, fields, reserved, now_ms, now_ms, 'ingesting', lease_until_ms);
            RETURN 'admitted';
        END
        $$
        """
    }

    // MARK: - Modes

    public func setMode(_ mode: OfflineMode, channelID: String) async throws {
        if try await self.mode(channelID: channelID) == mode { return }
        let now = Self.milliseconds(Date())
        try await durable.query(
            """
            INSERT INTO wow_queue_channels (channel_id, mode, updated_at) VALUES (\(channelID), \(mode.rawValue), \(now))
            ON CONFLICT (channel_id) DO UPDATE SET mode = excluded.mode, updated_at = excluded.updated_at
            """,
            logger: logger
        )
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
        let maxWebhooks = Int64(limits.maxCountPerChannel)
        // One round trip: the lock, the check and the insert run in the
        // function, in one transaction that commits without a WAL flush.
        let rows = try await client.query(
            """
            SELECT wow_queue_admit(\(Self.advisoryLockKey), \(id), \(channelID), \(head.method), \(head.target), \(fields), \(reserved),
                \(milliseconds), \(leaseUntil), \(maxWebhooks), \(limits.maxBytesPerChannel), \(limits.maxTotalBytes))
            """,
            logger: logger
        )
        var verdict = ""
        for try await answer in rows.decode(String.self) { verdict = answer }
        switch verdict {
        case "admitted": break
        case "channel_count": throw OfflineQueueRefusal.channelCountLimit
        case "channel_bytes": throw OfflineQueueRefusal.channelBytesLimit
        case "server_bytes": throw OfflineQueueRefusal.serverBytesLimit
        default: throw OfflineQueueError.corruptRecord("wow_queue_admit answered '\(verdict)'")
        }
        liveIngests.withLock { $0[id] = LiveIngest(channelID: channelID, head: head, queuedAt: queuedAt, reserved: reserved) }
        return BufferedQueueIngest(backend: IngestHandle(store: self), id: id)
    }

    private struct Usage {
        var count: Int
        var channelBytes: Int64
        var totalBytes: Int64
    }

    /// The channel's and the whole queue's use, under the admission lock (held to the end of the
    /// transaction).
    private func usage(of channelID: String, on connection: PostgresConnection) async throws -> Usage {
        try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey), \(Self.admissionLock))", logger: logger)
        let rows = try await connection.query(
            """
            SELECT coalesce(sum(webhooks) FILTER (WHERE channel_id = \(channelID)), 0)::bigint,
                   coalesce(sum(bytes) FILTER (WHERE channel_id = \(channelID)), 0)::bigint,
                   coalesce(sum(bytes), 0)::bigint
            FROM wow_queue_usage
            """,
            logger: logger
        )
        for try await (count, channelBytes, totalBytes) in rows.decode((Int64, Int64, Int64).self) {
            return Usage(count: Int(count), channelBytes: channelBytes, totalBytes: totalBytes)
        }
        return Usage(count: 0, channelBytes: 0, totalBytes: 0)
    }

    private struct IngestHandle: IngestBackend {
        let store: PostgresOfflineQueueStore
        func account(id: String, bodyLength: Int64) async throws { try await store.account(id: id, bodyLength: bodyLength) }
        func writeChunk(id: String, index: Int, data: ByteBuffer) async throws {
            try await store.writeChunk(id: id, index: index, data: data)
        }
        func finishIngest(id: String, bodyLength: Int64, chunkCount: Int, lastChunk: ByteBuffer?) async throws -> QueuedWebhook {
            try await store.finishIngest(id: id, bodyLength: bodyLength, chunkCount: chunkCount, lastChunk: lastChunk)
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

    private func finishIngest(id: String, bodyLength: Int64, chunkCount: Int, lastChunk: ByteBuffer?) async throws -> QueuedWebhook {
        guard let ingest = liveIngests.withLock({ $0[id] }) else { throw OfflineQueueError.unknownIngest }
        if ingest.reserved != bodyLength {
            // The reservation becomes the stored length here, without a WAL
            // flush, so the durable statement below does not touch the
            // channel's usage row (its lock would be held through the flush).
            try await client.query(
                "UPDATE wow_queue_webhooks SET body_length = \(bodyLength) WHERE id = \(id) AND state = 'ingesting'",
                logger: logger
            )
        }
        // One statement on a synchronous_commit=on connection: the last chunk
        // and the pending state commit together, and the commit waits for the
        // WAL flush.
        let rows: PostgresRowSequence
        if let lastChunk {
            rows = try await durable.query(
                """
                WITH chunk AS (
                    INSERT INTO wow_queue_body_chunks (webhook_id, idx, data)
                    SELECT id, \(chunkCount - 1), \(lastChunk) FROM wow_queue_webhooks WHERE id = \(id) AND state = 'ingesting'
                )
                UPDATE wow_queue_webhooks SET state = 'pending', chunk_count = \(chunkCount), lease_until = NULL
                WHERE id = \(id) AND state = 'ingesting' RETURNING seq
                """,
                logger: logger
            )
        } else {
            rows = try await durable.query(
                """
                UPDATE wow_queue_webhooks SET state = 'pending', chunk_count = \(chunkCount), lease_until = NULL
                WHERE id = \(id) AND state = 'ingesting' RETURNING seq
                """,
                logger: logger
            )
        }
        var updated = false
        for try await _ in rows.decode(Int64.self) { updated = true }
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

    // MARK: - Delivery

    public func claim(channelID: String, owner: String, lease: Duration, limit: Int) async throws -> [QueuedWebhook] {
        let now = Self.milliseconds(Date())
        let until = now + Self.milliseconds(lease)
        let limit = max(1, limit)
        // The rows are locked (SKIP LOCKED: another claimer's are passed
        // over) and leased in one statement; a body of one small chunk comes
        // along.
        let rows = try await client.query(
            """
            WITH claimed AS (
                UPDATE wow_queue_webhooks SET lease_owner = \(owner), lease_until = \(until)
                WHERE id = ANY(ARRAY(
                    SELECT id FROM wow_queue_webhooks
                    WHERE channel_id = \(channelID) AND state = 'pending' AND next_attempt_at <= \(now)
                        AND (lease_until IS NULL OR lease_until <= \(now))
                    ORDER BY seq LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED
                )) AND state = 'pending'
                RETURNING seq, id, method, target, header_fields, body_length, queued_at, attempts, chunk_count
            )
            SELECT w.id, w.method, w.target, w.header_fields, w.body_length, w.queued_at, w.attempts, c.data
            FROM claimed w
            LEFT JOIN wow_queue_body_chunks c ON c.webhook_id = w.id AND c.idx = 0 AND w.chunk_count = 1
                AND w.body_length <= \(InlineBodyCache.bodyLimit)
            ORDER BY w.seq
            """,
            logger: logger
        )
        var webhooks: [QueuedWebhook] = []
        var inline: [(id: String, data: ByteBuffer)] = []
        for try await (id, method, target, fields, length, queuedAt, attempts, data) in rows.decode(
            (String, String, String, ByteBuffer, Int64, Int64, Int, ByteBuffer?).self
        ) {
            webhooks.append(
                QueuedWebhook(
                    id: id,
                    channelID: channelID,
                    head: QueuedRequestHead(method: method, target: target, headerFields: try HeaderFieldsCodec.decode(fields)),
                    bodyLength: length,
                    queuedAt: Date(timeIntervalSince1970: Double(queuedAt) / 1_000),
                    attempts: attempts
                )
            )
            if let data { inline.append((id, data)) }
        }
        inlineBodies.keep(inline)
        return webhooks
    }

    public func body(of id: String) -> AsyncThrowingStream<ByteBuffer, any Error> {
        ChunkCursor.body(of: id, inline: inlineBodies) { index in try await self.chunk(of: id, index: index) }
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

    public func markDelivered(ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        inlineBodies.drop(ids)
        // On a synchronous_commit=off connection: no WAL flush. A crash that
        // loses it delivers the webhooks again, which at-least-once allows.
        try await client.query("DELETE FROM wow_queue_webhooks WHERE id = ANY(\(ids))", logger: logger)
    }

    public func release(ids: [String], owner: String) async throws {
        guard !ids.isEmpty else { return }
        inlineBodies.drop(ids)
        try await client.query(
            "UPDATE wow_queue_webhooks SET lease_owner = NULL, lease_until = NULL WHERE id = ANY(\(ids)) AND lease_owner = \(owner)",
            logger: logger
        )
    }

    public func markFailed(id: String, retryAt: Date?) async throws {
        inlineBodies.drop([id])
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

    /// One replica at a time: two replicas deleting the same old rows in different orders could
    /// deadlock on them and their channels' usage rows, so a replica that finds another expiring
    /// skips this round (the sweeper comes back).
    public func expire(now: Date) async throws -> Int {
        let cutoff = Self.milliseconds(now) - Self.milliseconds(limits.maxAge)
        return try await transaction { connection in
            var locked = false
            for try await got in try await connection.query(
                "SELECT pg_try_advisory_xact_lock(\(Self.advisoryLockKey), \(Self.expiryLock))",
                logger: logger
            ).decode(Bool.self) {
                locked = got
            }
            guard locked else { return 0 }
            let rows = try await connection.query(
                "DELETE FROM wow_queue_webhooks WHERE state != 'ingesting' AND queued_at < \(cutoff) RETURNING seq",
                logger: logger
            )
            var removed = 0
            for try await _ in rows.decode(Int64.self) { removed += 1 }
            _ = try await removeAbandonedIngests(now: now, on: connection)
            // Channels with nothing queued leave the usage table, so the total a
            // limit check sums stays short. The trigger adds them back on their
            // next webhook.
            try await connection.query("DELETE FROM wow_queue_usage WHERE webhooks = 0", logger: logger)
            return removed
        }
    }

    /// Ingests whose replica stopped writing (it died) long ago.
    private func removeAbandonedIngests(now: Date, on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query(
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
