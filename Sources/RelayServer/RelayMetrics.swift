import Prometheus
import Synchronization

/// The server's Prometheus metrics (docs/operations.md), in a registry of its own so
/// tests and several servers in one process never share global state.
final class RelayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let channelsIssued: Counter
    let channelsConnected: Gauge
    let webhooksInFlight: Gauge
    let bytesIn: Counter
    let bytesOut: Counter
    let latency: DurationHistogram
    let clusterMembers: Gauge
    /// Webhooks answered, by exact status code (`code="502"`, as Prometheus' own HTTP
    /// instrumentation labels them, so 502s and 504s can be told apart), made on first use and kept:
    /// looking a labelled counter up in the registry on every webhook takes its lock each time.
    /// At most 501 series: the codes 100...599 and `none`.
    private let answered = Mutex<[Int: Counter]>([:])

    init() {
        self.channelsIssued = self.registry.makeCounter(
            descriptor: .init(namespace: "wow", metricName: "channels_issued", unitName: "total", helpText: "Channels issued by /new")
        )
        self.channelsConnected = self.registry.makeGauge(
            descriptor: .init(namespace: "wow", metricName: "channels_connected", unitName: "", helpText: "Channels with a connected client")
        )
        self.webhooksInFlight = self.registry.makeGauge(
            descriptor: .init(namespace: "wow", metricName: "webhooks_in_flight", unitName: "", helpText: "Webhooks being delivered")
        )
        self.bytesIn = self.registry.makeCounter(
            descriptor: .init(
                namespace: "wow",
                metricName: "webhook_request",
                unitName: "bytes",
                helpText: "Webhook body bytes received from senders"
            )
        )
        self.bytesOut = self.registry.makeCounter(
            descriptor: .init(
                namespace: "wow",
                metricName: "webhook_response",
                unitName: "bytes",
                helpText: "Response body bytes sent back to senders"
            )
        )
        self.latency = self.registry.makeDurationHistogram(
            descriptor: .init(
                namespace: "wow",
                metricName: "webhook_duration",
                unitName: "seconds",
                helpText: "Time from a webhook's arrival to its answer"
            ),
            buckets: [.milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30)]
        )
        self.clusterMembers = self.registry.makeGauge(
            descriptor: .init(namespace: "wow", metricName: "cluster_members", unitName: "", helpText: "Live cluster members, this replica included")
        )
        // Known before any webhook, so a scrape shows the family and an alert on a rate has a series.
        _ = self.counter(for: 0)
    }

    /// Counts an answered webhook by its status code (`none`: the sender left before any answer).
    func webhookAnswered(status: Int) {
        self.counter(for: status).increment()
    }

    private func counter(for status: Int) -> Counter {
        let code = (100..<600).contains(status) ? status : 0
        return self.answered.withLock { counters in
            if let counter = counters[code] { return counter }
            let counter = self.registry.makeCounter(
                descriptor: .init(namespace: "wow", metricName: "webhooks", unitName: "total", helpText: "Webhooks answered, by status code"),
                labels: [("code", code == 0 ? "none" : "\(code)")]
            )
            counters[code] = counter
            return counter
        }
    }

    func render() -> String {
        self.registry.emitToString()
    }
}
