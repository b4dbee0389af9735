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
    }

    /// Webhooks answered, by status class (`2xx`, `4xx`, ...).
    func webhookAnswered(status: Int) {
        let statusClass = status == 0 ? "none" : "\(status / 100)xx"
        self.registry.makeCounter(
            descriptor: .init(namespace: "wow", metricName: "webhooks", unitName: "total", helpText: "Webhooks answered, by status class"),
            labels: [("status", statusClass)]
        ).increment()
    }

    func render() -> String {
        self.registry.emitToString()
    }
}
