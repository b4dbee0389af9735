import Logging
import Synchronization

/// Takes finished and started webhooks off the data path and writes them to
/// the store in batches (one transaction per batch), so capture never waits
/// for the disk. After each commit it announces the new summaries on the
/// event hub, so a page that reacts to an event finds the row.
final class HistoryWriter: Sendable {
    private struct State {
        var pending: [WebhookRecord] = []
        var flushes: [CheckedContinuation<Void, Never>] = []
        var finished = false
    }

    let store: HistoryStore
    let events: EventHub
    let logger: Logger
    private let state = Mutex(State())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(store: HistoryStore, events: EventHub, logger: Logger) {
        self.store = store
        self.events = events
        self.logger = logger
        (self.wakeups, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a record (a newer version of the same id replaces an older
    /// one still waiting). Never blocks.
    func enqueue(_ record: WebhookRecord) {
        let accepted = self.state.withLock { state -> Bool in
            guard !state.finished else { return false }
            if let index = state.pending.lastIndex(where: { $0.id == record.id }) {
                state.pending[index] = record
            } else {
                state.pending.append(record)
            }
            return true
        }
        if accepted { self.wake.yield() }
    }

    /// Returns once everything queued before the call is committed.
    func flush() async {
        await withCheckedContinuation { continuation in
            let run = self.state.withLock { state -> Bool in
                guard !state.finished else { return false }
                state.flushes.append(continuation)
                return true
            }
            if run { self.wake.yield() } else { continuation.resume() }
        }
    }

    /// How long the writer waits after a batch before the next. A webhook that
    /// completes within it is written once (its start and end versions
    /// coalesce), and under load one transaction carries many webhooks, so the
    /// capture's cost per webhook falls as the rate rises; the page is at most
    /// this much behind.
    static let pacing: Duration = .milliseconds(20)

    /// Writes batches until ``finish()``, then writes what is left.
    func run() async {
        for await _ in self.wakeups {
            await self.writeBatch()
            // A pacing timer, not a wait for anything: see `pacing`.
            try? await Task.sleep(for: Self.pacing)
        }
        await self.writeBatch()
        let flushes = self.state.withLock { state in
            defer { state.flushes.removeAll() }
            return state.flushes
        }
        for flush in flushes { flush.resume() }
    }

    /// Stops taking records; ``run()`` drains and returns.
    func finish() {
        self.state.withLock { $0.finished = true }
        self.wake.finish()
    }

    private func writeBatch() async {
        let (batch, flushes) = self.state.withLock { state in
            defer {
                state.pending.removeAll(keepingCapacity: true)
                state.flushes.removeAll()
            }
            return (state.pending, state.flushes)
        }
        if !batch.isEmpty {
            do {
                try await self.store.write(batch)
                for record in batch { self.events.publish(summary: record) }
            } catch {
                self.logger.warning("could not save webhooks to the inspector's history", metadata: ["error": "\(error)", "count": "\(batch.count)"])
            }
        }
        for flush in flushes { flush.resume() }
    }
}
