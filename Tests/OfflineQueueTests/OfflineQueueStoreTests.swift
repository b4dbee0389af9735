import Foundation
import HTTPTypes
import NIOCore
import Testing
import TunnelProtocol

@testable import OfflineQueue

/// The storage contract, run against every store with a real database.
@Suite struct OfflineQueueStoreTests {
    @Test(arguments: Backend.allCases)
    func aQueuedWebhookIsClaimedWithItsHeadAndByteExactBodyThenRemovedOnDelivery(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            let body = Sample.body(200_000)
            let queued = try await Sample.queue(store, channel: "c1", body: body, chunk: 7_000)
            #expect(queued.bodyLength == 200_000)
            #expect(queued.attempts == 0)
            let claimed = try #require(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30)))
            #expect(claimed == queued)
            #expect(claimed.head.headerFields.map(\.name.rawName) == ["X-GitHub-Event", "Content-Type", "x-repeat", "X-Repeat"])
            #expect(try await Sample.readBody(store, id: claimed.id) == body)
            try await store.markDelivered(id: claimed.id)
            #expect(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30)) == nil)
            #expect(try await store.statistics() == OfflineQueueStatistics(depth: 0, bytes: 0, oldestQueuedAt: nil))
        }
    }

    @Test(arguments: Backend.allCases)
    func webhooksAreClaimedInArrivalOrderPerChannel(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            var ids: [String] = []
            for index in 0..<5 {
                ids.append(try await Sample.queue(store, channel: "c1", head: Sample.head("/\(index)"), body: Sample.body(100 + index)).id)
                _ = try await Sample.queue(store, channel: "other", body: Sample.body(10))
            }
            var claimed: [String] = []
            while let next = try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30)) {
                claimed.append(next.id)
                try await store.markDelivered(id: next.id)
            }
            #expect(claimed == ids)
            #expect(try await store.channelsWithQueuedWebhooks() == ["other"])
        }
    }

    @Test(arguments: Backend.allCases)
    func anEmptyBodyRoundTrips(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            let queued = try await Sample.queue(store, channel: "c1", body: ByteBuffer())
            let claimed = try #require(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30)))
            #expect(claimed.id == queued.id)
            #expect(try await Sample.readBody(store, id: claimed.id).readableBytes == 0)
        }
    }

    @Test(arguments: Backend.allCases)
    func readingTheBodyOfAnUnknownWebhookFails(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            await #expect(throws: OfflineQueueError.unknownWebhook) { _ = try await Sample.readBody(store, id: "nope") }
        }
    }

    @Test(arguments: Backend.allCases)
    func theChannelCountLimitRefusesTheNextWebhookAndKeepsNothingOfIt(_ backend: Backend) async throws {
        try await StoreHarness.with(backend, limits: OfflineQueueLimits(maxCountPerChannel: 2)) { _, store in
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(10))
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(10))
            await #expect(throws: OfflineQueueRefusal.channelCountLimit) {
                _ = try await Sample.queue(store, channel: "c1", body: Sample.body(10))
            }
            _ = try await Sample.queue(store, channel: "c2", body: Sample.body(10))
            #expect(try await store.statistics().depth == 3)
        }
    }

    @Test(arguments: Backend.allCases, [true, false])
    func theChannelBytesLimitRefusesWithOrWithoutADeclaredLength(_ backend: Backend, declare: Bool) async throws {
        try await StoreHarness.with(backend, limits: OfflineQueueLimits(maxBytesPerChannel: 300_000)) { _, store in
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(200_000), declare: declare)
            await #expect(throws: OfflineQueueRefusal.channelBytesLimit) {
                _ = try await Sample.queue(store, channel: "c1", body: Sample.body(150_000), declare: declare)
            }
            #expect(try await store.statistics() == OfflineQueueStatistics(depth: 1, bytes: 200_000, oldestQueuedAt: try await oldest(store)))
            // What was refused gave its reservation back.
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(100_000), declare: declare)
        }
    }

    @Test(arguments: Backend.allCases, [true, false])
    func aBodyLargerThanAChannelMayHoldIsTooLarge(_ backend: Backend, declare: Bool) async throws {
        try await StoreHarness.with(backend, limits: OfflineQueueLimits(maxBytesPerChannel: 100_000)) { _, store async throws in
            await #expect(throws: OfflineQueueRefusal.bodyTooLarge) {
                _ = try await Sample.queue(store, channel: "c1", body: Sample.body(100_001), declare: declare)
            }
            #expect(try await store.statistics().depth == 0)
            #expect(try await store.channelsWithQueuedWebhooks().isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func theServerBytesLimitCountsEveryChannel(_ backend: Backend) async throws {
        try await StoreHarness.with(backend, limits: OfflineQueueLimits(maxTotalBytes: 250_000)) { _, store in
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(100_000))
            _ = try await Sample.queue(store, channel: "c2", body: Sample.body(100_000))
            await #expect(throws: OfflineQueueRefusal.serverBytesLimit) {
                _ = try await Sample.queue(store, channel: "c3", body: Sample.body(100_000), declare: false)
            }
            #expect(try await store.statistics().bytes == 200_000)
        }
    }

    @Test(arguments: Backend.allCases)
    func concurrentIngestsCannotTogetherPassALimit(_ backend: Backend) async throws {
        try await StoreHarness.with(backend, limits: OfflineQueueLimits(maxBytesPerChannel: 100_000)) { _, store in
            let first = try await store.beginIngest(channelID: "c1", head: Sample.head(), declaredLength: 60_000)
            await #expect(throws: OfflineQueueRefusal.channelBytesLimit) {
                _ = try await store.beginIngest(channelID: "c1", head: Sample.head(), declaredLength: 60_000)
            }
            await first.abort()
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(60_000))
        }
    }

    @Test(arguments: Backend.allCases)
    func anAbortedIngestLeavesNothing(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            let ingest = try await store.beginIngest(channelID: "c1", head: Sample.head(), declaredLength: nil)
            try await ingest.append(Sample.body(300_000))
            await ingest.abort()
            await #expect(throws: OfflineQueueError.unknownIngest) { _ = try await ingest.commit() }
            #expect(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30)) == nil)
            #expect(try await store.statistics() == OfflineQueueStatistics(depth: 0, bytes: 0, oldestQueuedAt: nil))
            #expect(try await store.channelsWithQueuedWebhooks().isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func aWebhookBeingIngestedIsInvisibleToDeliveryUntilCommitted(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            let ingest = try await store.beginIngest(channelID: "c1", head: Sample.head(), declaredLength: 100_000)
            try await ingest.append(Sample.body(100_000))
            #expect(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30)) == nil)
            #expect(try await store.statistics().depth == 0)
            let queued = try await ingest.commit()
            #expect(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30))?.id == queued.id)
        }
    }

    @Test(arguments: Backend.allCases)
    func aCommittedWebhookIsThereAfterReopening(_ backend: Backend) async throws {
        try await StoreHarness.withHarness(backend) { harness in
            let body = Sample.body(150_000)
            var store = try await harness.open()
            let queued = try await Sample.queue(store, channel: "c1", body: body)
            try await store.setMode(.reject, channelID: "c1")
            try await store.close()
            store = try await harness.open()
            let claimed = try #require(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30)))
            #expect(claimed == queued)
            #expect(try await Sample.readBody(store, id: claimed.id) == body)
            #expect(try await store.mode(channelID: "c1") == .reject)
            try await store.close()
        }
    }

    @Test(arguments: Backend.allCases)
    func limitsCountWhatWasStoredBeforeReopening(_ backend: Backend) async throws {
        try await StoreHarness.withHarness(backend, limits: OfflineQueueLimits(maxCountPerChannel: 1)) { harness in
            var store = try await harness.open()
            _ = try await Sample.queue(store, channel: "c1", body: Sample.body(10))
            try await store.close()
            store = try await harness.open()
            let reopened = store
            await #expect(throws: OfflineQueueRefusal.channelCountLimit) {
                _ = try await Sample.queue(reopened, channel: "c1", body: Sample.body(10))
            }
            try await store.close()
        }
    }

    @Test(arguments: Backend.allCases)
    func aLeasedWebhookIsNotClaimedAgainUntilTheLeaseExpires(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            let queued = try await Sample.queue(store, channel: "c1", body: Sample.body(10))
            let lease = Duration.seconds(2)
            let claimedAt = ContinuousClock.now
            let first = try await store.claimNext(channelID: "c1", owner: "r1", lease: lease)
            #expect(first?.id == queued.id)
            let during = try await store.claimNext(channelID: "c1", owner: "r2", lease: .seconds(30))
            // (Only a claim made while the lease surely lasted may be refused.)
            let askedWithinLease = ContinuousClock.now - claimedAt < lease
            #expect(during == nil || !askedWithinLease)
            if during != nil { return }
            let deadline = ContinuousClock.now + .seconds(10)
            var second: QueuedWebhook?
            while second == nil && ContinuousClock.now < deadline {
                second = try await store.claimNext(channelID: "c1", owner: "r2", lease: .seconds(30))
                if second == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(second?.id == queued.id)
        }
    }

    @Test(arguments: Backend.allCases)
    func aFailedAttemptWithARetryTimeWaitsForItAndCountsTheAttempt(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            let queued = try await Sample.queue(store, channel: "c1", body: Sample.body(10))
            _ = try #require(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30)))
            // Far enough ahead that a loaded machine still claims before it is due.
            try await store.markFailed(id: queued.id, retryAt: Date().addingTimeInterval(3))
            #expect(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30)) == nil)
            let deadline = ContinuousClock.now + .seconds(10)
            var retried: QueuedWebhook?
            while retried == nil && ContinuousClock.now < deadline {
                retried = try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30))
                if retried == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(retried?.id == queued.id)
            #expect(retried?.attempts == 1)
        }
    }

    @Test(arguments: Backend.allCases)
    func aWebhookFailedForGoodIsKeptUndeliveredUntilItExpires(_ backend: Backend) async throws {
        try await StoreHarness.with(backend, limits: OfflineQueueLimits(maxAge: .seconds(3_600))) { _, store in
            let queued = try await Sample.queue(store, channel: "c1", body: Sample.body(10))
            _ = try #require(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30)))
            try await store.markFailed(id: queued.id, retryAt: nil)
            #expect(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(0)) == nil)
            #expect(try await store.statistics().depth == 1)
            #expect(try await store.channelsWithQueuedWebhooks() == ["c1"])
            #expect(try await store.expire(now: Date()) == 0)
            #expect(try await store.expire(now: Date().addingTimeInterval(3_601)) == 1)
            #expect(try await store.channelsWithQueuedWebhooks().isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func expiryRemovesOnlyWebhooksOlderThanTheMaximumAge(_ backend: Backend) async throws {
        try await StoreHarness.with(backend, limits: OfflineQueueLimits(maxAge: .seconds(60))) { _, store in
            let old = try await Sample.queue(store, channel: "c1", body: Sample.body(1_000))
            let cutoffPassed = Date().addingTimeInterval(61)
            try await Task.sleep(for: .milliseconds(20))
            let young = try await Sample.queue(store, channel: "c1", body: Sample.body(2_000))
            let removed = try await store.expire(now: old.queuedAt.addingTimeInterval(60.01))
            #expect(removed == 1)
            #expect(cutoffPassed > young.queuedAt)
            let stats = try await store.statistics()
            #expect(stats == OfflineQueueStatistics(depth: 1, bytes: 2_000, oldestQueuedAt: young.queuedAt))
            #expect(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30))?.id == young.id)
        }
    }

    @Test(arguments: Backend.allCases)
    func statisticsReportDepthBytesAndTheOldest(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            let first = try await Sample.queue(store, channel: "c1", body: Sample.body(1_000))
            _ = try await Sample.queue(store, channel: "c2", body: Sample.body(2_500))
            let pending = try await store.beginIngest(channelID: "c3", head: Sample.head(), declaredLength: 10)
            try await pending.append(Sample.body(10))
            #expect(try await store.statistics() == OfflineQueueStatistics(depth: 2, bytes: 3_500, oldestQueuedAt: first.queuedAt))
            await pending.abort()
        }
    }

    @Test(arguments: Backend.allCases)
    func aChannelsModeRoundTripsAndUnknownChannelsHaveNone(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            #expect(try await store.mode(channelID: "c1") == nil)
            try await store.setMode(.queue, channelID: "c1")
            #expect(try await store.mode(channelID: "c1") == .queue)
            try await store.setMode(.reject, channelID: "c1")
            #expect(try await store.mode(channelID: "c1") == .reject)
            #expect(try await store.mode(channelID: "c2") == nil)
        }
    }

    @Test(arguments: Backend.allCases)
    func sixteenConcurrentIngestsAllCommitAndAllAreClaimable(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<64 {
                    group.addTask { try await Sample.queue(store, channel: "c\(index % 4)", body: Sample.body(1_024, seed: UInt8(index))).id }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(ids.count == 64)
            var claimed = Set<String>()
            for channel in 0..<4 {
                while let next = try await store.claimNext(channelID: "c\(channel)", owner: "r1", lease: .seconds(30)) {
                    claimed.insert(next.id)
                    try await store.markDelivered(id: next.id)
                }
            }
            #expect(claimed == ids)
        }
    }

    private func oldest(_ store: any OfflineQueueStore) async throws -> Date? {
        try await store.statistics().oldestQueuedAt
    }
}
