import Foundation
import HTTPTypes
import Logging
import OfflineQueue
import Prometheus
import ServiceLifecycle
import Synchronization
import TunnelProtocol

/// The server's side of the offline queue (docs/offline-queue.md): keeps each
/// channel's mode, delivers queued webhooks when their client is connected,
/// expires old ones and refreshes the queue's gauges.
///
/// Deliveries of one channel run one at a time on this replica, in arrival
/// order; with PostgreSQL the store's leases keep two replicas from
/// delivering the same webhook at once.
final class OfflineDelivery: Service, Sendable {
    let store: any OfflineQueueStore
    let settings: OfflineQueueSettings
    let registry: ChannelRegistry
    let metrics: QueueMetrics
    let requestTimeout: Duration
    let maxBodySize: Int
    let logger: Logger
    /// This process's name on the leases it takes.
    let owner = "replica-\(UUID().uuidString.lowercased())"
    /// A claimed webhook's lease: long enough for the local app's answer and
    /// a large body, short enough that a replica that died mid-delivery does
    /// not hold the webhook back for long.
    var lease: Duration { self.requestTimeout + .seconds(120) }
    /// Webhooks claimed at once: one claim serves this many deliveries, which
    /// still go one at a time, in arrival order.
    static let claimBatch = 32
    /// A claimed batch is delivered from for this long at most, so each of
    /// its webhooks starts with at least `requestTimeout` + 60 s of lease
    /// left; what is left of it then is released and claimed again.
    var batchLifetime: Duration { self.lease - self.requestTimeout - .seconds(60) }

    private struct State {
        /// Modes read from the store, briefly cached: every webhook for an away client asks.
        var modes: [String: (mode: OfflineMode?, at: ContinuousClock.Instant)] = [:]
        /// Channels being drained here now.
        var draining: Set<String> = []
        /// Channels woken while being drained: their drain looks once more.
        var again: Set<String> = []
        /// Channels with queued webhooks, as of the last tick: kept from the sweeper.
        var reserved: Set<String> = []
    }

    private let state = Mutex(State())
    private let wakeups: AsyncStream<String>
    private let wake: AsyncStream<String>.Continuation
    private static let modeCacheLifetime: Duration = .seconds(5)

    init(
        store: any OfflineQueueStore,
        settings: OfflineQueueSettings,
        registry: ChannelRegistry,
        metrics: QueueMetrics,
        requestTimeout: Duration,
        maxBodySize: Int,
        logger: Logger
    ) {
        self.store = store
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.requestTimeout = requestTimeout
        self.maxBodySize = maxBodySize
        self.logger = logger
        (self.wakeups, self.wake) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(10_000))
    }

    // MARK: Modes

    /// Records the mode a client sent (`/new`, or a WebSocket connect).
    func record(_ mode: OfflineMode, for id: String) async {
        self.state.withLock { $0.modes[id] = (mode, .now) }
        do {
            try await self.store.setMode(mode, channelID: id)
        } catch {
            self.logger.error("could not record the channel's offline mode", metadata: ["channel": "\(id)", "error": "\(error)"])
        }
    }

    /// The channel's recorded mode; nil when no client ever told it (the store does not know the channel).
    func mode(for id: String) async -> OfflineMode? {
        let cached = self.state.withLock { state -> OfflineMode?? in
            guard let entry = state.modes[id], ContinuousClock.now - entry.at < Self.modeCacheLifetime else { return nil }
            return .some(entry.mode)
        }
        if let cached { return cached }
        let mode: OfflineMode?
        do {
            mode = try await self.store.mode(channelID: id)
        } catch {
            self.logger.error("could not read the channel's offline mode", metadata: ["channel": "\(id)", "error": "\(error)"])
            return nil
        }
        self.state.withLock { $0.modes[id] = (mode, .now) }
        return mode
    }

    /// A client is connecting to `id`: its queued webhooks go out once it is attached.
    func clientConnecting(_ id: String, mode: OfflineMode?) async {
        // A reconnecting client sends the mode it had: written once, not on every connect (each write
        // is a synced one, and 10,000 clients coming back at once would queue behind them).
        if let mode, !self.knowsFreshly(mode, for: id) { await self.record(mode, for: id) }
        self.wake.yield(id)
    }

    /// Whether `mode` is what this replica recorded for `id` within the cache's lifetime.
    private func knowsFreshly(_ mode: OfflineMode, for id: String) -> Bool {
        self.state.withLock { state in
            guard let entry = state.modes[id] else { return false }
            return entry.mode == mode && ContinuousClock.now - entry.at < Self.modeCacheLifetime
        }
    }

    /// Channels the sweeper must keep: they still have queued webhooks. Asked
    /// of the store (once per sweep); the last known set if it fails.
    func reservedChannels() async -> Set<String> {
        do {
            let queued = Set(try await self.store.channelsWithQueuedWebhooks())
            self.state.withLock { $0.reserved = queued }
            return queued
        } catch {
            self.logger.error("could not list the queued channels; keeping the last known ones", metadata: ["error": "\(error)"])
            return self.state.withLock { $0.reserved }
        }
    }

    // MARK: Running

    /// Closes the store, once the server has stopped.
    func close() async {
        do {
            try await self.store.close()
        } catch {
            self.logger.warning("could not close the offline queue", metadata: ["error": "\(error)"])
        }
    }

    func run() async throws {
        await self.reserveQueuedChannels()
        try? await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.tickLoop() }
                for await id in self.wakeups {
                    group.addTask { await self.drain(id) }
                }
            }
        }
        self.wake.finish()
    }

    /// After a restart the embedded store remembers channels with queued
    /// webhooks: they are held again, so their clients (and webhooks) find them.
    /// With PostgreSQL every replica would claim them, so there the store is
    /// asked per webhook instead (``WebhookForwarder/routeOrQueue``).
    private func reserveQueuedChannels() async {
        guard self.settings.queueURL == nil else { return }
        do {
            let ids = try await self.store.channelsWithQueuedWebhooks()
            self.state.withLock { $0.reserved = Set(ids) }
            for id in ids { _ = await self.registry.issue(id) }
            if !ids.isEmpty { self.logger.info("channels with queued webhooks held again", metadata: ["count": "\(ids.count)"]) }
        } catch {
            self.logger.error("could not list the queued channels", metadata: ["error": "\(error)"])
        }
    }

    /// Every tick: wake connected channels with queued webhooks (retries that
    /// came due, webhooks another replica queued), refresh the gauges, and
    /// now and then expire old webhooks.
    private func tickLoop() async {
        let expiryEvery = min(max(self.settings.limits.maxAge / 4, .seconds(1)), .seconds(60))
        var lastExpiry = ContinuousClock.now
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: self.settings.tick)
            } catch {
                return
            }
            if ContinuousClock.now - lastExpiry >= expiryEvery {
                lastExpiry = .now
                await self.expire()
            }
            await self.refresh()
        }
    }

    private func expire() async {
        do {
            let expired = try await self.store.expire(now: Date())
            if expired > 0 {
                self.metrics.expired.increment(by: Int64(expired))
                self.logger.info("queued webhooks expired", metadata: ["count": "\(expired)"])
            }
        } catch {
            self.logger.error("could not expire queued webhooks", metadata: ["error": "\(error)"])
        }
    }

    private func refresh() async {
        do {
            let statistics = try await self.store.statistics()
            self.metrics.depth.set(Double(statistics.depth))
            self.metrics.bytes.set(Double(statistics.bytes))
            self.metrics.oldestAge.set(statistics.oldestQueuedAt.map { max(0, Date().timeIntervalSince($0)) } ?? 0)
            let queued = Set(try await self.store.channelsWithQueuedWebhooks())
            let now = ContinuousClock.now
            self.state.withLock { state in
                state.reserved = queued
                state.modes = state.modes.filter { now - $0.value.at < Self.modeCacheLifetime }
            }
            let connected = await self.registry.snapshot().connected
            for id in connected where queued.contains(id) {
                self.wake.yield(id)
            }
        } catch {
            self.logger.error("could not read the queue's state", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Draining

    /// Delivers the channel's due webhooks, oldest first, while its client is connected.
    private func drain(_ id: String) async {
        let first = self.state.withLock { state -> Bool in
            guard !state.draining.contains(id) else {
                state.again.insert(id)
                return false
            }
            state.draining.insert(id)
            return true
        }
        guard first else { return }
        var more = true
        while more {
            await self.drainOnce(id)
            more = self.state.withLock { state in
                if state.again.remove(id) != nil, !Task.isCancelled { return true }
                state.draining.remove(id)
                return false
            }
        }
    }

    /// Claims the channel's due webhooks a batch at a time and delivers them
    /// one by one. Those the app answered are removed together at the end of
    /// the batch (one statement, not synced: a crash delivers them again,
    /// which at-least-once allows); those not attempted, after a failure or
    /// when the client went away, are released for the next drain.
    private func drainOnce(_ id: String) async {
        // Waits (bounded) for a client that is still completing its upgrade.
        guard case .connected(let session) = await self.registry.session(for: id) else { return }
        while !Task.isCancelled {
            let batch: [QueuedWebhook]
            do {
                batch = try await self.store.claim(channelID: id, owner: self.owner, lease: self.lease, limit: Self.claimBatch)
            } catch {
                self.logger.error("could not claim queued webhooks", metadata: ["channel": "\(id)", "error": "\(error)"])
                return
            }
            guard !batch.isEmpty else { return }
            let claimedAt = ContinuousClock.now
            var answered: [String] = []
            var attempted = 0
            var goOn = true
            while goOn, attempted < batch.count, !Task.isCancelled, ContinuousClock.now - claimedAt < self.batchLifetime {
                let webhook = batch[attempted]
                attempted += 1
                let result = await self.deliver(webhook, over: session)
                if case .answered = result { answered.append(webhook.id) }
                goOn = await self.settle(webhook, result)
            }
            let recorded = await self.finish(batch, answered: answered, attempted: attempted)
            guard goOn, recorded else { return }
        }
    }

    /// Removes the answered webhooks and gives back the ones not attempted;
    /// returns whether the answers were recorded. Runs even when the drain is
    /// cancelled (a shutdown), so what was answered is not delivered again.
    private func finish(_ batch: [QueuedWebhook], answered: [String], attempted: Int) async -> Bool {
        let unattempted = batch[attempted...].map(\.id)
        return await Task {
            var recorded = true
            if !answered.isEmpty {
                do {
                    try await self.store.markDelivered(ids: answered)
                    self.metrics.delivered.increment(by: Int64(answered.count))
                } catch {
                    recorded = false
                    self.logger.error(
                        "could not record queued webhooks as delivered; they are delivered again when their lease ends",
                        metadata: ["count": "\(answered.count)", "error": "\(error)"]
                    )
                }
            }
            if !unattempted.isEmpty {
                do {
                    try await self.store.release(ids: unattempted, owner: self.owner)
                } catch {
                    self.logger.warning(
                        "could not release claimed webhooks; they wait for their lease to end",
                        metadata: ["count": "\(unattempted.count)", "error": "\(error)"]
                    )
                }
            }
            return recorded
        }.value
    }

    /// Records how a delivery went (an answered webhook is removed with the
    /// rest of its batch, by ``finish(_:answered:attempted:)``); returns
    /// whether the channel's next webhook may go now.
    private func settle(_ webhook: QueuedWebhook, _ result: DeliveryResult) async -> Bool {
        let attempt = webhook.attempts + 1
        var metadata: Logger.Metadata = [
            "channel": "\(webhook.channelID)", "delivery_id": "\(webhook.id)", "attempt": "\(attempt)",
        ]
        do {
            switch result {
            case .answered(let status):
                metadata["status"] = "\(status)"
                self.logger.info("queued webhook delivered", metadata: metadata)
                return true
            case .failed(let status, let why):
                let retryAt =
                    attempt >= self.settings.maxAttempts
                    ? nil : Date().addingTimeInterval(Self.seconds(OfflineQueueSettings.retryDelay(afterAttempt: attempt)))
                try await self.store.markFailed(id: webhook.id, retryAt: retryAt)
                metadata["status"] = "\(status)"
                metadata["error"] = "\(why)"
                metadata["retry"] = "\(retryAt.map { "\($0)" } ?? "none: kept as failed until it expires")"
                self.logger.warning("queued webhook not delivered", metadata: metadata)
                // The app is failing: the channel's other webhooks wait for the next tick.
                return false
            case .clientGone(let why):
                // Not the app's fault: due again at once, for the client's next connection.
                try await self.store.markFailed(id: webhook.id, retryAt: Date())
                metadata["error"] = "\(why)"
                self.logger.info("queued webhook interrupted: the client went away", metadata: metadata)
                return false
            }
        } catch {
            metadata["error"] = "\(error)"
            self.logger.error("could not record a queued webhook's delivery", metadata: metadata)
            return false
        }
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

extension OfflineDelivery {
    struct ModeError: Error {
        var message: String
    }

    /// The mode a client sent in `X-Webhook-When-Offline`; nil when it sent none.
    static func parseMode(_ fields: HTTPFields) throws(ModeError) -> OfflineMode? {
        guard let value = fields[OfflineQueueHeaders.whenOffline] else { return nil }
        guard let mode = OfflineMode(rawValue: value[...].trimmingOptionalWhitespace().lowercased()) else {
            throw ModeError(message: "\(OfflineQueueHeaders.whenOffline.rawName) must be 'queue' or 'reject', got '\(value)'")
        }
        return mode
    }
}
