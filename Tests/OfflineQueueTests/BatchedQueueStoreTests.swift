import Foundation
import NIOCore
import PostgresTestSupport
import Testing

@testable import OfflineQueue

/// The rules of the faster paths (docs/offline-queue.md, "Storage"): the
/// limit check folded into the admission, claims of several webhooks at
/// once, released claims, removals of several webhooks, and a small body
/// written with its commit. One test at a time: run beside the others, this
/// suite's stores (two database clients each with PostgreSQL) grew the
/// process enough to disturb ``LargeBodyStoreTests``' measure of resident
/// memory.
@Suite(.serialized)
struct BatchedQueueStoreTests {
    /// Begins a 100-byte ingest on each of `channels` at once; the admitted ones, while the others
    /// were refused with `refusal` (any other error fails the test).
    static func beginAtOnce(
        _ store: any OfflineQueueStore,
        channels: [String],
        refusal: OfflineQueueRefusal
    ) async throws -> [any OfflineQueueIngest] {
        try await withThrowingTaskGroup(of: (any OfflineQueueIngest)?.self) { group in
            for channel in channels {
                group.addTask {
                    do {
                        return try await store.beginIngest(channelID: channel, head: Sample.head(), declaredLength: 100)
                    } catch let refused as OfflineQueueRefusal where refused == refusal {
                        return nil
                    }
                }
            }
            return try await group.reduce(into: [any OfflineQueueIngest]()) { admitted, ingest in
                if let ingest { admitted.append(ingest) }
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentBeginsAtTheCountLimitAdmitExactlyWhatFits(_ backend: Backend) async throws {
        try await StoreHarness.with(backend, limits: OfflineQueueLimits(maxCountPerChannel: 5)) { _, store in
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(100))
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(100))
            // Sixteen begins at once for the three places left.
            let admitted = try await Self.beginAtOnce(store, channels: Array(repeating: "c1", count: 16), refusal: .channelCountLimit)
            #expect(admitted.count == 3)
            for ingest in admitted {
                try await ingest.append(Sample.body(100))
                _ = try await ingest.commit()
            }
            #expect(try await store.statistics().depth == 5)
            await #expect(throws: OfflineQueueRefusal.channelCountLimit) {
                _ = try await Sample.queue(store, channel: "c1", body: Sample.body(100))
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentBeginsOnManyChannelsAtTheServerLimitAdmitExactlyWhatFits(_ backend: Backend) async throws {
        try await StoreHarness.with(backend, limits: OfflineQueueLimits(maxTotalBytes: 1_000)) { _, store in
            // Sixteen channels at once for ten places of 100 bytes: the server-wide total is as
            // exact as a channel's limits (with PostgreSQL, one admission lock for all channels).
            // Three rounds, each emptied by delivery, since a race shows itself only sometimes.
            for _ in 0..<3 {
                let admitted = try await Self.beginAtOnce(store, channels: (0..<16).map { "c\($0)" }, refusal: .serverBytesLimit)
                #expect(admitted.count == 10)
                for ingest in admitted {
                    try await ingest.append(Sample.body(100))
                    _ = try await ingest.commit()
                }
                #expect(try await store.statistics().bytes == Int64(admitted.count * 100))
                for channel in 0..<16 {
                    let claimed = try await store.claim(channelID: "c\(channel)", owner: "r1", lease: .seconds(30), limit: 32)
                    try await store.markDelivered(ids: claimed.map(\.id))
                }
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func deliveredAbortedAndExpiredWebhooksGiveTheirRoomBack(_ backend: Backend) async throws {
        let limits = OfflineQueueLimits(maxCountPerChannel: 4, maxBytesPerChannel: 4_000, maxTotalBytes: 6_000)
        try await StoreHarness.with(backend, limits: limits) { harness, store in
            for _ in 0..<4 { _ = try await Sample.queue(store, channel: "c1", body: Sample.body(1_000)) }
            await #expect(throws: OfflineQueueRefusal.channelCountLimit) {
                _ = try await Sample.queue(store, channel: "c1", body: Sample.body(1))
            }
            await #expect(throws: OfflineQueueRefusal.serverBytesLimit) {
                _ = try await Sample.queue(store, channel: "c2", body: Sample.body(2_500))
            }
            let claimed = try await store.claim(channelID: "c1", owner: "r1", lease: .seconds(30), limit: 3)
            try await store.markDelivered(ids: claimed.map(\.id))
            // An aborted ingest and a chunked body whose reservation shrank
            // at its commit leave nothing counted behind.
            let aborted = try await store.beginIngest(channelID: "c1", head: Sample.head(), declaredLength: nil)
            try await aborted.append(Sample.body(500))
            await aborted.abort()
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(700), declare: false)
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(1_000))
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(1_000))
            await #expect(throws: OfflineQueueRefusal.channelCountLimit) {
                _ = try await Sample.queue(store, channel: "c1", body: Sample.body(1))
            }
            #expect(try await store.statistics().bytes == 3_700)
            #expect(try await store.expire(now: Date().addingTimeInterval(Double(harness.limits.maxAge.components.seconds) + 60)) == 4)
            for _ in 0..<4 { _ = try await Sample.queue(store, channel: "c1", body: Sample.body(1_000)) }
            #expect(try await store.statistics().depth == 4)
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentBatchClaimsNeverHandOneWebhookToTwoClaimers(_ backend: Backend) async throws {
        try await StoreHarness.withHarness(backend) { harness in
            // Two replicas on one database with PostgreSQL; one store for SQLite.
            let first = try await harness.open()
            let second = backend == .postgres ? try await harness.open() : first
            var queued: [String] = []
            for index in 0..<200 {
                queued.append(try await Sample.queue(index % 2 == 0 ? first : second, channel: "c1", body: Sample.body(100)).id)
            }
            let claims = try await withThrowingTaskGroup(of: [[String]].self) { group in
                for claimer in 0..<4 {
                    let store = claimer % 2 == 0 ? first : second
                    group.addTask {
                        var batches: [[String]] = []
                        while true {
                            let batch = try await store.claim(channelID: "c1", owner: "claimer-\(claimer)", lease: .seconds(60), limit: 7)
                            if batch.isEmpty { return batches }
                            batches.append(batch.map(\.id))
                        }
                    }
                }
                return try await group.reduce(into: [[String]]()) { $0 += $1 }
            }
            let all = claims.flatMap { $0 }
            #expect(all.count == 200)
            #expect(Set(all) == Set(queued))
            // Each batch is in arrival order.
            let position = Dictionary(uniqueKeysWithValues: queued.enumerated().map { ($1, $0) })
            for batch in claims { #expect(batch == batch.sorted { position[$0]! < position[$1]! }) }
            try await first.close()
            if backend == .postgres { try await second.close() }
        }
    }

    @Test(arguments: Backend.allCases)
    func aBatchClaimIsInArrivalOrderWithByteExactBodies(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            // Small (one chunk, sent with the commit), empty, and several chunks.
            let sizes = [1_024, 0, 16 * 1_024, 16 * 1_024 + 1, 200_000, 3]
            var queued: [QueuedWebhook] = []
            for (index, size) in sizes.enumerated() {
                queued.append(try await Sample.queue(store, channel: "c1", body: Sample.body(size, seed: UInt8(index))))
            }
            let claimed = try await store.claim(channelID: "c1", owner: "r1", lease: .seconds(30), limit: 32)
            #expect(claimed.map(\.id) == queued.map(\.id))
            #expect(claimed.map(\.bodyLength) == sizes.map(Int64.init))
            for (index, webhook) in claimed.enumerated() {
                #expect(try await Sample.readBody(store, id: webhook.id) == Sample.body(sizes[index], seed: UInt8(index)))
            }
            try await store.markDelivered(ids: claimed.map(\.id))
            #expect(try await store.statistics() == OfflineQueueStatistics(depth: 0, bytes: 0, oldestQueuedAt: nil))
        }
    }

    @Test(arguments: Backend.allCases)
    func releasedClaimsAreDueAgainAtOnceWithTheirAttemptsUnchanged(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            var queued: [String] = []
            for _ in 0..<5 { queued.append(try await Sample.queue(store, channel: "c1", body: Sample.body(10)).id) }
            let claimed = try await store.claim(channelID: "c1", owner: "r1", lease: .seconds(600), limit: 5)
            #expect(claimed.map(\.id) == queued)
            #expect(try await store.claim(channelID: "c1", owner: "r2", lease: .seconds(600), limit: 5).isEmpty)
            // Another owner cannot release them; their owner can.
            try await store.release(ids: queued, owner: "r2")
            #expect(try await store.claim(channelID: "c1", owner: "r2", lease: .seconds(600), limit: 5).isEmpty)
            try await store.release(ids: Array(queued.dropFirst(2)), owner: "r1")
            let again = try await store.claim(channelID: "c1", owner: "r2", lease: .seconds(600), limit: 5)
            #expect(again.map(\.id) == Array(queued.dropFirst(2)))
            #expect(again.allSatisfy { $0.attempts == 0 })
        }
    }

    @Test func bodiesKeptWithTheirClaimsStayWithinTheirBudget() {
        let cache = InlineBodyCache()
        let body = Sample.body(Int(InlineBodyCache.bodyLimit))
        cache.keep((0..<600).map { (id: "w\($0)", data: body) })
        let kept = (0..<600).filter { cache.take("w\($0)") != nil }.count
        #expect(kept == InlineBodyCache.budget / body.readableBytes)
        // What was taken is gone, and what was dropped is too.
        cache.keep([(id: "a", data: body), (id: "b", data: body)])
        cache.drop(["a"])
        #expect(cache.take("a") == nil)
        #expect(cache.take("b") == body)
        #expect(cache.take("b") == nil)
    }

    @Test(arguments: Backend.allCases)
    func aSmallBodyClaimedThenReleasedIsReadFromTheStoreByTheNextClaimer(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            let body = Sample.body(1_024)
            let queued = try await Sample.queue(store, channel: "c1", body: body)
            _ = try await store.claim(channelID: "c1", owner: "r1", lease: .seconds(30), limit: 1)
            try await store.release(ids: [queued.id], owner: "r1")
            let again = try await store.claim(channelID: "c1", owner: "r2", lease: .seconds(30), limit: 1)
            #expect(again.map(\.id) == [queued.id])
            #expect(try await Sample.readBody(store, id: queued.id) == body)
            #expect(try await Sample.readBody(store, id: queued.id) == body)
        }
    }
}
