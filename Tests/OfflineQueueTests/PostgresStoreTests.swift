import Foundation
import NIOCore
import PostgresNIO
import PostgresTestSupport
import Testing
import TunnelProtocol

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

    @Test func aVersion1DatabaseIsMigratedWithWhatItHoldsCountedAgainstTheLimits() async throws {
        try await StoreHarness.withHarness(.postgres, limits: OfflineQueueLimits(maxCountPerChannel: 3)) { harness in
            // A database as a server before the usage table left it: two webhooks queued.
            let logger = StoreHarness.logger
            let client = PostgresClient(configuration: try PostgresOfflineQueueStore.configuration(from: harness.url!), backgroundLogger: logger)
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await client.run() }
                try await client.withTransaction(logger: logger) { connection in
                    try await connection.query("CREATE TABLE wow_queue_schema (version integer NOT NULL)", logger: logger)
                    try await connection.query("INSERT INTO wow_queue_schema (version) VALUES (1)", logger: logger)
                    for statement in PostgresOfflineQueueStore.schemaV1 {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    let now = PostgresOfflineQueueStore.milliseconds(Date())
                    let fields = HeaderFieldsCodec.encode(Sample.head().headerFields)
                    for id in ["old-1", "old-2"] {
                        try await connection.query(
                            """
                            INSERT INTO wow_queue_webhooks (id, channel_id, method, target, header_fields, queued_at, next_attempt_at, state)
                            VALUES (\(id), 'c1', 'POST', '/hook', \(fields), \(now), \(now), 'pending')
                            """,
                            logger: logger
                        )
                    }
                }
                group.cancelAll()
            }
            let store = try await harness.open()
            let queued = try await Sample.queue(store, channel: "c1", body: Sample.body(10))
            await #expect(throws: OfflineQueueRefusal.channelCountLimit) {
                _ = try await Sample.queue(store, channel: "c1", body: Sample.body(10))
            }
            let claimed = try await store.claim(channelID: "c1", owner: "r1", lease: .seconds(30), limit: 10)
            #expect(claimed.map(\.id) == ["old-1", "old-2", queued.id])
            try await store.close()
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
