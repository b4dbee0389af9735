import OfflineQueue
import Prometheus

/// The offline queue's `/metrics` (docs/operations.md): gauges refreshed
/// from the store's statistics every few seconds, counters as webhooks are
/// stored, delivered, expired or refused.
struct QueueMetrics: Sendable {
    let depth: Gauge
    let bytes: Gauge
    let oldestAge: Gauge
    let stored: Counter
    let delivered: Counter
    let expired: Counter
    /// Refused webhooks by reason, made once like the server's other labelled counters.
    private let rejected: [Reason: Counter]

    /// Why a webhook for an away client was not queued: the `reason` label.
    enum Reason: String, CaseIterable {
        case channelCount = "channel_count"
        case channelBytes = "channel_bytes"
        case serverBytes = "server_bytes"
        case bodyTooLarge = "body_too_large"
        /// The store failed (disk full, database down).
        case storeError = "store_error"

        init(_ refusal: OfflineQueueRefusal) {
            switch refusal {
            case .channelCountLimit: self = .channelCount
            case .channelBytesLimit: self = .channelBytes
            case .serverBytesLimit: self = .serverBytes
            case .bodyTooLarge: self = .bodyTooLarge
            }
        }
    }

    init(registry: PrometheusCollectorRegistry) {
        func gauge(_ name: String, _ unit: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: .init(namespace: "wow", metricName: name, unitName: unit, helpText: help))
        }
        func counter(_ name: String, _ help: String, labels: [(String, String)] = []) -> Counter {
            registry.makeCounter(descriptor: .init(namespace: "wow", metricName: name, unitName: "total", helpText: help), labels: labels)
        }
        self.depth = gauge("queue_depth", "", "Webhooks in the offline queue (failed ones kept until they expire included)")
        self.bytes = gauge("queue", "bytes", "Body bytes in the offline queue")
        self.oldestAge = gauge("queue_oldest_age", "seconds", "Age of the oldest queued webhook; 0 when the queue is empty")
        self.stored = counter("queue_stored", "Webhooks stored for an away client and answered 202")
        self.delivered = counter("queue_delivered", "Queued webhooks the local app answered (then removed)")
        self.expired = counter("queue_expired", "Queued webhooks removed undelivered at --queue-max-age")
        self.rejected = Dictionary(
            uniqueKeysWithValues: Reason.allCases.map { reason in
                (
                    reason,
                    counter(
                        "queue_rejected",
                        "Webhooks for an away client refused instead of queued, by reason",
                        labels: [("reason", reason.rawValue)]
                    )
                )
            }
        )
    }

    func rejected(_ reason: Reason) {
        self.rejected[reason]?.increment()
    }
}
