import Foundation
import NIOCore
import PostgresTestSupport
import Testing

@testable import OfflineQueue

/// What only the PostgreSQL store does: replicas sharing one database.
@Suite(.enabled(if: PostgresTestServer.isAvailable, Comment(rawValue: PostgresTestServer.unavailableMessage)))
struct PostgresStoreTests {
    @Test func twoStoresOnOneDatabaseClaimingConcurrentlyNeverGetTheSameWebhook() async throws {
        try await StoreHarness.withHarness(.postgres) { harness in
            let replicaA = try await harness.open()
            let replicaB = try await harness.open()
            var queued = Set<String>()
            for index in 0..<200 {
                queued.insert(try await Sample.queue(index % 2 == 0 ? replicaA : replicaB, channel: "c1", body: Sample.body(100)).id)
            }
            // Four claimers, two per replica, drain the channel at once.
            let claims = try await withThrowingTaskGroup(of: [String].self) { group in
                for claimer in 0..<4 {
                    let store = claimer % 2 == 0 ? replicaA : replicaB
                    group.addTask {
                        var mine: [String] = []
                        while let next = try await store.claimNext(channelID: "c1", owner: "claimer-\(claimer)", lease: .seconds(60)) {
                            mine.append(next.id)
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(claims.count == 200)
            #expect(Set(claims) == queued)
            try await replicaA.close()
            try await replicaB.close()
        }
    }

    @Test func threeReplicasStartingAtOnceMigrateOnce() async throws {
        try await StoreHarness.withHarness(.postgres) { harness in
            let stores = try await withThrowingTaskGroup(of: (any OfflineQueueStore).self) { group in
                for _ in 0..<3 { group.addTask { try await harness.open() } }
                return try await group.reduce(into: [any OfflineQueueStore]()) { $0.append($1) }
            }
            let queued = try await Sample.queue(stores[0], channel: "c1", body: Sample.body(10))
            #expect(try await stores[2].claimNext(channelID: "c1", owner: "r3", lease: .seconds(30))?.id == queued.id)
            for store in stores { try await store.close() }
        }
    }

    @Test func aWebhookQueuedThroughOneReplicaIsDeliveredThroughAnother() async throws {
        try await StoreHarness.withHarness(.postgres) { harness in
            let replicaA = try await harness.open()
            let body = Sample.body(300_000)
            let queued = try await Sample.queue(replicaA, channel: "c1", body: body)
            try await replicaA.setMode(.queue, channelID: "c1")
            try await replicaA.close()
            let replicaB = try await harness.open()
            #expect(try await replicaB.mode(channelID: "c1") == .queue)
            let claimed = try #require(try await replicaB.claimNext(channelID: "c1", owner: "b", lease: .seconds(30)))
            #expect(claimed == queued)
            #expect(try await Sample.readBody(replicaB, id: claimed.id) == body)
            try await replicaB.close()
        }
    }

    @Test func aURLThatIsNotPostgresIsAClearError() async throws {
        for url in ["mysql://u@h/db", "not a url", "postgres:///db", "postgres://h/db?sslmode=bogus"] {
            let error = await #expect(throws: OfflineQueueError.self) {
                _ = try await OfflineQueue.open(url: url, limits: .init(), logger: StoreHarness.logger)
            }
            #expect(error?.description.contains("invalid queue URL") == true, "\(url): \(String(describing: error))")
        }
    }

    @Test func anUnreachableDatabaseIsAClearError() async throws {
        // A port nothing listens on: the harness's server, stopped.
        let server = try await PostgresTestServer.start()
        let url = server.url
        try await server.stop()
        let error = await #expect(throws: OfflineQueueError.self) {
            _ = try await OfflineQueue.open(url: url + "?sslmode=disable", limits: .init(), logger: StoreHarness.logger)
        }
        #expect(error?.description.contains("unreachable") == true, "\(String(describing: error))")
    }
}
