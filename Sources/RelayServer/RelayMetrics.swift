import Prometheus

/// The server's Prometheus metrics (SPEC §7), in a registry of its own so
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
    /// Webhooks answered, by status class, made once: looking a labelled
    /// counter up in the registry on every webhook takes its lock each time.
    private let answered: [String: Counter]

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
        let registry = self.registry
        self.answered = Dictionary(
            uniqueKeysWithValues: ["none", "1xx", "2xx", "3xx", "4xx", "5xx"].map { statusClass in
                (
                    statusClass,
                    registry.makeCounter(
                        descriptor: .init(
                            namespace: "wow",
                            metricName: "webhooks",
                            unitName: "total",
                            helpText: "Webhooks answered, by status class"
                        ),
                        labels: [("status", statusClass)]
                    )
                )
            }
        )
    }

    /// Counts an answered webhook by status class (`none`: the sender left first).
    func webhookAnswered(status: Int) {
        let statusClass = (100..<600).contains(status) ? "\(status / 100)xx" : "none"
        self.answered[statusClass]?.increment()
    }

    func render() -> String {
        self.registry.emitToString()
    }
}
