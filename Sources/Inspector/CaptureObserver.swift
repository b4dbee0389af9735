import Foundation
import NIOCore
import Synchronization

/// The inspector's ``WebhookObserver``: keeps each exchange's heads and the
/// first bytes, size and SHA-256 of each body, and hands the exchange to the
/// ``HistoryWriter`` when the webhook starts. The writer reads it when it
/// writes its next batch, so the data path never builds a record or queues
/// one twice (docs/inspector.md, "Cost").
struct CaptureObserver: WebhookObserver {
    let writer: HistoryWriter
    let captureLimit: Int

    func webhookStarted(_ head: ObservedRequestHead) -> any WebhookExchangeObserver {
        let record = WebhookRecord(
            id: WebhookID.next(),
            time: Int64((Date().timeIntervalSince1970 * 1000).rounded()),
            method: head.method,
            path: head.path.isEmpty ? "/" : head.path,
            requestHeaders: head.headers,
            requestBody: CapturedBody.empty,
            replayOf: head.replayOf,
            deliveryID: head.replayOf == nil ? head.deliveryID : nil,
            state: .inProgress
        )
        let exchange = CapturedExchange(record: record, captureLimit: self.captureLimit, writer: self.writer)
        self.writer.track(exchange)
        return exchange
    }
}

/// One exchange being captured. The data path's calls only update memory
/// under a lock; ``HistoryWriter`` takes a ``snapshot()`` when it writes.
final class CapturedExchange: WebhookExchangeObserver {
    private struct State {
        var record: WebhookRecord
        var request: BodyCapture
        var response: BodyCapture?
        var elapsed: Duration?
        var error: String?
        /// The writer wrote this webhook's row while it was still in progress.
        var rowWritten = false
        /// The writer dropped it (a flood); its end no longer counts against the writer's bound.
        var dropped = false
    }

    /// What the writer learns from one look at an exchange.
    struct Snapshot {
        var record: WebhookRecord
        /// The exchange has ended: this is its last version.
        var complete: Bool
        /// Its row was written in progress by an earlier batch (so dropping it must delete the row).
        var rowWritten: Bool
    }

    let id: String
    private let started = ContinuousClock.now
    private let writer: HistoryWriter
    private let state: Mutex<State>

    init(record: WebhookRecord, captureLimit: Int, writer: HistoryWriter) {
        self.id = record.id
        self.writer = writer
        let request = BodyCapture(limit: captureLimit, expected: BodyCapture.declaredLength(record.requestHeaders))
        self.state = Mutex(State(record: record, request: request))
    }

    func requestBody(_ chunk: ByteBuffer) {
        self.state.withLock { $0.request.append(chunk) }
    }

    func responseHead(status: Int, headers: [HeaderField]) {
        self.state.withLock { state in
            state.record.status = status
            state.record.responseHeaders = headers
            state.response = BodyCapture(limit: state.request.limit, expected: BodyCapture.declaredLength(headers))
        }
    }

    func responseBody(_ chunk: ByteBuffer) {
        self.state.withLock { $0.response?.append(chunk) }
    }

    func finished(error: String?) {
        let elapsed = ContinuousClock.now - self.started
        let ended = self.state.withLock { state -> (weight: Int, rowWritten: Bool)? in
            guard state.elapsed == nil else { return nil }
            state.elapsed = elapsed
            state.error = error
            return state.dropped ? nil : (Self.weight(state), state.rowWritten)
        }
        if let ended { self.writer.ended(weighing: ended.weight, rowWritten: ended.rowWritten) }
    }

    /// Kept bytes, and a flat allowance for the rest: what the exchange weighs against the
    /// writer's bound on what waits in memory.
    private static func weight(_ state: State) -> Int {
        state.request.head.readableBytes + (state.response?.head.readableBytes ?? 0) + 512
    }

    /// The bytes it keeps now (for the writer's cut).
    var weight: Int {
        self.state.withLock { Self.weight($0) }
    }

    /// The record as it stands: complete once the exchange has ended, else its start.
    func snapshot() -> Snapshot {
        self.state.withLock { state in
            guard let elapsed = state.elapsed else {
                return Snapshot(record: state.record, complete: false, rowWritten: state.rowWritten)
            }
            var record = state.record
            record.requestBody = state.request.finish()
            record.responseBody = state.response?.finish()
            record.error = state.error
            record.durationMilliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            record.state = .complete
            return Snapshot(record: record, complete: true, rowWritten: state.rowWritten)
        }
    }

    /// The writer is writing its start: a later drop must delete the row. Returns whether it has
    /// ended since the writer's snapshot (its end then woke nobody).
    func startWritten() -> Bool {
        self.state.withLock { state in
            state.rowWritten = true
            return state.elapsed != nil
        }
    }

    /// The writer will not write it (again); returns whether its row was written in progress.
    func drop() -> Bool {
        self.state.withLock { state in
            state.dropped = true
            return state.rowWritten
        }
    }
}
