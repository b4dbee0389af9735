import ArgumentParser
import Foundation
import RelayServer

/// The server's offline-queue flags (docs/offline-queue.md).
struct OfflineQueueOptions: ParsableArguments {
    @Option(
        help: "Where the embedded offline queue lives (default: $XDG_STATE_HOME/webhook-over-websocket, else ~/.local/state/webhook-over-websocket)."
    )
    var dataDir: String?

    @Option(help: "postgres://user:password@host:port/database: keep the offline queue in PostgreSQL, shared by all replicas.")
    var queueURL: String?

    @Option(help: "In queue mode, how long a webhook waits for an away client before it is queued (Go duration).")
    var offlineHold: GoDuration = .init(.seconds(2))

    @Option(help: "Webhooks queued per channel at most; beyond, 503 + Retry-After.")
    var queueMaxWebhooks: Int = 1_000

    @Option(help: "Body bytes queued per channel at most (e.g. 100MiB); beyond, 503 + Retry-After (413 for a body larger on its own).")
    var queueMaxBytes: ByteSize = .init(bytes: 100 * 1024 * 1024)

    @Option(help: "A queued webhook not delivered by then expires (Go duration).")
    var queueMaxAge: GoDuration = .init(.seconds(72 * 3600))

    @Option(help: "Body bytes queued on this server (with --queue-url: the cluster) at most (e.g. 1GiB).")
    var queueMaxTotalBytes: ByteSize = .init(bytes: 1024 * 1024 * 1024)

    func validate() throws {
        if let dataDir, dataDir.isEmpty { throw ValidationError("--data-dir must not be empty") }
        if let queueURL {
            guard let url = URL(string: queueURL), ["postgres", "postgresql"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                throw ValidationError("--queue-url must be a postgres://user:password@host:port/database URL")
            }
        }
        guard self.offlineHold.duration >= .zero else { throw ValidationError("--offline-hold must not be negative") }
        guard self.queueMaxWebhooks > 0 else { throw ValidationError("--queue-max-webhooks must be greater than zero") }
        guard self.queueMaxBytes.bytes > 0 else { throw ValidationError("--queue-max-bytes must be greater than zero") }
        guard self.queueMaxAge.duration > .zero else { throw ValidationError("--queue-max-age must be greater than zero") }
        guard self.queueMaxTotalBytes.bytes > 0 else { throw ValidationError("--queue-max-total-bytes must be greater than zero") }
    }

    /// `$XDG_STATE_HOME/webhook-over-websocket`, else `~/.local/state/webhook-over-websocket`.
    static var defaultDataDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty {
            return URL(fileURLWithPath: state).appendingPathComponent("webhook-over-websocket").path
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".local/state/webhook-over-websocket").path
    }

    var settings: OfflineQueueSettings {
        OfflineQueueSettings(
            dataDirectory: self.dataDir ?? Self.defaultDataDirectory,
            queueURL: self.queueURL.flatMap { $0.isEmpty ? nil : $0 },
            hold: self.offlineHold.duration,
            maxWebhooksPerChannel: self.queueMaxWebhooks,
            maxBytesPerChannel: Int64(self.queueMaxBytes.bytes),
            maxAge: self.queueMaxAge.duration,
            maxTotalBytes: Int64(self.queueMaxTotalBytes.bytes)
        )
    }
}
