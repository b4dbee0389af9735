import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@testable import Inspector

/// The history against a real SQLite file in a fresh directory.
@Suite struct HistoryStoreTests {
    static func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wow-inspector-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func record(_ index: Int, body: String = "{}", limit: Int = 1 << 20) -> WebhookRecord {
        var capture = BodyCapture(limit: limit)
        capture.append(ByteBuffer(string: body))
        return WebhookRecord(
            id: "webhook-\(index)",
            time: 1_700_000_000_000 + Int64(index),
            method: "POST",
            path: "/hook/\(index)?x=1",
            requestHeaders: [HeaderField("Content-Type", "application/json"), HeaderField("X-Repeat", "a"), HeaderField("x-repeat", "b")],
            requestBody: capture.finish(),
            status: 200,
            responseHeaders: [HeaderField("Content-Length", "2")],
            responseBody: BodyCapture(limit: limit).finish(),
            durationMilliseconds: 1.5,
            state: .complete
        )
    }

    static let logger = Logger(label: "test")

    @Test func aRecordReadBackHasItsHeadsInOrderWithRepeatsAndCase() async throws {
        let store = try await HistoryStore.open(directory: try Self.directory(), limits: HistoryLimits(), logger: Self.logger)
        try await store.write([Self.record(1, body: #"{"a":1}"#)])
        let record = try #require(try await store.record(id: "webhook-1"))
        #expect(
            record.requestHeaders == [
                HeaderField("Content-Type", "application/json"), HeaderField("X-Repeat", "a"), HeaderField("x-repeat", "b"),
            ]
        )
        #expect(String(buffer: record.requestBody.bytes) == #"{"a":1}"#)
        #expect(record.path == "/hook/1?x=1")
        #expect(record.status == 200)
        await store.close()
    }

    @Test func theHistorySurvivesClosingAndReopeningTheFile() async throws {
        let directory = try Self.directory()
        let first = try await HistoryStore.open(directory: directory, limits: HistoryLimits(), logger: Self.logger)
        try await first.write([Self.record(1), Self.record(2)])
        await first.close()
        let second = try await HistoryStore.open(directory: directory, limits: HistoryLimits(), logger: Self.logger)
        #expect(try await second.list(limit: 10).map(\.id) == ["webhook-2", "webhook-1"])
        #expect(FileManager.default.fileExists(atPath: directory + "/inspector.sqlite"))
        await second.close()
    }

    @Test func theCountBoundEvictsTheOldestFirst() async throws {
        let store = try await HistoryStore.open(
            directory: try Self.directory(),
            limits: HistoryLimits(maxWebhooks: 3),
            logger: Self.logger
        )
        for index in 1...5 { try await store.write([Self.record(index)]) }
        #expect(try await store.list(limit: 10).map(\.id) == ["webhook-5", "webhook-4", "webhook-3"])
        await store.close()
    }

    @Test func theByteBoundEvictsTheOldestFirst() async throws {
        let body = String(repeating: "x", count: 10_000)
        let one = Self.record(0, body: body).storedBytes
        // Room for two and a half records.
        let store = try await HistoryStore.open(
            directory: try Self.directory(),
            limits: HistoryLimits(maxBytes: one * 5 / 2),
            logger: Self.logger
        )
        var evicted: [String] = []
        for index in 1...4 { evicted += try await store.write([Self.record(index, body: body)]) }
        #expect(try await store.list(limit: 10).map(\.id) == ["webhook-4", "webhook-3"])
        #expect(evicted == ["webhook-1", "webhook-2"])
        let totals = try await store.totals()
        #expect(totals.bytes <= one * 5 / 2)
        await store.close()
    }

    @Test func aNewerVersionOfAWebhookReplacesItsRowAndKeepsItsPlace() async throws {
        let store = try await HistoryStore.open(directory: try Self.directory(), limits: HistoryLimits(), logger: Self.logger)
        var started = Self.record(1)
        started.state = .inProgress
        started.status = nil
        started.responseBody = nil
        try await store.write([started, Self.record(2)])
        try await store.write([Self.record(1, body: "done")])
        #expect(try await store.list(limit: 10).map(\.id) == ["webhook-2", "webhook-1"])
        let record = try #require(try await store.record(id: "webhook-1"))
        #expect(record.state == .complete)
        #expect(String(buffer: record.requestBody.bytes) == "done")
        await store.close()
    }

    @Test func listingPagesBackwardsFromAnID() async throws {
        let store = try await HistoryStore.open(directory: try Self.directory(), limits: HistoryLimits(), logger: Self.logger)
        try await store.write((1...5).map { Self.record($0) })
        #expect(try await store.list(limit: 2, before: "webhook-4").map(\.id) == ["webhook-3", "webhook-2"])
        await store.close()
    }

    @Test func theCaptureCommitsEachWebhookAndAnnouncesItAfterward() async throws {
        let store = try await HistoryStore.open(directory: try Self.directory(), limits: HistoryLimits(), logger: Self.logger)
        let events = EventHub()
        let (_, stream) = events.subscribe()
        let writer = HistoryWriter(store: store, events: events, logger: Self.logger)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await writer.run() }
            let observer = CaptureObserver(writer: writer, captureLimit: 4)
            let exchange = observer.webhookStarted(ObservedRequestHead(method: "POST", path: "/x", headers: [HeaderField("A", "1")]))
            exchange.requestBody(ByteBuffer(string: "hello "))
            exchange.requestBody(ByteBuffer(string: "world"))
            exchange.responseHead(status: 201, headers: [HeaderField("B", "2")])
            exchange.responseBody(ByteBuffer(string: "ok"))
            exchange.finished(error: nil)
            await writer.flush()
            let record = try #require(try await store.record(id: exchange.id))
            #expect(record.state == .complete)
            #expect(record.status == 201)
            #expect(String(buffer: record.requestBody.bytes) == "hell")
            #expect(record.requestBody.size == 11 && record.requestBody.truncated)
            var iterator = stream.makeAsyncIterator()
            let event = try #require(await iterator.next())
            #expect(event.hasPrefix("event: webhook\ndata: {"))
            #expect(event.contains(exchange.id))
            writer.finish()
        }
        await store.close()
    }

    /// One webhook through the capture: started, `body` sent and answered, ended.
    static func capture(_ observer: CaptureObserver, body: String) -> any WebhookExchangeObserver {
        let exchange = observer.webhookStarted(ObservedRequestHead(method: "POST", path: "/x", headers: []))
        exchange.requestBody(ByteBuffer(string: body))
        exchange.responseHead(status: 200, headers: [])
        exchange.finished(error: nil)
        return exchange
    }

    @Test func aWriterThatFellBehindKeepsTheNewestAndLeavesNoRowInProgress() async throws {
        let store = try await HistoryStore.open(directory: try Self.directory(), limits: HistoryLimits(), logger: Self.logger)
        // Room for about 10,000 bytes of ended exchanges, cut to 5,000: six of these (1,000-byte
        // bodies, 512 more each), then three.
        let writer = HistoryWriter(store: store, events: EventHub(), logger: Self.logger, pendingByteLimit: 10_000)
        let observer = CaptureObserver(writer: writer, captureLimit: 1 << 20)
        let body = String(repeating: "x", count: 1_000)
        // Webhook 0 started and a batch wrote its start; then the store fell behind (the writer did
        // not run) while its end and 19 more webhooks arrived.
        let first = try #require(observer.webhookStarted(ObservedRequestHead(method: "POST", path: "/x", headers: [])) as? CapturedExchange)
        try await store.write([first.snapshot().record])
        _ = first.startWritten()
        first.requestBody(ByteBuffer(string: body))
        first.finished(error: nil)
        let ids = [first.id] + (1..<20).map { _ in Self.capture(observer, body: body).id }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await writer.run() }
            await writer.flush()
            writer.finish()
        }
        let kept = try await store.list(limit: 100).map(\.id)
        // The history had room for all of them, but the waiting ones were cut to the newest within
        // half the limit whenever they passed it; webhook 0's row did not stay "in progress".
        #expect(kept.first == ids.last)
        #expect(kept.count < 20)
        #expect(kept == Array(ids.suffix(kept.count).reversed()))
        #expect(try await store.record(id: first.id) == nil)
        await store.close()
    }

    @Test func aBatchLargerThanTheHistoryWritesOnlyWhatTheHistoryKeeps() async throws {
        let directory = try Self.directory()
        let store = try await HistoryStore.open(directory: directory, limits: HistoryLimits(maxWebhooks: 5), logger: Self.logger)
        let writer = HistoryWriter(store: store, events: EventHub(), logger: Self.logger)
        let observer = CaptureObserver(writer: writer, captureLimit: 1 << 20)
        // Eight webhooks wait (fewer than twice the bound, so none is cut as they arrive), each
        // with a body that goes to the body log if it is written at all.
        let body = String(repeating: "y", count: BodyLog.minimumLength)
        let ids = (1...8).map { _ in Self.capture(observer, body: body).id }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await writer.run() }
            await writer.flush()
            writer.finish()
        }
        #expect(try await store.list(limit: 100).map(\.id) == Array(ids.suffix(5).reversed()))
        // The three oldest were never written: the log holds five bodies, not eight.
        #expect(BodyLogTests.segmentBytes(directory) == 5 * BodyLog.minimumLength)
        await store.close()
    }

    @Test func aWebhookStillRunningIsWrittenInProgressThenComplete() async throws {
        let store = try await HistoryStore.open(directory: try Self.directory(), limits: HistoryLimits(), logger: Self.logger)
        let writer = HistoryWriter(store: store, events: EventHub(), logger: Self.logger)
        let observer = CaptureObserver(writer: writer, captureLimit: 1 << 20)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await writer.run() }
            let exchange = observer.webhookStarted(ObservedRequestHead(method: "POST", path: "/slow", headers: []))
            exchange.requestBody(ByteBuffer(string: "partial"))
            await writer.flush()
            #expect(try await store.record(id: exchange.id)?.state == .inProgress)
            // Its end, with nothing else going on, is written without another webhook to wake the writer.
            exchange.responseHead(status: 202, headers: [])
            exchange.finished(error: nil)
            await writer.flush()
            let record = try #require(try await store.record(id: exchange.id))
            #expect(record.state == .complete && record.status == 202)
            #expect(String(buffer: record.requestBody.bytes) == "partial")
            // A second flush writes nothing new and leaves it complete.
            await writer.flush()
            #expect(try await store.list(limit: 10).map(\.id) == [exchange.id])
            writer.finish()
        }
        await store.close()
    }

    /// Reads share the writer's one connection. One that ran between a batch's statements saw the
    /// batch before its commit: a row shown complete that a crash then lost, and, before the
    /// eviction, more rows than the bound allows. Each read here must see a committed state.
    @Test func aReadNeverSeesABatchBeforeItsCommit() async throws {
        let store = try await HistoryStore.open(directory: try Self.directory(), limits: HistoryLimits(maxWebhooks: 40), logger: Self.logger)
        try await store.write((0..<40).map { Self.record($0) })
        let done = Flag()
        let counts = try await withThrowingTaskGroup(of: [Int].self) { group in
            group.addTask {
                defer { done.set() }
                for batch in 1...25 { try await store.write((0..<40).map { Self.record(batch * 40 + $0) }) }
                return []
            }
            group.addTask {
                var counts: [Int] = []
                while !done.isSet {
                    counts.append(try await store.totals().count)
                    counts.append(try await store.list(limit: 100).count)
                }
                return counts
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(!counts.isEmpty)
        #expect(counts.allSatisfy { $0 == 40 }, "counts seen: \(Set(counts).sorted())")
        await store.close()
    }
}

/// Set once, read from another task.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { self.value.store(true, ordering: .releasing) }
    var isSet: Bool { self.value.load(ordering: .acquiring) }
}
