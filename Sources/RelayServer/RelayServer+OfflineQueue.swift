import Foundation
import Logging
import OfflineQueue

extension RelayServer {
    /// Opens the offline queue's store: PostgreSQL with `--queue-url`, else
    /// SQLite in `--data-dir`. A store that cannot be opened stops the start.
    func makeOfflineDelivery(_ settings: OfflineQueueSettings) async throws -> OfflineDelivery {
        let store: any OfflineQueueStore
        do {
            store = try await Self.openStore(settings, logger: self.logger)
        } catch {
            throw OfflineQueueStartError(settings: settings, underlying: error)
        }
        return OfflineDelivery(
            store: store,
            settings: settings,
            registry: self.registry,
            metrics: QueueMetrics(registry: self.metrics.registry),
            requestTimeout: self.configuration.requestTimeout,
            maxBodySize: self.configuration.maxBodySize,
            logger: self.logger
        )
    }

    private static func openStore(_ settings: OfflineQueueSettings, logger: Logger) async throws -> any OfflineQueueStore {
        if let url = settings.queueURL {
            return try await OfflineQueue.open(url: url, limits: settings.limits, logger: logger)
        }
        return try await OfflineQueue.open(
            dataDirectory: URL(fileURLWithPath: settings.dataDirectory),
            limits: settings.limits,
            logger: logger
        )
    }
}

/// The offline queue's store could not be opened at start.
struct OfflineQueueStartError: Error, CustomStringConvertible {
    var settings: OfflineQueueSettings
    var underlying: any Error

    var description: String {
        if let url = self.settings.queueURL {
            return "cannot open the offline queue at --queue-url \(Self.redacted(url)): \(self.underlying)"
        }
        return "cannot open the offline queue in --data-dir \(self.settings.dataDirectory): \(self.underlying)"
    }

    /// The URL without its password, for the error message.
    static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let scheme = url.range(of: "://"), scheme.upperBound < at else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}
