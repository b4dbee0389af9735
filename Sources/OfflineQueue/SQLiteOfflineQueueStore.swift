public import Foundation
import HTTPTypes
public import Logging
public import NIOCore
import SQLiteNIO
import TunnelProtocol

/// The offline queue in one SQLite file, `queue.sqlite` in `--data-dir`
/// (docs/offline-queue.md, "Storage").
///
/// One connection, owned by this actor, in WAL mode with `synchronous=FULL`:
/// a transaction's `COMMIT` returns only after its WAL frames are fsynced.
/// All writes go into one open transaction; ``OfflineQueueIngest/commit()``
/// waits until the transaction holding its webhook is committed (group commit:
/// whoever waits first commits for everyone who wrote meanwhile). Writes that
/// need no promise to a sender (chunks of a body still arriving, deliveries,
/// leases) are committed by the next group commit or after
/// ``idleCommitInterval`` at the latest.
public actor SQLiteOfflineQueueStore: OfflineQueueStore {
    public static let fileName = "queue.sqlite"
    static let schemaVersion = 1
    /// Bytes written in one transaction after which the writer commits it
    /// itself, so a large body does not grow the WAL without bound.
    static let transactionByteBudget = 16 << 20
    static let idleCommitInterval = Duration.milliseconds(100)

    private struct LiveIngest {
        var channelID: String
        var head: QueuedRequestHead
        var queuedAt: Date
        var reserved: Int64
    }

    private let connection: SQLiteConnection
    private let directoryLock: DataDirectoryLock
    private let logger: Logger
    private var accounting: QueueAccounting
    /// Whether `accounting` counts every stored webhook; false after a recount that failed, when
    /// ``claim(channelID:owner:lease:limit:)`` must ask the file, since it skips the channels the
    /// accounting says hold nothing.
    private var accountingIsComplete = true
    private var liveIngests: [String: LiveIngest] = [:]

    // The connection is used by one operation at a time (an async lock), so a
    // COMMIT never runs between another operation's statements.
    private var busy = false
    /// First come, first served; a ring buffer, so taking the first of hundreds waiting (10,000
    /// clients reconnecting) does not shift the rest (`Array.removeFirst` was 1.5 % of the
    /// server's CPU while 10,000 clients connected, docs/performance.md).
    private var lockWaiters = CircularBuffer<CheckedContinuation<Void, Never>>()

    // Group commit.
    private var inTransaction = false
    private var openGeneration = 1
    private var syncedGeneration = 0
    private var failedGenerations: [Int: any Error] = [:]
    private var bytesInTransaction = 0
    private var committing = false
    private var commitWaiters: [CheckedContinuation<Void, Never>] = []
    /// Webhooks made pending in the open transaction: not durable yet, so not
    /// handed to delivery yet.
    private var unsyncedPending: Set<String> = []

    private var idleCommitter: Task<Void, Never>?
    private var isClosed = false
    private nonisolated let inlineBodies = InlineBodyCache()

    /// Opens (creating if needed) the queue in `dataDirectory`, which is
    /// created with mode 0700 when missing.
    public static func open(dataDirectory: URL, limits: OfflineQueueLimits, logger: Logger) async throws -> SQLiteOfflineQueueStore {
        let directory = dataDirectory.standardizedFileURL.path
        do {
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw OfflineQueueError.unwritableDirectory("\(directory): \(error.localizedDescription)")
        }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw OfflineQueueError.unwritableDirectory("\(directory): \(String(cString: strerror(errno)))")
        }
        let directoryLock = try DataDirectoryLock(directory: directory)
        let path = directory + "/" + fileName
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            directoryLock.unlock()
            throw OfflineQueueError.unwritableDirectory("\(path): \(error)")
        }
        do {
            let accounting = try await prepare(connection, limits: limits, logger: logger)
            let store = SQLiteOfflineQueueStore(
                connection: connection,
                directoryLock: directoryLock,
                accounting: accounting,
                logger: logger
            )
            await store.startIdleCommitter()
            return store
        } catch {
            try? await connection.close()
            directoryLock.unlock()
            throw error
        }
    }

    private init(connection: SQLiteConnection, directoryLock: DataDirectoryLock, accounting: QueueAccounting, logger: Logger) {
        self.connection = connection
        self.directoryLock = directoryLock
        self.accounting = accounting
        self.logger = logger
    }

    /// Pragmas, schema, and the cleanup of what a crash left: ingests that
    /// never committed and leases of deliveries that never finished.
    private static func prepare(_ db: SQLiteConnection, limits: OfflineQueueLimits, logger: Logger) async throws -> QueueAccounting {
        let journal = try await db.run("PRAGMA journal_mode=WAL").first?.column("journal_mode")?.string
        guard journal == "wal" else { throw OfflineQueueError.unwritableDirectory("SQLite refused WAL mode (journal_mode=\(journal ?? "?"))") }
        _ = try await db.run("PRAGMA synchronous=FULL")
        _ = try await db.run("PRAGMA foreign_keys=ON")
        let version = Int(try await db.run("PRAGMA user_version").first?.column("user_version")?.integer ?? 0)
        if version > schemaVersion { throw OfflineQueueError.newerSchema(version) }
        _ = try await db.run("BEGIN IMMEDIATE")
        do {
            if version < 1 {
                for statement in schemaV1 { _ = try await db.run(statement) }
                _ = try await db.run("PRAGMA user_version=\(schemaVersion)")
            }
            let leftovers = try await db.run("DELETE FROM webhooks WHERE state = 'ingesting' RETURNING id")
            if !leftovers.isEmpty {
                logger.notice("Removed webhooks a crash left half-stored", metadata: ["count": "\(leftovers.count)"])
            }
            _ = try await db.run("UPDATE webhooks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL")
            _ = try await db.run("COMMIT")
        } catch {
            _ = try? await db.run("ROLLBACK")
            throw error
        }
        var accounting = QueueAccounting(limits: limits)
        for row in try await db.run("SELECT channel_id, count(*) AS n, coalesce(sum(body_length), 0) AS bytes FROM webhooks GROUP BY channel_id") {
            accounting.add(
                channelID: row.column("channel_id")?.string ?? "",
                count: Int(row.column("n")?.integer ?? 0),
                bytes: Int64(row.column("bytes")?.integer ?? 0)
            )
        }
        return accounting
    }

    static let schemaV1 = [
        """
        CREATE TABLE channels (
            channel_id TEXT PRIMARY KEY,
            mode TEXT NOT NULL CHECK (mode IN ('queue', 'reject')),
            updated_at INTEGER NOT NULL
        )
        """,
        """
        CREATE TABLE webhooks (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            channel_id TEXT NOT NULL,
            method TEXT NOT NULL,
            target TEXT NOT NULL,
            header_fields BLOB NOT NULL,
            body_length INTEGER NOT NULL DEFAULT 0,
            chunk_count INTEGER NOT NULL DEFAULT 0,
            queued_at INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('ingesting', 'pending', 'failed')),
            lease_owner TEXT,
            lease_until INTEGER
        )
        """,
        "CREATE INDEX webhooks_by_channel ON webhooks (channel_id, state, seq)",
        "CREATE INDEX webhooks_by_age ON webhooks (queued_at)",
        """
        CREATE TABLE body_chunks (
            webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (webhook_id, idx)
        )
        """,
    ]

    // MARK: - Modes

    public func setMode(_ mode: OfflineMode, channelID: String) async throws {
        // One statement, not a read and then a write: the upsert leaves a row whose mode is already
        // `mode` untouched and returns only a row it wrote, so an unchanged mode waits for no synced
        // commit. Every `/new` records its channel's mode (docs/performance.md, "10,000 connects").
        let generation = try await exclusively { () -> Int? in
            let written = try await write(
                "INSERT INTO channels (channel_id, mode, updated_at) VALUES (?, ?, ?) "
                    + "ON CONFLICT (channel_id) DO UPDATE SET mode = excluded.mode, updated_at = excluded.updated_at "
                    + "WHERE channels.mode != excluded.mode RETURNING channel_id",
                [.text(channelID), .text(mode.rawValue), .integer(Self.milliseconds(Date()))]
            )
            return written.isEmpty ? nil : openGeneration
        }
        if let generation { try await waitUntilCommitted(generation) }
    }

    public func mode(channelID: String) async throws -> OfflineMode? {
        let rows = try await exclusively {
            try await read("SELECT mode FROM channels WHERE channel_id = ?", [.text(channelID)])
        }
        return rows.first?.column("mode")?.string.flatMap(OfflineMode.init(rawValue:))
    }

    // MARK: - Ingest

    public func beginIngest(channelID: String, head: QueuedRequestHead, declaredLength: Int64?) async throws -> any OfflineQueueIngest {
        let id = UUID().uuidString.lowercased()
        let reserved = max(0, declaredLength ?? 0)
        let now = Date()
        let queuedAt = Date(timeIntervalSince1970: Double(Self.milliseconds(now)) / 1_000)
        try await exclusively {
            try accounting.admit(channelID: channelID, bytes: reserved)
            liveIngests[id] = LiveIngest(channelID: channelID, head: head, queuedAt: queuedAt, reserved: reserved)
            do {
                try await write(
                    "INSERT INTO webhooks (id, channel_id, method, target, header_fields, queued_at, next_attempt_at, state) "
                        + "VALUES (?, ?, ?, ?, ?, ?, ?, 'ingesting')",
                    [
                        .text(id), .text(channelID), .text(head.method), .text(head.target),
                        .blob(HeaderFieldsCodec.encode(head.headerFields)),
                        .integer(Self.milliseconds(queuedAt)), .integer(Self.milliseconds(queuedAt)),
                    ]
                )
            } catch {
                liveIngests[id] = nil
                accounting.remove(channelID: channelID, count: 1, bytes: reserved)
                throw error
            }
        }
        return BufferedQueueIngest(backend: IngestHandle(store: self), id: id)
    }

    /// The ingest's way back into this actor.
    private struct IngestHandle: IngestBackend {
        let store: SQLiteOfflineQueueStore
        func account(id: String, bodyLength: Int64) async throws { try await store.account(id: id, bodyLength: bodyLength) }
        func writeChunk(id: String, index: Int, data: ByteBuffer) async throws {
            try await store.writeChunk(id: id, index: index, data: data)
        }
        func finishIngest(id: String, bodyLength: Int64, chunkCount: Int, lastChunk: ByteBuffer?) async throws -> QueuedWebhook {
            try await store.finishIngest(id: id, bodyLength: bodyLength, chunkCount: chunkCount, lastChunk: lastChunk)
        }
        func abortIngest(id: String) async { await store.abortIngest(id: id) }
    }

    private func account(id: String, bodyLength: Int64) throws {
        guard var ingest = liveIngests[id] else { throw OfflineQueueError.unknownIngest }
        guard bodyLength > ingest.reserved else { return }
        try accounting.grow(channelID: ingest.channelID, by: bodyLength - ingest.reserved, bodyLength: bodyLength)
        ingest.reserved = bodyLength
        liveIngests[id] = ingest
    }

    private func writeChunk(id: String, index: Int, data: ByteBuffer) async throws {
        guard liveIngests[id] != nil else { throw OfflineQueueError.unknownIngest }
        let generation = try await exclusively {
            try await write(
                "INSERT INTO body_chunks (webhook_id, idx, data) VALUES (?, ?, ?)",
                [.text(id), .integer(SQLiteInt64(index)), .blob(data)]
            )
            bytesInTransaction += data.readableBytes
            return bytesInTransaction > Self.transactionByteBudget ? openGeneration : nil
        }
        if let generation { try await waitUntilCommitted(generation) }
    }

    private func finishIngest(id: String, bodyLength: Int64, chunkCount: Int, lastChunk: ByteBuffer?) async throws -> QueuedWebhook {
        guard let ingest = liveIngests[id] else { throw OfflineQueueError.unknownIngest }
        let generation = try await exclusively {
            if let lastChunk {
                try await write(
                    "INSERT INTO body_chunks (webhook_id, idx, data) VALUES (?, ?, ?)",
                    [.text(id), .integer(SQLiteInt64(chunkCount - 1)), .blob(lastChunk)]
                )
                bytesInTransaction += lastChunk.readableBytes
            }
            let rows = try await write(
                "UPDATE webhooks SET state = 'pending', body_length = ?, chunk_count = ? WHERE id = ? AND state = 'ingesting' RETURNING seq",
                [.integer(SQLiteInt64(bodyLength)), .integer(SQLiteInt64(chunkCount)), .text(id)]
            )
            guard !rows.isEmpty else { throw OfflineQueueError.unknownIngest }
            unsyncedPending.insert(id)
            // The reservation becomes the stored length.
            accounting.remove(channelID: ingest.channelID, count: 0, bytes: max(0, ingest.reserved - bodyLength))
            liveIngests[id] = nil
            return openGeneration
        }
        do {
            try await waitUntilCommitted(generation)
        } catch {
            // The transaction was rolled back; remove what earlier ones kept.
            _ = try? await exclusively { try await write("DELETE FROM webhooks WHERE id = ?", [.text(id)]) }
            throw error
        }
        return QueuedWebhook(id: id, channelID: ingest.channelID, head: ingest.head, bodyLength: bodyLength, queuedAt: ingest.queuedAt, attempts: 0)
    }

    private func abortIngest(id: String) async {
        guard let ingest = liveIngests.removeValue(forKey: id) else { return }
        accounting.remove(channelID: ingest.channelID, count: 1, bytes: ingest.reserved)
        do {
            try await exclusively { _ = try await write("DELETE FROM webhooks WHERE id = ?", [.text(id)]) }
        } catch {
            logger.warning("Could not remove an aborted webhook; it goes at the next start", metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    // MARK: - Delivery

    public func claim(channelID: String, owner: String, lease: Duration, limit: Int) async throws -> [QueuedWebhook] {
        // Nothing stored for the channel, in any state: no statement. Every connecting client wakes its
        // channel's drain, nearly always with nothing queued, and a query each was a quarter of the
        // server's CPU while 10,000 clients connected (docs/performance.md, "10,000 connects").
        if accountingIsComplete, accounting.channels[channelID] == nil { return [] }
        // What is committed but not yet synced is not delivered yet; let it
        // become durable first so that arrival order holds.
        if !unsyncedPending.isEmpty { try await waitUntilCommitted(openGeneration) }
        return try await exclusively {
            let now = Self.milliseconds(Date())
            // A body of one small chunk comes along: its delivery then reads
            // nothing more from the store.
            let rows = try await read(
                "SELECT w.id AS id, w.method AS method, w.target AS target, w.header_fields AS header_fields, "
                    + "w.body_length AS body_length, w.queued_at AS queued_at, w.attempts AS attempts, c.data AS data FROM webhooks w "
                    + "LEFT JOIN body_chunks c ON c.webhook_id = w.id AND c.idx = 0 AND w.chunk_count = 1 AND w.body_length <= ? "
                    + "WHERE w.channel_id = ? AND w.state = 'pending' AND w.next_attempt_at <= ? AND (w.lease_until IS NULL OR w.lease_until <= ?) "
                    + "ORDER BY w.seq LIMIT ?",
                [
                    .integer(SQLiteInt64(InlineBodyCache.bodyLimit)), .text(channelID), .integer(now), .integer(now),
                    .integer(SQLiteInt64(unsyncedPending.count + max(1, limit))),
                ]
            )
            let claimed = rows.filter { !unsyncedPending.contains($0.column("id")?.string ?? "") }.prefix(max(1, limit))
            let webhooks = try claimed.map { try Self.webhook(from: $0, channelID: channelID) }
            guard !webhooks.isEmpty else { return [] }
            inlineBodies.keep(
                zip(webhooks, claimed).compactMap { webhook, row in row.column("data")?.blob.map { (id: webhook.id, data: $0) } }
            )
            let ids = webhooks.map { SQLiteData.text($0.id) }
            _ = try await write(
                "UPDATE webhooks SET lease_owner = ?, lease_until = ? WHERE id IN (\(Self.placeholders(ids.count)))",
                [.text(owner), .integer(now + Self.milliseconds(lease))] + ids
            )
            return webhooks
        }
    }

    public nonisolated func body(of id: String) -> AsyncThrowingStream<ByteBuffer, any Error> {
        ChunkCursor.body(of: id, inline: inlineBodies) { index in try await self.chunk(of: id, index: index) }
    }

    /// Chunk `index` of a stored body and whether it is the last, in one
    /// statement; nil past the end. Throws when the webhook is not stored.
    private func chunk(of id: String, index: Int) async throws -> (ByteBuffer, Bool)? {
        let row = try await exclusively {
            try await read(
                "SELECT w.chunk_count AS n, c.data AS data FROM webhooks w "
                    + "LEFT JOIN body_chunks c ON c.webhook_id = w.id AND c.idx = ? WHERE w.id = ?",
                [.integer(SQLiteInt64(index)), .text(id)]
            )
        }.first
        guard let row else { throw OfflineQueueError.unknownWebhook }
        guard let data = row.column("data"), !data.isNull else { return nil }
        return (data.blob ?? ByteBuffer(), index + 1 >= Int(row.column("n")?.integer ?? 0))
    }

    public func markDelivered(ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        inlineBodies.drop(ids)
        // Into the open transaction, synced by the next group commit (100 ms
        // at the latest): a crash before it delivers these again, which
        // at-least-once allows.
        try await exclusively {
            let rows = try await write(
                "DELETE FROM webhooks WHERE id IN (\(Self.placeholders(ids.count))) RETURNING channel_id, body_length",
                ids.map { .text($0) }
            )
            forget(rows)
        }
    }

    public func release(ids: [String], owner: String) async throws {
        guard !ids.isEmpty else { return }
        inlineBodies.drop(ids)
        try await exclusively {
            _ = try await write(
                "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND id IN (\(Self.placeholders(ids.count)))",
                [.text(owner)] + ids.map { .text($0) }
            )
        }
    }

    public func markFailed(id: String, retryAt: Date?) async throws {
        inlineBodies.drop([id])
        try await exclusively {
            if let retryAt {
                _ = try await write(
                    "UPDATE webhooks SET attempts = attempts + 1, state = 'pending', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL "
                        + "WHERE id = ? AND state != 'ingesting'",
                    [.integer(Self.milliseconds(retryAt)), .text(id)]
                )
            } else {
                _ = try await write(
                    "UPDATE webhooks SET attempts = attempts + 1, state = 'failed', lease_owner = NULL, lease_until = NULL "
                        + "WHERE id = ? AND state != 'ingesting'",
                    [.text(id)]
                )
            }
        }
    }

    // MARK: - Housekeeping

    public func expire(now: Date) async throws -> Int {
        let cutoff = Self.milliseconds(now) - Self.milliseconds(accounting.limits.maxAge)
        return try await exclusively {
            let rows = try await write(
                "DELETE FROM webhooks WHERE state != 'ingesting' AND queued_at < ? RETURNING channel_id, body_length",
                [.integer(cutoff)]
            )
            forget(rows)
            return rows.count
        }
    }

    public func channelsWithQueuedWebhooks() async throws -> [String] {
        try await exclusively {
            try await read("SELECT DISTINCT channel_id FROM webhooks WHERE state != 'ingesting' ORDER BY channel_id", [])
        }.compactMap { $0.column("channel_id")?.string }
    }

    public func statistics() async throws -> OfflineQueueStatistics {
        let row = try await exclusively {
            try await read(
                "SELECT count(*) AS n, coalesce(sum(body_length), 0) AS bytes, min(queued_at) AS oldest FROM webhooks WHERE state != 'ingesting'",
                []
            )
        }.first
        return OfflineQueueStatistics(
            depth: Int(row?.column("n")?.integer ?? 0),
            bytes: Int64(row?.column("bytes")?.integer ?? 0),
            oldestQueuedAt: row?.column("oldest")?.integer.map { Date(timeIntervalSince1970: Double($0) / 1_000) }
        )
    }

    public func close() async throws {
        guard !isClosed else { return }
        idleCommitter?.cancel()
        await idleCommitter?.value
        idleCommitter = nil
        try await waitUntilCommitted(openGeneration)
        isClosed = true
        await acquire()
        defer { release() }
        try await connection.close()
        directoryLock.unlock()
    }

    // MARK: - Connection discipline

    private func acquire() async {
        if busy {
            await withCheckedContinuation { lockWaiters.append($0) }
        } else {
            busy = true
        }
    }

    private func release() {
        if lockWaiters.isEmpty {
            busy = false
        } else {
            lockWaiters.removeFirst().resume()
        }
    }

    private func exclusively<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard !isClosed else { throw OfflineQueueError.closed }
        await acquire()
        defer { release() }
        guard !isClosed else { throw OfflineQueueError.closed }
        return try await body()
    }

    /// A statement that changes the database, in the open transaction.
    @discardableResult
    private func write(_ sql: String, _ binds: [SQLiteData]) async throws -> [SQLiteRow] {
        if !inTransaction {
            _ = try await connection.run("BEGIN IMMEDIATE")
            inTransaction = true
        }
        return try await connection.run(sql, binds)
    }

    private func read(_ sql: String, _ binds: [SQLiteData]) async throws -> [SQLiteRow] {
        try await connection.run(sql, binds)
    }

    /// Returns once transaction `generation` is committed and synced, or
    /// throws if its COMMIT failed.
    private func waitUntilCommitted(_ generation: Int) async throws {
        while syncedGeneration < generation {
            if committing {
                await withCheckedContinuation { commitWaiters.append($0) }
            } else {
                await commitOpenTransaction()
            }
        }
        if let error = failedGenerations[generation] { throw error }
    }

    private func commitOpenTransaction() async {
        committing = true
        await acquire()
        let generation = openGeneration
        if inTransaction && !isClosed {
            do {
                _ = try await connection.run("COMMIT")
            } catch {
                logger.error("Queue transaction failed; its webhooks were not stored", metadata: ["error": "\(error)"])
                _ = try? await connection.run("ROLLBACK")
                failedGenerations[generation] = error
                failedGenerations = failedGenerations.filter { $0.key > generation - 64 }
                await recount()
            }
            inTransaction = false
        }
        unsyncedPending.removeAll()
        bytesInTransaction = 0
        syncedGeneration = generation
        openGeneration += 1
        release()
        committing = false
        let waiters = commitWaiters
        commitWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    /// After a rollback: what is on disk, plus what live ingests reserved.
    private func recount() async {
        accounting.removeAll()
        accountingIsComplete = false
        do {
            let rows = try await read(
                "SELECT channel_id, count(*) AS n, coalesce(sum(body_length), 0) AS bytes FROM webhooks WHERE state != 'ingesting' GROUP BY channel_id",
                []
            )
            for row in rows {
                accounting.add(
                    channelID: row.column("channel_id")?.string ?? "",
                    count: Int(row.column("n")?.integer ?? 0),
                    bytes: Int64(row.column("bytes")?.integer ?? 0)
                )
            }
            accountingIsComplete = true
        } catch {
            logger.error("Could not recount the queue", metadata: ["error": "\(error)"])
        }
        for ingest in liveIngests.values { accounting.add(channelID: ingest.channelID, count: 1, bytes: ingest.reserved) }
    }

    private func startIdleCommitter() {
        idleCommitter = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.idleCommitInterval)
                await self?.commitIfIdle()
            }
        }
    }

    private func commitIfIdle() async {
        if inTransaction && !committing && !isClosed { await commitOpenTransaction() }
    }

    private func forget(_ deletedRows: [SQLiteRow]) {
        for row in deletedRows {
            accounting.remove(
                channelID: row.column("channel_id")?.string ?? "",
                count: 1,
                bytes: Int64(row.column("body_length")?.integer ?? 0)
            )
        }
    }

    // MARK: - Conversions

    /// `?, ?, ?` for an `IN` list of `count` values.
    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }

    static func milliseconds(_ date: Date) -> SQLiteInt64 {
        SQLiteInt64((date.timeIntervalSince1970 * 1_000).rounded(.down))
    }

    static func milliseconds(_ duration: Duration) -> SQLiteInt64 {
        SQLiteInt64(duration.components.seconds * 1_000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    private static func webhook(from row: SQLiteRow, channelID: String) throws -> QueuedWebhook {
        guard let id = row.column("id")?.string, let method = row.column("method")?.string, let target = row.column("target")?.string,
            let fields = row.column("header_fields")?.blob, let queuedAt = row.column("queued_at")?.integer
        else { throw OfflineQueueError.corruptRecord("webhook row") }
        return QueuedWebhook(
            id: id,
            channelID: channelID,
            head: QueuedRequestHead(method: method, target: target, headerFields: try HeaderFieldsCodec.decode(fields)),
            bodyLength: Int64(row.column("body_length")?.integer ?? 0),
            queuedAt: Date(timeIntervalSince1970: Double(queuedAt) / 1_000),
            attempts: Int(row.column("attempts")?.integer ?? 0)
        )
    }
}

extension SQLiteConnection {
    /// Runs one statement to the end even when the calling task is cancelled:
    /// a COMMIT interrupted by one sender leaving would roll back everyone's
    /// webhooks in the group.
    fileprivate func run(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        let future: EventLoopFuture<[SQLiteRow]> = query(sql, binds)
        return try await future.get()
    }
}
