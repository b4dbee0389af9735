import Foundation
import NIOCore
import Testing

@testable import OfflineQueue

/// Ingest and drain rates, by hand: `QUEUE_BENCH=1 swift test --filter QueueBenchmarkTests`
/// (`QUEUE_BENCH_COUNT` webhooks, default 5,000). Every commit is durable, as
/// for a real 202.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["QUEUE_BENCH"] != nil))
struct QueueBenchmarkTests {
    static let count = Int(ProcessInfo.processInfo.environment["QUEUE_BENCH_COUNT"] ?? "") ?? 5_000
    static let concurrency = 16

    @Test(arguments: Backend.allCases)
    func ingestAt16ConcurrentCommitsOf1KiBAndDrain(_ backend: Backend) async throws {
        try await StoreHarness.with(backend, limits: OfflineQueueLimits(maxCountPerChannel: 1_000_000, maxTotalBytes: 1 << 40)) { _, store in
            let body = Sample.body(1_024)
            let head = Sample.head()
            let started = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<Self.concurrency {
                    group.addTask {
                        for _ in stride(from: worker, to: Self.count, by: Self.concurrency) {
                            _ = try await Sample.queue(store, channel: "bench", head: head, body: body)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let ingest = ContinuousClock.now - started
            #expect(try await store.statistics().depth == Self.count)

            let drainStarted = ContinuousClock.now
            var drained = 0
            // As the server drains (OfflineDelivery): a batch claimed at once,
            // each body read in turn, the batch removed in one call.
            while case let batch = try await store.claim(channelID: "bench", owner: "bench", lease: .seconds(60), limit: 32), !batch.isEmpty {
                for next in batch {
                    var bytes = 0
                    for try await chunk in store.body(of: next.id) { bytes += chunk.readableBytes }
                    #expect(bytes == 1_024)
                    drained += 1
                }
                try await store.markDelivered(ids: batch.map(\.id))
            }
            let drain = ContinuousClock.now - drainStarted
            #expect(drained == Self.count)
            print(
                "QUEUE_BENCH \(backend): ingest \(Self.rate(Self.count, ingest)) webhooks/s (\(Self.count) x 1 KiB, c=\(Self.concurrency), durable commits); "
                    + "drain \(Self.rate(Self.count, drain)) webhooks/s (claims of 32, each body, delivered per batch; one channel, sequential)"
            )
        }
    }

    /// What one statement costs on this build: sequential `mode(channelID:)` reads.
    @Test(arguments: Backend.allCases)
    func roundTripsOfOneSmallRead(_ backend: Backend) async throws {
        try await StoreHarness.with(backend) { _, store in
            let started = ContinuousClock.now
            for _ in 0..<2_000 { _ = try await store.mode(channelID: "c1") }
            print("QUEUE_BENCH \(backend): \(Self.rate(2_000, ContinuousClock.now - started)) sequential small reads/s")
        }
    }

    static func rate(_ count: Int, _ duration: Duration) -> Int {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return Int(Double(count) / seconds)
    }
}
