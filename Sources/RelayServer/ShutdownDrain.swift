import Logging
import ServiceLifecycle
import Synchronization

/// The first step of a graceful shutdown (docs/operations.md): finish what is in flight, then send the clients
/// away, before the HTTP server closes and the replica leaves the cluster.
///
/// It runs in the outer service group after the application, so on SIGTERM it is shut down first and
/// the application only once it returns. Meanwhile the replica keeps serving (a load balancer may
/// still send requests for a few seconds) but `/healthz` says `draining`, so it stops doing so.
final class ShutdownDrain: Service, Sendable {
    private let inFlight = Atomic<Int>(0)
    private let draining = Atomic<Bool>(false)
    private let registry: ChannelRegistry
    private let timeout: Duration
    private let logger: Logger

    init(registry: ChannelRegistry, timeout: Duration, logger: Logger) {
        self.registry = registry
        self.timeout = timeout
        self.logger = logger
    }

    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// A webhook started; pair with ``webhookEnded()``.
    func webhookStarted() { inFlight.add(1, ordering: .relaxed) }

    func webhookEnded() { inFlight.subtract(1, ordering: .relaxed) }

    func run() async throws {
        try? await gracefulShutdown()
        draining.store(true, ordering: .relaxed)
        let started = ContinuousClock.now
        let deadline = started + timeout
        var waiting = inFlight.load(ordering: .relaxed)
        if waiting > 0 { logger.notice("shutting down: waiting for webhooks in flight", metadata: ["in_flight": "\(waiting)"]) }
        // Bounded polling: only while shutting down, and only until the count reaches zero.
        while waiting > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
            waiting = inFlight.load(ordering: .relaxed)
        }
        if waiting > 0 {
            logger.warning("shutting down with webhooks still in flight", metadata: ["in_flight": "\(waiting)"])
        }
        let closed = await registry.closeAll()
        logger.notice(
            "drained",
            metadata: ["clients_sent_away": "\(closed)", "waited_ms": "\((ContinuousClock.now - started).components.seconds * 1000)"]
        )
    }
}

extension ShutdownDrain: CustomStringConvertible {
    var description: String { "ShutdownDrain" }
}
