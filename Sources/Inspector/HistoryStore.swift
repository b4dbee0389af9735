import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO

/// The history on disk: one SQLite file (`inspector.sqlite` in the client's
/// state dir, WAL mode), one row per webhook, bounded by count and bytes with
/// the oldest evicted first (docs/inspector.md, "History"). Bodies of 16 KiB
/// and more are kept in a ``BodyLog`` beside it, their rows holding where.
///
/// Only ``HistoryWriter`` writes; the API reads. Both go through this actor,
/// which owns the one connection, and take turns on it: a batch's transaction
/// spans several statements, and a read that ran between them would see the
/// batch before its commit (see "Turns" below).
actor HistoryStore {
    static let fileName = "inspector.sqlite"

    private let connection: SQLiteConnection
    private let threadPool: NIOThreadPool
    private let bodyLog: BodyLog
    let limits: HistoryLimits
    /// Every row's id and stored bytes, oldest first, so the bounds are
    /// checked without scanning the table on each write.
    private var order: [String] = []
    private var sizes: [String: Int] = [:]
    private var totalBytes = 0
    /// The body-log segments each row's bodies lie in (rows with a logged body only), and how
    /// many bodies of live rows each segment holds: a segment is deleted when that reaches zero.
    private var segmentsOf: [String: [Int]] = [:]
    private var liveBodies: [Int: Int] = [:]
    /// Reads under way, whether a batch is being written, batches waiting for their turn, and
    /// whoever waits for one.
    private var readers = 0
    private var writing = false
    private var writersWaiting = 0
    private var waitingForTurn: [CheckedContinuation<Void, Never>] = []

    private init(connection: SQLiteConnection, threadPool: NIOThreadPool, bodyLog: BodyLog, limits: HistoryLimits) {
        self.connection = connection
        self.threadPool = threadPool
        self.bodyLog = bodyLog
        self.limits = limits
    }

    /// A segment holds about a sixteenth of the byte bound (1–16 MiB), so the
    /// evicted bodies still on disk stay a small share of it.
    static func segmentLimit(for limits: HistoryLimits) -> Int {
        min(16 << 20, max(1 << 20, limits.maxBytes / 16))
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
        let rows = try await self.connection.run(
            "SELECT id, stored_bytes, request_body_segment, response_body_segment FROM webhooks ORDER BY seq ASC"
        )
        for row in rows {
            guard let id = row.column("id")?.string else { continue }
            let size = row.column("stored_bytes")?.integer ?? 0
            self.order.append(id)
            self.sizes[id] = size
            self.totalBytes += size
            let segments = [row.column("request_body_segment")?.integer, row.column("response_body_segment")?.integer]
                .compactMap { $0 }
            if !segments.isEmpty {
                self.segmentsOf[id] = segments
                for segment in segments { self.liveBodies[segment, default: 0] += 1 }
            }
        }
        // Segments no row refers to: bodies of rows evicted or never committed before a crash.
        let unreferenced = self.bodyLog.segmentsAtOpen.filter { self.liveBodies[$0] == nil }
        if !unreferenced.isEmpty {
            let log = self.bodyLog
            try await self.threadPool.runIfActive { log.remove(segments: unreferenced) }
        }
    }

    /// The columns that say where a logged body lies, added to a history
    /// created before the body log (its rows keep their bodies inline).
    private static let locationColumns = ["request", "response"].flatMap { side in
        ["segment", "offset", "length"].map { "\(side)_body_\($0)" }
    }

    private static func addLocationColumns(to connection: SQLiteConnection) async throws {
        let present = Set(try await connection.run("PRAGMA table_info(webhooks)").compactMap { $0.column("name")?.string })
        for column in Self.locationColumns where !present.contains(column) {
            _ = try await connection.run("ALTER TABLE webhooks ADD COLUMN \(column) INTEGER")
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
            _ = try await connection.run("PRAGMA journal_mode=WAL")
            // A multi-row upsert keeps a statement journal; on disk (the default past 64 KiB) each
            // batch of large bodies created, wrote and deleted a temporary file.
            _ = try await connection.run("PRAGMA temp_store=MEMORY")
            // The history is a convenience, not a ledger: a power cut may lose
            // the last webhooks' rows but never corrupts the file (WAL).
            _ = try await connection.run("PRAGMA synchronous=NORMAL")
            _ = try await connection.run("PRAGMA busy_timeout=5000")
            // 8 MiB of page cache instead of 2: a flood's batch of a thousand rows (and the rows it
            // evicts) otherwise spills dirty pages to the WAL before its commit.
            _ = try await connection.run("PRAGMA cache_size=-8192")
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
            try await Self.addLocationColumns(to: connection)
        } catch {
            try? await connection.close()
            try? await threadPool.shutdownGracefully()
            throw error
        }
        let bodyLog: BodyLog
        do {
            let logDirectory = (directory as NSString).appendingPathComponent(BodyLog.directoryName)
            bodyLog = try await threadPool.runIfActive {
                try BodyLog(directory: logDirectory, segmentLimit: Self.segmentLimit(for: limits))
            }
        } catch {
            try? await connection.close()
            try? await threadPool.shutdownGracefully()
            throw error
        }
        let store = HistoryStore(connection: connection, threadPool: threadPool, bodyLog: bodyLog, limits: limits)
        do {
            try await store.loadTotals()
        } catch {
            await store.close()
            throw error
        }
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
        let log = self.bodyLog
        try? await self.threadPool.runIfActive { log.close() }
        try? await self.threadPool.shutdownGracefully()
    }

    /// Inserts or updates `records` in one transaction, then evicts the
    /// oldest rows beyond the bounds. Returns the ids evicted.
    /// `forgetting`: webhooks the writer dropped while the store was behind (``HistoryWriter``);
    /// the rows of those whose start was written go in the same transaction.
    @discardableResult
    func write(_ records: [WebhookRecord], forgetting: [String] = []) async throws -> [String] {
        guard !records.isEmpty || !forgetting.isEmpty else { return [] }
        await self.beginWrite()
        defer { self.endWrite() }
        // Large bodies go to the log first, outside the transaction: if it then fails, they are
        // bytes no row refers to, removed with their segment.
        let locations = try await self.logBodies(of: records)
        _ = try await self.connection.run("BEGIN IMMEDIATE")
        do {
            var order = self.order
            var sizes = self.sizes
            var totalBytes = self.totalBytes
            // A webhook dropped while waiting whose end arrived afterwards is written, not removed.
            let written = Set(records.map(\.id))
            let stale = forgetting.filter { sizes[$0] != nil && !written.contains($0) }
            if !stale.isEmpty {
                for id in stale { totalBytes -= sizes.removeValue(forKey: id) ?? 0 }
                let gone = Set(stale)
                order.removeAll { gone.contains($0) }
            }
            // One statement per few hundred rows: each statement is a hop to
            // SQLite's thread and back, which costs more than the row itself.
            for start in stride(from: 0, to: records.count, by: Self.rowsPerStatement) {
                let rows = start..<min(start + Self.rowsPerStatement, records.count)
                _ = try await self.connection.run(
                    Self.upsert(rows: rows.count),
                    rows.flatMap { Self.binds(records[$0], locations: locations[$0]) }
                )
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
            // Oldest first, taken off the front once: one `removeFirst()` per row shifted the whole
            // list each time, a million moves per batch of a full history under a flood.
            var evictCount = 0
            while evictCount < order.count, order.count - evictCount > self.limits.maxWebhooks || totalBytes > self.limits.maxBytes {
                totalBytes -= sizes.removeValue(forKey: order[evictCount]) ?? 0
                evictCount += 1
            }
            let evicted = Array(order[..<evictCount])
            order.removeFirst(evictCount)
            let removed = stale + evicted
            for start in stride(from: 0, to: removed.count, by: Self.rowsPerStatement) {
                let ids = removed[start..<min(start + Self.rowsPerStatement, removed.count)]
                let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
                _ = try await self.connection.run("DELETE FROM webhooks WHERE id IN (\(marks))", ids.map { .text($0) })
            }
            _ = try await self.connection.run("COMMIT")
            (self.order, self.sizes, self.totalBytes) = (order, sizes, totalBytes)
            await self.countBodies(records: records, locations: locations, removed: removed)
            return evicted
        } catch {
            _ = try? await self.connection.run("ROLLBACK")
            throw error
        }
    }

    /// Where each record's request and response bodies went in the log (nil: kept in the row).
    private typealias Locations = (request: BodyLocation?, response: BodyLocation?)

    private func logBodies(of records: [WebhookRecord]) async throws -> [Locations] {
        var locations = [Locations](repeating: (nil, nil), count: records.count)
        // Each body that goes to the log, and whose it is (record index, response or request).
        var bodies: [ByteBuffer] = []
        var owners: [(record: Int, response: Bool)] = []
        for (index, record) in records.enumerated() {
            for (body, response) in [(record.requestBody, false), (record.responseBody, true)] {
                guard let body, body.bytes.readableBytes >= BodyLog.minimumLength else { continue }
                bodies.append(body.bytes)
                owners.append((index, response))
            }
        }
        guard !bodies.isEmpty else { return locations }
        let log = self.bodyLog
        let toLog = bodies
        let logged = try await self.threadPool.runIfActive { try log.append(toLog) }
        for (owner, location) in zip(owners, logged) {
            if owner.response { locations[owner.record].response = location } else { locations[owner.record].request = location }
        }
        return locations
    }

    /// After a commit: counts the logged bodies of the rows written and removed, and deletes the
    /// segments left with none. A segment that cannot be deleted now is deleted at the next open.
    private func countBodies(records: [WebhookRecord], locations: [Locations], removed: [String]) async {
        for (record, location) in zip(records, locations) {
            for segment in self.segmentsOf.removeValue(forKey: record.id) ?? [] { self.liveBodies[segment, default: 0] -= 1 }
            let segments = [location.request?.segment, location.response?.segment].compactMap { $0 }
            guard !segments.isEmpty else { continue }
            self.segmentsOf[record.id] = segments
            for segment in segments { self.liveBodies[segment, default: 0] += 1 }
        }
        for id in removed {
            for segment in self.segmentsOf.removeValue(forKey: id) ?? [] { self.liveBodies[segment, default: 0] -= 1 }
        }
        let current = self.bodyLog.currentSegment
        let dead = self.liveBodies.filter { $0.value <= 0 && $0.key != current }.map(\.key)
        guard !dead.isEmpty else { return }
        for segment in dead { self.liveBodies.removeValue(forKey: segment) }
        let log = self.bodyLog
        try? await self.threadPool.runIfActive { log.remove(segments: dead) }
    }

    /// Newest first, at most `limit`, older than `before` when given
    /// (summaries: the bodies are not read).
    func list(limit: Int, before: String? = nil) async throws -> [WebhookRecord] {
        await self.beginRead()
        defer { self.endRead() }
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
        await self.beginRead()
        defer { self.endRead() }
        return try await self.connection.run("SELECT id FROM webhooks ORDER BY seq ASC").compactMap { $0.column("id")?.string }
    }

    /// One webhook with its heads and captured bodies.
    func record(id: String) async throws -> WebhookRecord? {
        // The row and its logged bodies in one turn: a batch between them could evict the row and
        // delete its segment.
        await self.beginRead()
        defer { self.endRead() }
        guard let row = try await self.connection.run("SELECT * FROM webhooks WHERE id = ?1", [.text(id)]).first else {
            return nil
        }
        let request = Self.location(in: row, side: "request")
        let response = Self.location(in: row, side: "response")
        guard request != nil || response != nil else { return Self.record(from: row, bodies: true) }
        let log = self.bodyLog
        let (requestBytes, responseBytes) = try await self.threadPool.runIfActive {
            (request.map { log.read($0) }, response.map { log.read($0) })
        }
        return Self.record(from: row, bodies: true, requestBytes: requestBytes, responseBytes: responseBytes)
    }

    private static func location(in row: SQLiteRow, side: String) -> BodyLocation? {
        guard let segment = row.column("\(side)_body_segment")?.integer,
            let offset = row.column("\(side)_body_offset")?.integer,
            let length = row.column("\(side)_body_length")?.integer
        else { return nil }
        return BodyLocation(segment: segment, offset: offset, length: length)
    }

    /// How many webhooks and stored bytes the history holds.
    func totals() async throws -> (count: Int, bytes: Int) {
        await self.beginRead()
        defer { self.endRead() }
        let row = try await self.connection.run("SELECT COUNT(*) AS n, COALESCE(SUM(stored_bytes), 0) AS bytes FROM webhooks").first
        return (row?.column("n")?.integer ?? 0, row?.column("bytes")?.integer ?? 0)
    }

    // MARK: Turns

    /// Waits until no batch is being written or waiting; reads share their turn with other reads.
    /// A waiting batch goes before later reads, so a page that keeps reading cannot hold the
    /// history's writes back.
    private func beginRead() async {
        while self.writing || self.writersWaiting > 0 { await self.waitForTurn() }
        self.readers += 1
    }

    private func endRead() {
        self.readers -= 1
        if self.readers == 0 { self.wakeWaiting() }
    }

    /// Waits until no read or other batch is under way.
    private func beginWrite() async {
        self.writersWaiting += 1
        while self.writing || self.readers > 0 { await self.waitForTurn() }
        self.writersWaiting -= 1
        self.writing = true
    }

    private func endWrite() {
        self.writing = false
        self.wakeWaiting()
    }

    private func waitForTurn() async {
        await withCheckedContinuation { self.waitingForTurn.append($0) }
    }

    /// Everyone waiting looks again; those whose turn it is not wait again.
    private func wakeWaiting() {
        let waiting = self.waitingForTurn
        self.waitingForTurn.removeAll()
        for continuation in waiting { continuation.resume() }
    }

    private static let summaryColumns =
        "id, time, method, path, request_headers, request_size, request_sha256, status, response_size, response_sha256, duration_ms, replay_of, delivery_id, error, state"

    /// Rows per statement: 25 parameters each stays far below SQLite's
    /// 32,766-parameter limit.
    static let rowsPerStatement = 500

    /// An upsert of `rows` rows (the writer has already kept only the newest
    /// version of each id in a batch).
    private static func upsert(rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: 25).joined(separator: ",") + ")"
        return Self.upsertHead + Array(repeating: row, count: rows).joined(separator: ",") + Self.upsertTail
    }

    private static let upsertHead = """
        INSERT INTO webhooks (id, time, method, path, request_headers, request_body, request_size, request_sha256,
            status, response_headers, response_body, response_size, response_sha256, duration_ms, replay_of,
            delivery_id, error, state, stored_bytes, request_body_segment, request_body_offset, request_body_length,
            response_body_segment, response_body_offset, response_body_length)
        VALUES\u{20}
        """

    private static let upsertTail = """

        ON CONFLICT(id) DO UPDATE SET
            request_headers = excluded.request_headers, request_body = excluded.request_body,
            request_size = excluded.request_size, request_sha256 = excluded.request_sha256,
            status = excluded.status, response_headers = excluded.response_headers,
            response_body = excluded.response_body, response_size = excluded.response_size,
            response_sha256 = excluded.response_sha256, duration_ms = excluded.duration_ms,
            error = excluded.error, state = excluded.state, stored_bytes = excluded.stored_bytes,
            request_body_segment = excluded.request_body_segment, request_body_offset = excluded.request_body_offset,
            request_body_length = excluded.request_body_length, response_body_segment = excluded.response_body_segment,
            response_body_offset = excluded.response_body_offset, response_body_length = excluded.response_body_length
        """

    private static func binds(_ record: WebhookRecord, locations: Locations) -> [SQLiteData] {
        // A logged body's row keeps an empty blob and where the bytes lie.
        let empty = ByteBuffer()
        return [
            .text(record.id),
            .integer(Int(record.time)),
            .text(record.method),
            .text(record.path),
            .text(Self.encode(record.requestHeaders)),
            .blob(locations.request == nil ? record.requestBody.bytes : empty),
            .integer(record.requestBody.size),
            .text(record.requestBody.sha256),
            record.status.map { .integer($0) } ?? .null,
            record.responseHeaders.map { .text(Self.encode($0)) } ?? .null,
            record.responseBody.map { .blob(locations.response == nil ? $0.bytes : empty) } ?? .null,
            record.responseBody.map { .integer($0.size) } ?? .null,
            record.responseBody.map { .text($0.sha256) } ?? .null,
            record.durationMilliseconds.map { .float($0) } ?? .null,
            record.replayOf.map { .text($0) } ?? .null,
            record.deliveryID.map { .text($0) } ?? .null,
            record.error.map { .text($0) } ?? .null,
            .text(record.state.rawValue),
            .integer(record.storedBytes),
        ] + Self.binds(locations.request) + Self.binds(locations.response)
    }

    private static func binds(_ location: BodyLocation?) -> [SQLiteData] {
        guard let location else { return [.null, .null, .null] }
        return [.integer(location.segment), .integer(location.offset), .integer(location.length)]
    }

    /// `requestBytes`, `responseBytes`: a body read from the log, in place of the row's blob.
    private static func record(
        from row: SQLiteRow,
        bodies: Bool,
        requestBytes logRequest: ByteBuffer? = nil,
        responseBytes logResponse: ByteBuffer? = nil
    ) -> WebhookRecord? {
        guard let id = row.column("id")?.string, let time = row.column("time")?.integer,
            let method = row.column("method")?.string, let path = row.column("path")?.string
        else { return nil }
        let requestBytes = bodies ? (logRequest ?? row.column("request_body")?.blob ?? ByteBuffer()) : ByteBuffer()
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
            let bytes = bodies ? (logResponse ?? row.column("response_body")?.blob ?? ByteBuffer()) : ByteBuffer()
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
