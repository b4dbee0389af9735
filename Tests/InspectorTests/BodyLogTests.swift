import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO
import Testing

@testable import Inspector

/// Large bodies in the history's body log, through a real ``HistoryStore`` on a real directory.
@Suite struct BodyLogTests {
    static let logger = Logger(label: "test")

    /// Random letters, made once: every body is a slice of them.
    static let letters = String((0..<300_000).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })

    /// `count` bytes that differ from one body to the next (each starts at its own place in
    /// ``letters``), so a body read from the wrong place cannot pass.
    static func body(_ seed: Int, count: Int) -> String {
        let utf8 = Self.letters.utf8
        let start = utf8.index(utf8.startIndex, offsetBy: (seed * 7_919) % (utf8.count - count))
        return String(Self.letters[start..<utf8.index(start, offsetBy: count)])
    }

    static func record(_ index: Int, request: String, response: String) -> WebhookRecord {
        var record = HistoryStoreTests.record(index, body: request)
        var capture = BodyCapture(limit: 1 << 20)
        capture.append(ByteBuffer(string: response))
        record.responseBody = capture.finish()
        return record
    }

    static func segments(_ directory: String) -> [String] {
        let log = directory + "/" + BodyLog.directoryName
        return ((try? FileManager.default.contentsOfDirectory(atPath: log)) ?? []).sorted()
    }

    static func segmentBytes(_ directory: String) -> Int {
        Self.segments(directory).reduce(0) { total, name in
            let path = directory + "/" + BodyLog.directoryName + "/" + name
            return total + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        }
    }

    @Test func largeBodiesGoToTheLogAndReadBackByteForByte() async throws {
        let directory = try HistoryStoreTests.directory()
        let store = try await HistoryStore.open(directory: directory, limits: HistoryLimits(), logger: Self.logger)
        let request = Self.body(1, count: 100_000)
        let response = Self.body(2, count: BodyLog.minimumLength)
        try await store.write([Self.record(1, request: request, response: response), HistoryStoreTests.record(2, body: "{}")])
        let record = try #require(try await store.record(id: "webhook-1"))
        #expect(String(buffer: record.requestBody.bytes) == request)
        #expect(String(buffer: record.responseBody?.bytes ?? ByteBuffer()) == response)
        #expect(!record.requestBody.truncated)
        #expect(!record.requestBody.sha256.isEmpty)
        #expect(String(buffer: try #require(try await store.record(id: "webhook-2")).requestBody.bytes) == "{}")
        // Both large bodies were written once, to one segment; the small one stayed in its row.
        #expect(Self.segments(directory) == ["00000001.bodies"])
        #expect(Self.segmentBytes(directory) == request.utf8.count + response.utf8.count)
        await store.close()
    }

    @Test func evictionDeletesSegmentsWithNoLiveBodyAndKeepsTheRest() async throws {
        let directory = try HistoryStoreTests.directory()
        // 2 MiB of history in 1 MiB segments: about five 200 KiB webhooks, ten per segment.
        let limits = HistoryLimits(maxBytes: 2 << 20)
        #expect(HistoryStore.segmentLimit(for: limits) == 1 << 20)
        let store = try await HistoryStore.open(directory: directory, limits: limits, logger: Self.logger)
        for index in 1...60 {
            try await store.write([Self.record(index, request: Self.body(index, count: 100_000), response: Self.body(index + 1_000, count: 100_000))])
        }
        let kept = try await store.list(limit: 100).map(\.id)
        #expect(kept.count >= 9 && kept.count <= 11)
        #expect(kept.first == "webhook-60")
        // What stays on disk: the live bodies plus at most the segment they began in and the one
        // taking bodies now.
        #expect(Self.segmentBytes(directory) <= (2 << 20) + 2 * (1 << 20) + 200_000)
        #expect(Self.segments(directory).count <= 4)
        for id in kept {
            let index = Int(id.dropFirst("webhook-".count))!
            let record = try #require(try await store.record(id: id))
            #expect(String(buffer: record.requestBody.bytes) == Self.body(index, count: 100_000))
            #expect(String(buffer: record.responseBody?.bytes ?? ByteBuffer()) == Self.body(index + 1_000, count: 100_000))
        }
        await store.close()
    }

    @Test func bodiesSurviveAReopenAndAStraySegmentIsRemovedWithoutReuse() async throws {
        let directory = try HistoryStoreTests.directory()
        let first = try await HistoryStore.open(directory: directory, limits: HistoryLimits(), logger: Self.logger)
        try await first.write([Self.record(1, request: Self.body(1, count: 50_000), response: "ok")])
        await first.close()
        // A segment no row refers to, as after a crash between the log write and the commit.
        let stray = directory + "/" + BodyLog.directoryName + "/00000007.bodies"
        try Data(repeating: 0x41, count: 1_000).write(to: URL(fileURLWithPath: stray))

        let second = try await HistoryStore.open(directory: directory, limits: HistoryLimits(), logger: Self.logger)
        #expect(Self.segments(directory) == ["00000001.bodies"])
        try await second.write([Self.record(2, request: Self.body(2, count: 50_000), response: "ok")])
        // The new body went to a new segment after every number seen, not over the old one.
        #expect(Self.segments(directory) == ["00000001.bodies", "00000008.bodies"])
        #expect(String(buffer: try #require(try await second.record(id: "webhook-1")).requestBody.bytes) == Self.body(1, count: 50_000))
        #expect(String(buffer: try #require(try await second.record(id: "webhook-2")).requestBody.bytes) == Self.body(2, count: 50_000))
        await second.close()
    }

    @Test func aBodyWhoseSegmentIsGoneReadsAsTruncatedNotAsAnError() async throws {
        let directory = try HistoryStoreTests.directory()
        let store = try await HistoryStore.open(directory: directory, limits: HistoryLimits(), logger: Self.logger)
        try await store.write([Self.record(1, request: Self.body(1, count: 50_000), response: "ok")])
        try FileManager.default.removeItem(atPath: directory + "/" + BodyLog.directoryName + "/00000001.bodies")
        let record = try #require(try await store.record(id: "webhook-1"))
        #expect(record.requestBody.bytes.readableBytes == 0)
        #expect(record.requestBody.size == 50_000 && record.requestBody.truncated)
        #expect(String(buffer: record.responseBody?.bytes ?? ByteBuffer()) == "ok")
        await store.close()
    }

    @Test func aHistoryFromBeforeTheLogKeepsItsInlineBodiesAndLogsNewOnes() async throws {
        let directory = try HistoryStoreTests.directory()
        // The table as the previous version created it, with one webhook whose body is inline.
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        let connection = try await SQLiteConnection.open(
            storage: .file(path: directory + "/" + HistoryStore.fileName),
            threadPool: threadPool,
            logger: Self.logger,
            on: MultiThreadedEventLoopGroup.singleton.any()
        )
        _ = try await connection.query(
            """
            CREATE TABLE webhooks (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, time INTEGER NOT NULL,
                method TEXT NOT NULL, path TEXT NOT NULL, request_headers TEXT NOT NULL, request_body BLOB NOT NULL,
                request_size INTEGER NOT NULL, request_sha256 TEXT NOT NULL, status INTEGER, response_headers TEXT,
                response_body BLOB, response_size INTEGER, response_sha256 TEXT, duration_ms REAL, replay_of TEXT,
                delivery_id TEXT, error TEXT, state TEXT NOT NULL, stored_bytes INTEGER NOT NULL
            )
            """
        )
        let old = Self.body(9, count: 40_000)
        _ = try await connection.query(
            """
            INSERT INTO webhooks (id, time, method, path, request_headers, request_body, request_size, request_sha256,
                state, stored_bytes) VALUES ('old', 1, 'POST', '/old', '[]', ?1, 40000, '', 'complete', 40256)
            """,
            [.blob(ByteBuffer(string: old))]
        )
        try await connection.close()
        try await threadPool.shutdownGracefully()

        let store = try await HistoryStore.open(directory: directory, limits: HistoryLimits(), logger: Self.logger)
        #expect(String(buffer: try #require(try await store.record(id: "old")).requestBody.bytes) == old)
        try await store.write([Self.record(1, request: Self.body(1, count: 50_000), response: "ok")])
        #expect(String(buffer: try #require(try await store.record(id: "webhook-1")).requestBody.bytes) == Self.body(1, count: 50_000))
        #expect(Self.segments(directory) == ["00000001.bodies"])
        #expect(try await store.list(limit: 10).map(\.id) == ["webhook-1", "old"])
        await store.close()
    }
}
