import Foundation
import HTTPTypes
import Logging
import NIOCore
import OfflineQueue
import PostgresTestSupport
import TunnelProtocol

/// The stores the suite runs against: PostgreSQL only where it is installed
/// (``PostgresStoreTests`` says when it is not).
enum Backend: String, CaseIterable, Sendable {
    case sqlite
    case postgres

    static var allCases: [Backend] { PostgresTestServer.isAvailable ? [.sqlite, .postgres] : [.sqlite] }
}

/// One PostgreSQL server for the tests running at a time; every test gets a
/// database of its own. The last test to let go stops the server.
actor SharedPostgres {
    static let shared = SharedPostgres()

    private var server: Task<PostgresTestServer, any Error>?
    private var users = 0

    func acquire() async throws -> PostgresTestServer {
        users += 1
        let task = server ?? Task { try await PostgresTestServer.start() }
        server = task
        do {
            return try await task.value
        } catch {
            users -= 1
            if users == 0 { server = nil }
            throw error
        }
    }

    func release() async {
        users -= 1
        guard users == 0, let task = server else { return }
        server = nil
        try? await task.value.stop()
    }
}

/// A store in a fresh place (a temp directory), and what it takes to open it
/// again there.
struct StoreHarness: Sendable {
    let backend: Backend
    let directory: URL
    let limits: OfflineQueueLimits
    /// The database's URL (PostgreSQL).
    let url: String?

    static let logger = Logger(label: "offline-queue-tests")

    init(_ backend: Backend, limits: OfflineQueueLimits = OfflineQueueLimits()) async throws {
        self.backend = backend
        self.limits = limits
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("offline-queue-\(UUID().uuidString)")
        switch backend {
        case .sqlite:
            url = nil
        case .postgres:
            let server = try await SharedPostgres.shared.acquire()
            do {
                url = try await server.createDatabase("q" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))
            } catch {
                await SharedPostgres.shared.release()
                throw error
            }
        }
    }

    func open(limits: OfflineQueueLimits? = nil) async throws -> any OfflineQueueStore {
        switch backend {
        case .sqlite:
            try await OfflineQueue.open(dataDirectory: directory, limits: limits ?? self.limits, logger: Self.logger)
        case .postgres:
            try await OfflineQueue.open(url: url!, limits: limits ?? self.limits, logger: Self.logger)
        }
    }

    /// Opens a store, runs `body`, closes it and removes what the test left.
    static func with(
        _ backend: Backend,
        limits: OfflineQueueLimits = OfflineQueueLimits(),
        _ body: (StoreHarness, any OfflineQueueStore) async throws -> Void
    ) async throws {
        let harness = try await StoreHarness(backend, limits: limits)
        do {
            let store = try await harness.open()
            do {
                try await body(harness, store)
                try await store.close()
            } catch {
                try? await store.close()
                throw error
            }
        } catch {
            await harness.remove()
            throw error
        }
        await harness.remove()
    }

    /// A harness for `body`, which opens and closes stores itself.
    static func withHarness(
        _ backend: Backend,
        limits: OfflineQueueLimits = OfflineQueueLimits(),
        _ body: (StoreHarness) async throws -> Void
    ) async throws {
        let harness = try await StoreHarness(backend, limits: limits)
        do {
            try await body(harness)
        } catch {
            await harness.remove()
            throw error
        }
        await harness.remove()
    }

    func removeDirectory() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Removes the directory; lets go of the PostgreSQL server (its
    /// database goes with it when the last test stops it).
    func remove() async {
        try? FileManager.default.removeItem(at: directory)
        if backend == .postgres { await SharedPostgres.shared.release() }
    }
}

/// Test data.
enum Sample {
    static func head(_ path: String = "/hook") -> QueuedRequestHead {
        var fields = HTTPFields()
        fields.append(HTTPField(name: HTTPField.Name("X-GitHub-Event")!, value: "push"))
        fields.append(HTTPField(name: .contentType, value: "application/json"))
        fields.append(HTTPField(name: HTTPField.Name("x-repeat")!, value: "one"))
        fields.append(HTTPField(name: HTTPField.Name("X-Repeat")!, value: "two"))
        return QueuedRequestHead(method: "POST", target: path + "?a=1", headerFields: fields)
    }

    /// Bytes whose value depends on their position, so a chunk out of place shows.
    static func body(_ count: Int, seed: UInt8 = 7) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        for index in 0..<count { buffer.writeInteger(UInt8(truncatingIfNeeded: index &* 31 &+ Int(seed))) }
        return buffer
    }

    /// Ingests `body` in chunks of `chunk` bytes and commits it.
    static func queue(
        _ store: any OfflineQueueStore,
        channel: String,
        head: QueuedRequestHead = Sample.head(),
        body: ByteBuffer,
        chunk: Int = 10_000,
        declare: Bool = true
    ) async throws -> QueuedWebhook {
        let ingest = try await store.beginIngest(
            channelID: channel,
            head: head,
            declaredLength: declare ? Int64(body.readableBytes) : nil
        )
        var rest = body
        while rest.readableBytes > 0 {
            try await ingest.append(rest.readSlice(length: min(chunk, rest.readableBytes))!)
        }
        return try await ingest.commit()
    }

    static func readBody(_ store: any OfflineQueueStore, id: String) async throws -> ByteBuffer {
        var all = ByteBuffer()
        for try await chunk in store.body(of: id) {
            var chunk = chunk
            all.writeBuffer(&chunk)
        }
        return all
    }
}
