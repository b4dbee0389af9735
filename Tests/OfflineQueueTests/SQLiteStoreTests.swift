import Foundation
import Logging
import NIOCore
import SQLiteNIO
import Testing

@testable import OfflineQueue

/// What only the SQLite store does: its file, its pragmas, its crash cleanup.
@Suite struct SQLiteStoreTests {
    @Test func theDataDirectoryIsCreatedPrivateAndTheDatabaseIsInWALMode() async throws {
        let harness = try await StoreHarness(.sqlite)
        defer { harness.removeDirectory() }
        let store = try await harness.open()
        let attributes = try FileManager.default.attributesOfItem(atPath: harness.directory.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        try await store.close()
        try await withRawDatabase(harness) { db async throws in
            #expect(try await db.query("PRAGMA journal_mode").first?.column("journal_mode")?.string == "wal")
            #expect(try await db.query("PRAGMA user_version").first?.column("user_version")?.integer == 1)
        }
    }

    @Test func aSecondStoreOnTheSameDirectoryIsRefused() async throws {
        let harness = try await StoreHarness(.sqlite)
        defer { harness.removeDirectory() }
        let store = try await harness.open()
        await #expect(throws: OfflineQueueError.self) { _ = try await harness.open() }
        try await store.close()
        try await harness.open().close()
    }

    @Test func anUnwritableDataDirectoryIsAClearError() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("offline-queue-file-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let error = await #expect(throws: OfflineQueueError.self) {
            _ = try await OfflineQueue.open(dataDirectory: file.appendingPathComponent("sub"), limits: .init(), logger: StoreHarness.logger)
        }
        #expect(error?.description.contains("data directory") == true)
    }

    @Test func aWebhookAnIngestLeftHalfStoredIsRemovedAtTheNextOpen() async throws {
        let harness = try await StoreHarness(.sqlite)
        defer { harness.removeDirectory() }
        var store = try await harness.open()
        let ingest = try await store.beginIngest(channelID: "c1", head: Sample.head(), declaredLength: nil)
        try await ingest.append(Sample.body(300_000))
        // Closing commits what was written, as a crash after the next group
        // commit would leave it: an `ingesting` row with its chunks.
        try await store.close()
        try await withRawDatabase(harness) { db async throws in
            #expect(try await db.query("SELECT count(*) AS n FROM webhooks WHERE state = 'ingesting'").first?.column("n")?.integer == 1)
            #expect(try await db.query("SELECT count(*) AS n FROM body_chunks").first?.column("n")?.integer ?? 0 > 0)
        }
        store = try await harness.open()
        #expect(try await store.statistics().depth == 0)
        try await store.close()
        try await withRawDatabase(harness) { db async throws in
            #expect(try await db.query("SELECT count(*) AS n FROM webhooks").first?.column("n")?.integer == 0)
            #expect(try await db.query("SELECT count(*) AS n FROM body_chunks").first?.column("n")?.integer == 0)
        }
    }

    @Test func aLeaseHeldWhenTheServerStoppedIsReleasedAtTheNextOpen() async throws {
        let harness = try await StoreHarness(.sqlite)
        defer { harness.removeDirectory() }
        var store = try await harness.open()
        let queued = try await Sample.queue(store, channel: "c1", body: Sample.body(10))
        #expect(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(600))?.id == queued.id)
        try await store.close()
        store = try await harness.open()
        #expect(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(600))?.id == queued.id)
        try await store.close()
    }

    @Test func aCommitFromACancelledTaskIsStillDurable() async throws {
        let harness = try await StoreHarness(.sqlite)
        defer { harness.removeDirectory() }
        var store = try await harness.open()
        let opened = store
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await Sample.queue(opened, channel: "c1", body: Sample.body(1_000))
        }
        let queued = try await task.value
        try await store.close()
        store = try await harness.open()
        #expect(try await store.claimNext(channelID: "c1", owner: "r1", lease: .seconds(30))?.id == queued.id)
        try await store.close()
    }

    private func withRawDatabase(_ harness: StoreHarness, _ body: (SQLiteConnection) async throws -> Void) async throws {
        let db = try await SQLiteConnection.open(storage: .file(path: harness.directory.appendingPathComponent("queue.sqlite").path))
        do {
            try await body(db)
            try await db.close()
        } catch {
            try? await db.close()
            throw error
        }
    }
}
