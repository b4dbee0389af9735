/// A failure of the queue's storage itself (as opposed to an
/// ``OfflineQueueRefusal``, which is a limit doing its job).
public struct OfflineQueueError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case invalidURL(String)
        case unreachable(String)
        case unwritableDirectory(String)
        case newerSchema(Int)
        case corruptRecord(String)
        case unknownIngest
        case unknownWebhook
        case closed
    }

    private let code: Code

    /// The `--queue-url` is not a `postgres://` or `postgresql://` URL we can use.
    public static func invalidURL(_ reason: String) -> Self { Self(code: .invalidURL(reason)) }
    /// The database could not be reached or refused us.
    public static func unreachable(_ reason: String) -> Self { Self(code: .unreachable(reason)) }
    /// The data directory cannot be created or written.
    public static func unwritableDirectory(_ reason: String) -> Self { Self(code: .unwritableDirectory(reason)) }
    /// The database was written by a newer version of this program.
    public static func newerSchema(_ version: Int) -> Self { Self(code: .newerSchema(version)) }
    /// A stored row cannot be read back.
    public static func corruptRecord(_ reason: String) -> Self { Self(code: .corruptRecord(reason)) }
    /// The ingest's row is gone (it was aborted, or its transaction failed).
    public static var unknownIngest: Self { Self(code: .unknownIngest) }
    /// No webhook with that id is stored (delivered, expired, or never queued).
    public static var unknownWebhook: Self { Self(code: .unknownWebhook) }
    /// The store was closed.
    public static var closed: Self { Self(code: .closed) }

    public var description: String {
        switch code {
        case .invalidURL(let reason): "invalid queue URL: \(reason)"
        case .unreachable(let reason): "queue database unreachable: \(reason)"
        case .unwritableDirectory(let reason): "queue data directory not usable: \(reason)"
        case .newerSchema(let version): "queue database has schema version \(version), newer than this program knows; upgrade it"
        case .corruptRecord(let reason): "queue database holds an unreadable record: \(reason)"
        case .unknownIngest: "the webhook being queued is no longer in the queue (aborted or its transaction failed)"
        case .unknownWebhook: "no such webhook in the queue"
        case .closed: "the queue is closed"
        }
    }
}
