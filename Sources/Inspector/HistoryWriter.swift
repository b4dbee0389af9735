import Logging
import NIOCore
import Synchronization

/// Takes finished and started webhooks off the data path and writes them to
/// the store in batches (one transaction per batch), so capture never waits
/// for the disk. After each commit it announces the new summaries on the
/// event hub, so a page that reacts to an event finds the row.
///
/// A batch never carries more than the history keeps: webhooks that would be
/// evicted by the same transaction are dropped before it, never written
/// (under a flood the history keeps the newest, whether or not they were
/// written first). The store runs at the lowest priority, so under a load
/// that keeps every core busy the writer falls behind. What waits stays
/// bounded: once twice the history's count, or twice its byte bound (at most
/// `pendingByteLimit` in all), waits, the oldest waiting webhooks are dropped
/// down to what the history's bounds would keep anyway (docs/inspector.md,
/// "Cost"). A dropped webhook whose start was already written is removed
/// with the next batch, so no row stays "in progress".
final class HistoryWriter: Sendable {
    private struct State {
        var pending: [WebhookRecord] = []
        /// Where each id waits in `pending`: a webhook's end replaces its start without a scan
        /// (a linear search here was 7 % of the client's CPU under load, on the event loop).
        var positions: [String: Int] = [:]
        /// Kept bytes waiting (bodies and a flat allowance per record).
        var pendingBytes = 0
        /// Dropped while waiting: removed from the store with the next batch.
        var forgotten: [String] = []
        var flushes: [CheckedContinuation<Void, Never>] = []
        var finished = false
    }

    /// At most about this many bytes of records wait in memory for the store; a cut keeps half,
    /// or the history's byte bound if that is smaller (then the cut keeps what the history would).
    let pendingByteLimit: Int

    let store: HistoryStore
    let events: EventHub
    let logger: Logger
    private let state = Mutex(State())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(store: HistoryStore, events: EventHub, logger: Logger, pendingByteLimit: Int = 64 << 20) {
        self.store = store
        self.pendingByteLimit = pendingByteLimit
        self.events = events
        self.logger = logger
        (self.wakeups, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a record (a newer version of the same id replaces an older
    /// one still waiting). Never blocks.
    func enqueue(_ record: WebhookRecord) {
        let accepted = self.state.withLock { state -> Bool in
            guard !state.finished else { return false }
            let size = Self.weight(record)
            if let index = state.positions[record.id] {
                state.pendingBytes += size - Self.weight(state.pending[index])
                state.pending[index] = record
            } else {
                state.positions[record.id] = state.pending.count
                state.pending.append(record)
                state.pendingBytes += size
            }
            // Twice the bounds before a cut, so the cut's cost is spread over many webhooks.
            let (maxWebhooks, keptBytes) = self.kept
            if state.pending.count >= 2 * max(maxWebhooks, 1) || state.pendingBytes > 2 * keptBytes {
                Self.dropOldest(&state, keeping: maxWebhooks, bytes: keptBytes)
            }
            return true
        }
        if accepted { self.wake.yield() }
    }

    /// The most webhooks, and bytes of them, a batch carries: what the history keeps.
    private var kept: (webhooks: Int, bytes: Int) {
        (self.store.limits.maxWebhooks, min(self.store.limits.maxBytes, self.pendingByteLimit / 2))
    }

    /// What a record weighs against ``pendingByteLimit``.
    private static func weight(_ record: WebhookRecord) -> Int {
        record.requestBody.bytes.readableBytes + (record.responseBody?.bytes.readableBytes ?? 0) + 512
    }

    /// Keeps the newest `keeping` records within `bytes`; the rest are forgotten.
    private static func dropOldest(_ state: inout State, keeping: Int, bytes: Int) {
        var kept = 0
        var keptBytes = 0
        var first = state.pending.endIndex
        while first > state.pending.startIndex, kept < keeping {
            let weight = Self.weight(state.pending[first - 1])
            if kept > 0, keptBytes + weight > bytes { break }
            kept += 1
            keptBytes += weight
            first -= 1
        }
        guard first > 0 else { return }
        state.forgotten += state.pending[..<first].map(\.id)
        state.pending.removeFirst(first)
        state.pendingBytes = keptBytes
        state.positions.removeAll(keepingCapacity: true)
        for (index, record) in state.pending.enumerated() { state.positions[record.id] = index }
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

    /// Stops taking records; ``run()`` drains and returns.
    func finish() {
        self.state.withLock { $0.finished = true }
        self.wake.finish()
    }

    /// Writes what waits; returns how many webhooks the batch carried.
    @discardableResult
    private func writeBatch() async -> Int {
        let (batch, forgotten, flushes) = self.state.withLock { state in
            // What the transaction would evict at once is not written at all.
            let (maxWebhooks, keptBytes) = self.kept
            if state.pending.count > maxWebhooks || state.pendingBytes > keptBytes {
                Self.dropOldest(&state, keeping: maxWebhooks, bytes: keptBytes)
            }
            defer {
                state.pending.removeAll(keepingCapacity: true)
                state.positions.removeAll(keepingCapacity: true)
                state.pendingBytes = 0
                state.forgotten.removeAll()
                state.flushes.removeAll()
            }
            return (state.pending, state.forgotten, state.flushes)
        }
        if !forgotten.isEmpty {
            self.logger.notice(
                "the inspector's history kept the newest webhooks of a flood; older ones were not written",
                metadata: ["dropped": "\(forgotten.count)"]
            )
        }
        if !batch.isEmpty || !forgotten.isEmpty {
            do {
                try await self.store.write(batch, forgetting: forgotten)
                for record in batch { self.events.publish(summary: record) }
            } catch {
                self.logger.warning("could not save webhooks to the inspector's history", metadata: ["error": "\(error)", "count": "\(batch.count)"])
            }
        }
        for flush in flushes { flush.resume() }
        return batch.count
    }
}
