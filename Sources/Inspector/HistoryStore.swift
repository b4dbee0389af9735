import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO

/// The history on disk: one SQLite file (`inspector.sqlite` in the client's
/// state dir, WAL mode), one row per webhook, bounded by count and bytes with
/// the oldest evicted first (docs/inspector.md, "History").
///
/// Only ``HistoryWriter`` writes; the API reads. Both go through this actor,
/// which owns the one connection.
actor HistoryStore {
    static let fileName = "inspector.sqlite"

    private let connection: SQLiteConnection
    private let threadPool: NIOThreadPool
    let limits: HistoryLimits
    /// Every row's id and stored bytes, oldest first, so the bounds are
    /// checked without scanning the table on each write.
    private var order: [String] = []
    private var sizes: [String: Int] = [:]
    private var totalBytes = 0

    private init(connection: SQLiteConnection, threadPool: NIOThreadPool, limits: HistoryLimits) {
        self.connection = connection
        self.threadPool = threadPool
        self.limits = limits
    }

    /// The one thread that runs SQLite for the history, at the lowest scheduling priority (nice
    /// 19): the capture must not slow the tunnel (docs/inspector.md, "Cost"), so when the machine's
    /// cores are busy with webhooks the history's writes wait, and ``HistoryWriter`` keeps only
    /// what the bounds would keep anyway. With idle cores it runs at once, as before.
    private static func backgroundThreadPool() async throws -> NIOThreadPool {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        try await pool.runIfActive {
            // `who` 0 is the calling thread on Linux, where a nice value belongs to each thread
            // (the kernel reads 0 as `current`). Elsewhere it would lower the whole process, so
            // the thread keeps the default priority there.
            #if os(Linux)
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
            #endif
        }
        return pool
    }

    private func loadTotals() async throws {
        for row in try await self.connection.run("SELECT id, stored_bytes FROM webhooks ORDER BY seq ASC") {
            guard let id = row.column("id")?.string else { continue }
            let size = row.column("stored_bytes")?.integer ?? 0
            self.order.append(id)
            self.sizes[id] = size
            self.totalBytes += size
        }
    }

    /// Opens (creating if needed) the history in `directory`.
    static func open(directory: String, limits: HistoryLimits, logger: Logger) async throws -> HistoryStore {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        let threadPool = try await Self.backgroundThreadPool()
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(
                storage: .file(path: path),
                threadPool: threadPool,
                logger: logger,
                on: MultiThreadedEventLoopGroup.singleton.any()
            )
        } catch {
            try? await threadPool.shutdownGracefully()
            throw error
        }
        do {
            // Before anything creates the file's first page (a new history only: an existing file
            // keeps its page size). A 64 KiB body spans one or two pages instead of sixteen, each
            // with its own WAL frame, checksum and free-list entry when it is evicted.
            _ = try await connection.run("PRAGMA page_size=65536")
            _ = try await connection.run("PRAGMA journal_mode=WAL")
            // A multi-row upsert keeps a statement journal; on disk (the default past 64 KiB) each
            // batch of large bodies created, wrote and deleted a temporary file.
            _ = try await connection.run("PRAGMA temp_store=MEMORY")
            // The history is a convenience, not a ledger: a power cut may lose
            // the last webhooks' rows but never corrupts the file (WAL).
            _ = try await connection.run("PRAGMA synchronous=NORMAL")
            _ = try await connection.run("PRAGMA busy_timeout=5000")
            _ = try await connection.run(
                """
                CREATE TABLE IF NOT EXISTS webhooks (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    time INTEGER NOT NULL,
                    method TEXT NOT NULL,
                    path TEXT NOT NULL,
                    request_headers TEXT NOT NULL,
                    request_body BLOB NOT NULL,
                    request_size INTEGER NOT NULL,
                    request_sha256 TEXT NOT NULL,
                    status INTEGER,
                    response_headers TEXT,
                    response_body BLOB,
                    response_size INTEGER,
                    response_sha256 TEXT,
                    duration_ms REAL,
                    replay_of TEXT,
                    delivery_id TEXT,
                    error TEXT,
                    state TEXT NOT NULL,
                    stored_bytes INTEGER NOT NULL
                )
                """
            )
        } catch {
            try? await connection.close()
            try? await threadPool.shutdownGracefully()
            throw error
        }
        let store = HistoryStore(connection: connection, threadPool: threadPool, limits: limits)
        try await store.loadTotals()
        return store
    }

    private var closed = false

    /// Closes the file once; later calls do nothing.
    func close() async {
        guard !self.closed else { return }
        self.closed = true
        // The future form runs even when the calling task is cancelled.
        let closing: EventLoopFuture<Void> = self.connection.close()
        try? await closing.get()
        try? await self.threadPool.shutdownGracefully()
    }

    /// Inserts or updates `records` in one transaction, then evicts the
    /// oldest rows beyond the bounds. Returns the ids evicted.
    /// `forgetting`: webhooks the writer dropped while the store was behind (``HistoryWriter``);
    /// the rows of those whose start was written go in the same transaction.
    @discardableResult
    func write(_ records: [WebhookRecord], forgetting: [String] = []) async throws -> [String] {
        guard !records.isEmpty || !forgetting.isEmpty else { return [] }
        _ = try await self.connection.run("BEGIN IMMEDIATE")
        do {
            var order = self.order
            var sizes = self.sizes
            var totalBytes = self.totalBytes
            let stale = forgetting.filter { sizes[$0] != nil }
            if !stale.isEmpty {
                for id in stale { totalBytes -= sizes.removeValue(forKey: id) ?? 0 }
                let gone = Set(stale)
                order.removeAll { gone.contains($0) }
            }
            // One statement per few hundred rows: each statement is a hop to
            // SQLite's thread and back, which costs more than the row itself.
            for start in stride(from: 0, to: records.count, by: Self.rowsPerStatement) {
                let rows = records[start..<min(start + Self.rowsPerStatement, records.count)]
                _ = try await self.connection.run(Self.upsert(rows: rows.count), rows.flatMap(Self.binds))
            }
            for record in records {
                let size = record.storedBytes
                if let old = sizes[record.id] {
                    totalBytes += size - old
                } else {
                    order.append(record.id)
                    totalBytes += size
                }
                sizes[record.id] = size
            }
            var evicted: [String] = []
            while !order.isEmpty, order.count > self.limits.maxWebhooks || totalBytes > self.limits.maxBytes {
                let oldest = order.removeFirst()
                totalBytes -= sizes.removeValue(forKey: oldest) ?? 0
                evicted.append(oldest)
            }
            let removed = stale + evicted
            for start in stride(from: 0, to: removed.count, by: Self.rowsPerStatement) {
                let ids = removed[start..<min(start + Self.rowsPerStatement, removed.count)]
                let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
                _ = try await self.connection.run("DELETE FROM webhooks WHERE id IN (\(marks))", ids.map { .text($0) })
            }
            _ = try await self.connection.run("COMMIT")
            (self.order, self.sizes, self.totalBytes) = (order, sizes, totalBytes)
            return evicted
        } catch {
            _ = try? await self.connection.run("ROLLBACK")
            throw error
        }
    }

    /// Newest first, at most `limit`, older than `before` when given
    /// (summaries: the bodies are not read).
    func list(limit: Int, before: String? = nil) async throws -> [WebhookRecord] {
        let columns = Self.summaryColumns
        let rows: [SQLiteRow]
        if let before {
            rows = try await self.connection.run(
                "SELECT \(columns) FROM webhooks WHERE seq < (SELECT seq FROM webhooks WHERE id = ?1) ORDER BY seq DESC LIMIT ?2",
                [.text(before), .integer(limit)]
            )
        } else {
            rows = try await self.connection.run("SELECT \(columns) FROM webhooks ORDER BY seq DESC LIMIT ?1", [.integer(limit)])
        }
        return rows.compactMap { Self.record(from: $0, bodies: false) }
    }

    /// Every id, oldest first.
    func allIDs() async throws -> [String] {
        try await self.connection.run("SELECT id FROM webhooks ORDER BY seq ASC").compactMap { $0.column("id")?.string }
    }

    /// One webhook with its heads and captured bodies.
    func record(id: String) async throws -> WebhookRecord? {
        let rows = try await self.connection.run("SELECT * FROM webhooks WHERE id = ?1", [.text(id)])
        return rows.first.flatMap { Self.record(from: $0, bodies: true) }
    }

    /// How many webhooks and stored bytes the history holds.
    func totals() async throws -> (count: Int, bytes: Int) {
        let row = try await self.connection.run("SELECT COUNT(*) AS n, COALESCE(SUM(stored_bytes), 0) AS bytes FROM webhooks").first
        return (row?.column("n")?.integer ?? 0, row?.column("bytes")?.integer ?? 0)
    }

    private static let summaryColumns =
        "id, time, method, path, request_headers, request_size, request_sha256, status, response_size, response_sha256, duration_ms, replay_of, delivery_id, error, state"

    /// Rows per statement: 19 parameters each stays far below SQLite's
    /// 32,766-parameter limit.
    static let rowsPerStatement = 500

    /// An upsert of `rows` rows (the writer has already kept only the newest
    /// version of each id in a batch).
    private static func upsert(rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: 19).joined(separator: ",") + ")"
        return Self.upsertHead + Array(repeating: row, count: rows).joined(separator: ",") + Self.upsertTail
    }

    private static let upsertHead = """
        INSERT INTO webhooks (id, time, method, path, request_headers, request_body, request_size, request_sha256,
            status, response_headers, response_body, response_size, response_sha256, duration_ms, replay_of,
            delivery_id, error, state, stored_bytes)
        VALUES\u{20}
        """

    private static let upsertTail = """

        ON CONFLICT(id) DO UPDATE SET
            request_headers = excluded.request_headers, request_body = excluded.request_body,
            request_size = excluded.request_size, request_sha256 = excluded.request_sha256,
            status = excluded.status, response_headers = excluded.response_headers,
            response_body = excluded.response_body, response_size = excluded.response_size,
            response_sha256 = excluded.response_sha256, duration_ms = excluded.duration_ms,
            error = excluded.error, state = excluded.state, stored_bytes = excluded.stored_bytes
        """

    private static func binds(_ record: WebhookRecord) -> [SQLiteData] {
        [
            .text(record.id),
            .integer(Int(record.time)),
            .text(record.method),
            .text(record.path),
            .text(Self.encode(record.requestHeaders)),
            .blob(record.requestBody.bytes),
            .integer(record.requestBody.size),
            .text(record.requestBody.sha256),
            record.status.map { .integer($0) } ?? .null,
            record.responseHeaders.map { .text(Self.encode($0)) } ?? .null,
            record.responseBody.map { .blob($0.bytes) } ?? .null,
            record.responseBody.map { .integer($0.size) } ?? .null,
            record.responseBody.map { .text($0.sha256) } ?? .null,
            record.durationMilliseconds.map { .float($0) } ?? .null,
            record.replayOf.map { .text($0) } ?? .null,
            record.deliveryID.map { .text($0) } ?? .null,
            record.error.map { .text($0) } ?? .null,
            .text(record.state.rawValue),
            .integer(record.storedBytes),
        ]
    }

    private static func record(from row: SQLiteRow, bodies: Bool) -> WebhookRecord? {
        guard let id = row.column("id")?.string, let time = row.column("time")?.integer,
            let method = row.column("method")?.string, let path = row.column("path")?.string
        else { return nil }
        let requestBytes = bodies ? (row.column("request_body")?.blob ?? ByteBuffer()) : ByteBuffer()
        let requestSize = row.column("request_size")?.integer ?? 0
        let requestBody = CapturedBody(
            bytes: requestBytes,
            size: requestSize,
            sha256: row.column("request_sha256")?.string ?? "",
            truncated: bodies ? requestSize > requestBytes.readableBytes : false
        )
        .withDigestIf(bodies)
        var responseBody: CapturedBody?
        if let size = row.column("response_size")?.integer {
            let bytes = bodies ? (row.column("response_body")?.blob ?? ByteBuffer()) : ByteBuffer()
            responseBody = CapturedBody(
                bytes: bytes,
                size: size,
                sha256: row.column("response_sha256")?.string ?? "",
                truncated: bodies ? size > bytes.readableBytes : false
            )
            .withDigestIf(bodies)
        }
        let status = row.column("status")?.integer
        return WebhookRecord(
            id: id,
            time: Int64(time),
            method: method,
            path: path,
            requestHeaders: Self.decode(row.column("request_headers")?.string),
            requestBody: requestBody,
            status: status,
            responseHeaders: row.column("response_headers")?.string.map { Self.decode($0) },
            responseBody: responseBody,
            durationMilliseconds: row.column("duration_ms")?.double,
            replayOf: row.column("replay_of")?.string,
            deliveryID: row.column("delivery_id")?.string,
            error: row.column("error")?.string,
            state: WebhookRecord.State(rawValue: row.column("state")?.string ?? "") ?? .complete
        )
    }

    /// Heads as JSON `[["Name","value"],…]`: order, repeats and case kept.
    /// `[["Name","value"],…]`, written directly: this runs twice per webhook
    /// on the capture path, where Foundation's `JSONSerialization` (boxing
    /// every string into `Any`) cost a tenth of the client's CPU under load.
    static func encode(_ headers: [HeaderField]) -> String {
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(headers.reduce(2) { $0 + $1.name.utf8.count + $1.value.utf8.count + 8 })
        for (index, header) in headers.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "["))
            Self.appendJSONString(header.name, to: &out)
            out.append(UInt8(ascii: ","))
            Self.appendJSONString(header.value, to: &out)
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// A JSON string literal (RFC 8259 §7): quotes, backslashes and control
    /// characters escaped, everything else as its UTF-8 bytes.
    static func appendJSONString(_ text: String, to out: inout [UInt8]) {
        let hex = Self.hexDigits
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case 0..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func decode(_ text: String?) -> [HeaderField] {
        guard let data = text?.data(using: .utf8),
            let pairs = (try? JSONSerialization.jsonObject(with: data)) as? [[String]]
        else { return [] }
        return pairs.compactMap { $0.count == 2 ? HeaderField($0[0], $0[1]) : nil }
    }
}

extension SQLiteConnection {
    /// Runs one statement to the end even when the calling task is
    /// cancelled (a sender leaving must not roll back a batch).
    fileprivate func run(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        let future: EventLoopFuture<[SQLiteRow]> = self.query(sql, binds)
        return try await future.get()
    }
}

extension CapturedBody {
    /// A body read with its bytes gets its digest (the capture stores none for a whole body); a
    /// summary's body has no bytes to hash.
    fileprivate func withDigestIf(_ bodies: Bool) -> CapturedBody {
        bodies ? self.withDigest() : self
    }
}
