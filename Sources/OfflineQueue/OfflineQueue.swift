public import Foundation
public import Logging

/// Opens the server's offline queue (docs/offline-queue.md, "Storage").
public enum OfflineQueue {
    /// The embedded store: `queue.sqlite` in `dataDirectory` (`--data-dir`),
    /// created with mode 0700 when missing.
    public static func open(dataDirectory: URL, limits: OfflineQueueLimits, logger: Logger) async throws -> any OfflineQueueStore {
        try await SQLiteOfflineQueueStore.open(dataDirectory: dataDirectory, limits: limits, logger: logger)
    }

    /// The shared store for a cluster: PostgreSQL at `url` (`--queue-url`,
    /// `postgres://user[:password]@host[:port]/database[?sslmode=…]`). The
    /// store runs its database client itself until ``OfflineQueueStore/close()``.
    public static func open(url: String, limits: OfflineQueueLimits, logger: Logger) async throws -> any OfflineQueueStore {
        try await PostgresOfflineQueueStore.open(url: url, limits: limits, logger: logger)
    }
}
