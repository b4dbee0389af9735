import Logging
import NIOCore
import Synchronization

/// Takes captured exchanges off the data path and writes them to the store in batches (one
/// transaction per batch), so capture never waits for the disk. After each commit it announces the
/// new summaries on the event hub, so a page that reacts to an event finds the row.
///
/// The data path hands over each exchange once, when it starts (``track(_:)``: an append under a
/// lock); the writer reads the exchange when it writes a batch. An exchange that has ended by then
/// is written once, complete; one still running is written "in progress" and read again by each
/// later batch until it ends. The record is built here, off the event loop (docs/inspector.md,
/// "Cost").
///
/// A batch never carries more than the history keeps: webhooks that would be evicted by the same
/// transaction are dropped before it, never written (under a flood the history keeps the newest,
/// whether or not they were written first). The store runs at the lowest priority, so under a load
/// that keeps every core busy the writer falls behind. What waits stays bounded: at most the
/// history's count of exchanges started since the last batch wait (one more drops the oldest), and
/// once twice its byte bound (at most `pendingByteLimit` in all) of ended ones waits, the oldest
/// waiting are dropped down to what the history's bounds would keep anyway. A dropped webhook
/// whose start was already written is removed with the next batch, so no row stays "in progress".
final class HistoryWriter: Sendable {
    private struct State {
        /// Exchanges started since the last batch, oldest first; at most the history's count.
        var started = CircularBuffer<CapturedExchange>()
        /// Exchanges whose start a batch wrote and whose end none has yet, oldest first.
        var open: [CapturedExchange] = []
        /// Dropped webhooks whose row was written in progress: removed with the next batch.
        var forgotten: [String] = []
        /// Webhooks dropped since the last batch was logged.
        var dropped = 0
        var flushes: [CheckedContinuation<Void, Never>] = []
        var finished = false
    }

    /// At most about this many bytes of ended exchanges wait in memory for the store; a cut keeps
    /// half, or the history's byte bound if that is smaller (then the cut keeps what the history would).
    let pendingByteLimit: Int

    let store: HistoryStore
    let events: EventHub
    let logger: Logger
    private let state = Mutex(State())
    /// What the exchanges that ended since the last batch weigh (kept bytes and an allowance each).
    private let endedBytes = Atomic<Int>(0)
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(store: HistoryStore, events: EventHub, logger: Logger, pendingByteLimit: Int = 64 << 20) {
        self.store = store
        self.pendingByteLimit = pendingByteLimit
        self.events = events
        self.logger = logger
        (self.wakeups, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Takes a started exchange. Never blocks; wakes the writer for the first since its last batch.
    ///
    /// Only the newest of the history's count can be written by the next batch, so when one more
    /// waits, the oldest waiting is dropped at once: one per webhook under a flood. Dropping a
    /// thousand at a time (as a cut did) freed their memory in a burst on the event loop, more
    /// than the allocator's per-thread cache takes back, and every later allocation of that size
    /// took its slow path (docs/inspector.md, "Cost").
    func track(_ exchange: CapturedExchange) {
        // The dropped exchange is released when the tuple is taken apart, after the lock.
        let (first, _) = self.state.withLock { state -> (Bool, CapturedExchange?) in
            guard !state.finished else { return (false, nil) }
            state.started.append(exchange)
            guard state.started.count > max(self.kept.webhooks, 1) else { return (state.started.count == 1, nil) }
            let oldest = state.started.removeFirst()
            if oldest.drop() { state.forgotten.append(oldest.id) }
            state.dropped += 1
            return (false, oldest)
        }
        if first { self.wake.yield() }
    }

    /// An exchange ended, weighing `weight`. `rowWritten`: its start is in the store, so only a
    /// batch that reads it again ends the row "in progress": the writer is woken for it.
    func ended(weighing weight: Int, rowWritten: Bool) {
        let (_, keptBytes) = self.kept
        if self.endedBytes.add(weight, ordering: .relaxed).newValue > 2 * keptBytes {
            self.state.withLock { state in
                guard !state.finished else { return }
                self.cut(&state, keeping: self.kept.webhooks, bytes: keptBytes)
            }
        }
        if rowWritten { self.wake.yield() }
    }

    /// The most webhooks, and bytes of them, a batch carries: what the history keeps.
    private var kept: (webhooks: Int, bytes: Int) {
        (self.store.limits.maxWebhooks, min(self.store.limits.maxBytes, self.pendingByteLimit / 2))
    }

    /// Keeps the newest `keeping` started exchanges within `bytes`; the rest are dropped.
    private func cut(_ state: inout State, keeping: Int, bytes: Int) {
        let (first, keptBytes) = Self.newest(of: state.started, keeping: keeping, bytes: bytes)
        let count = state.started.distance(from: state.started.startIndex, to: first)
        guard count > 0 else { return }
        for exchange in state.started[..<first] where exchange.drop() { state.forgotten.append(exchange.id) }
        state.dropped += count
        state.started.removeFirst(count)
        self.endedBytes.store(keptBytes, ordering: .relaxed)
    }

    /// Where the newest of `exchanges` that fit `keeping` webhooks and `bytes` (by what each keeps
    /// so far; the newest always fits) begin, and what they weigh.
    private static func newest<Exchanges: BidirectionalCollection<CapturedExchange>>(
        of exchanges: Exchanges,
        keeping: Int,
        bytes: Int
    ) -> (first: Exchanges.Index, bytes: Int) {
        var keptBytes = 0
        var first = exchanges.endIndex
        var count = 0
        while first > exchanges.startIndex, count < keeping {
            let weight = exchanges[exchanges.index(before: first)].weight
            if count > 0, keptBytes + weight > bytes { break }
            keptBytes += weight
            first = exchanges.index(before: first)
            count += 1
        }
        return (first, keptBytes)
    }

    /// Returns once everything started before the call is committed (complete if it has ended).
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
    /// completes within it is written once, complete, and under load one
    /// transaction carries many webhooks, so the capture's cost per webhook
    /// falls as the rate rises; the page is at most this much behind.
    static let pacing: Duration = .milliseconds(100)

    /// The wait after a batch of at least ``busyBatch`` webhooks (a flood of 2,500 a second or
    /// more): longer batches, and at rates beyond what the history keeps in that time, fewer
    /// webhooks written only to be evicted. The page is then at most a second behind.
    static let busyPacing: Duration = .seconds(1)
    static let busyBatch = 256

    /// Writes batches until ``finish()``, then writes what is left.
    func run() async {
        for await _ in self.wakeups {
            let written = await self.writeBatch()
            // A pacing timer, not a wait for anything: see `pacing`.
            try? await Task.sleep(for: written >= Self.busyBatch ? Self.busyPacing : Self.pacing)
        }
        await self.writeBatch()
        let flushes = self.state.withLock { state in
            defer { state.flushes.removeAll() }
            return state.flushes
        }
        for flush in flushes { flush.resume() }
    }

    /// Stops taking exchanges; ``run()`` drains and returns.
    func finish() {
        self.state.withLock { $0.finished = true }
        self.wake.finish()
    }

    /// Writes what waits; returns how many webhooks the batch carried.
    @discardableResult
    private func writeBatch() async -> Int {
        let (exchanges, flushes) = self.state.withLock { state in
            defer {
                state.open.removeAll()
                state.started.removeAll(keepingCapacity: true)
                state.flushes.removeAll()
            }
            return (state.open + Array(state.started), state.flushes)
        }
        self.endedBytes.store(0, ordering: .relaxed)
        // What the transaction would evict at once is not written at all, nor read: the newest
        // within the history's bounds are kept (by their bytes so far), the rest dropped.
        let (maxWebhooks, keptBytes) = self.kept
        let (first, _) = Self.newest(of: exchanges, keeping: maxWebhooks, bytes: keptBytes)
        var forgottenNow: [String] = []
        for dropped in exchanges[..<first] where dropped.drop() { forgottenNow.append(dropped.id) }
        let snapshots = exchanges[first...].map { (exchange: $0, snapshot: $0.snapshot()) }

        var records: [WebhookRecord] = []
        records.reserveCapacity(snapshots.count)
        var stillOpen: [CapturedExchange] = []
        var endedMeanwhile = false
        for (exchange, snapshot) in snapshots {
            if snapshot.complete {
                records.append(snapshot.record)
                continue
            }
            stillOpen.append(exchange)
            if !snapshot.rowWritten {
                records.append(snapshot.record)
                endedMeanwhile = exchange.startWritten() || endedMeanwhile
            }
        }
        let (forgotten, dropped) = self.state.withLock { state in
            state.open = stillOpen
            defer {
                state.forgotten.removeAll()
                state.dropped = 0
            }
            return (state.forgotten + forgottenNow, state.dropped + first)
        }
        // An exchange that ended between its snapshot and the note that its start is written
        // did not wake the writer: the next batch writes its end.
        if endedMeanwhile { self.wake.yield() }
        if dropped > 0 {
            self.logger.notice(
                "the inspector's history kept the newest webhooks of a flood; older ones were not written",
                metadata: ["dropped": "\(dropped)"]
            )
        }
        if !records.isEmpty || !forgotten.isEmpty {
            do {
                try await self.store.write(records, forgetting: forgotten)
                for record in records { self.events.publish(summary: record) }
            } catch {
                self.logger.warning(
                    "could not save webhooks to the inspector's history",
                    metadata: ["error": "\(error)", "count": "\(records.count)"]
                )
            }
        }
        for flush in flushes { flush.resume() }
        return records.count
    }
}
