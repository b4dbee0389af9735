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
        let exchange = CapturedExchange(
            head: head,
            time: Int64((Date().timeIntervalSince1970 * 1000).rounded()),
            captureLimit: self.captureLimit,
            writer: self.writer
        )
        self.writer.track(exchange)
        return exchange
    }
}

/// One exchange being captured. The data path's calls only update memory
/// under a lock, keeping the heads as the data path's own values; ``HistoryWriter``
/// takes a ``snapshot()`` when it writes, and the record (with the heads turned
/// into ``HeaderField`` lists) is built then, on the writer's side.
final class CapturedExchange: WebhookExchangeObserver {
    private struct State {
        var request: BodyCapture
        var status: Int?
        var responseHeaders: (any ObservedHeaders)?
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

    /// The id's serial: its text is made only when asked for, off the event loop.
    private let serial = WebhookID.nextSerial()
    var id: String { WebhookID.string(self.serial) }
    private let head: ObservedRequestHead
    /// Milliseconds since 1970 when the head arrived.
    private let time: Int64
    private let started = ContinuousClock.now
    private let writer: HistoryWriter
    private let state: Mutex<State>

    init(head: ObservedRequestHead, time: Int64, captureLimit: Int, writer: HistoryWriter) {
        self.head = head
        self.time = time
        self.writer = writer
        self.state = Mutex(State(request: BodyCapture(limit: captureLimit, expected: head.headers.declaredLength)))
    }

    func requestBody(_ chunk: ByteBuffer) {
        self.state.withLock { $0.request.append(chunk) }
    }

    func responseHead(status: Int, headers: any ObservedHeaders) {
        let expected = headers.declaredLength
        self.state.withLock { state in
            state.status = status
            state.responseHeaders = headers
            state.response = BodyCapture(limit: state.request.limit, expected: expected)
        }
    }

    func responseBody(_ chunk: ByteBuffer) {
        self.state.withLock { $0.response?.append(chunk) }
    }

    func finished(error: String?) {
        let elapsed = ContinuousClock.now - self.started
        let ended = self.state.withLock { state -> (weight: Int, rowWritten: Bool)? in
            guard state.elapsed == nil else { return nil }
            // The copies `BodyCapture` put off: the data path calls this once the answer is out.
            state.request.settle()
            state.response?.settle()
            state.elapsed = elapsed
            state.error = error
            return state.dropped ? nil : (Self.weight(state), state.rowWritten)
        }
        if let ended { self.writer.ended(weighing: ended.weight, rowWritten: ended.rowWritten) }
    }

    /// Kept bytes, and a flat allowance for the rest: what the exchange weighs against the
    /// writer's bound on what waits in memory.
    private static func weight(_ state: State) -> Int {
        state.request.keptBytes + (state.response?.keptBytes ?? 0) + 512
    }

    /// The bytes it keeps now (for the writer's cut).
    var weight: Int {
        self.state.withLock { Self.weight($0) }
    }

    /// The record as it stands: complete once the exchange has ended, else its start. Only what
    /// the data path wrote is copied under the lock; the record is built after it.
    func snapshot() -> Snapshot {
        typealias End = (
            status: Int?, headers: (any ObservedHeaders)?, request: CapturedBody, response: CapturedBody?, error: String?, elapsed: Duration
        )
        // The bodies are read only once the exchange has ended: a copy taken while the data path
        // still appends would make its next append copy the kept bytes, on the event loop.
        let (end, rowWritten) = self.state.withLock { state -> (End?, Bool) in
            guard let elapsed = state.elapsed else { return (nil, state.rowWritten) }
            let end = (state.status, state.responseHeaders, state.request.finish(), state.response?.finish(), state.error, elapsed)
            return (end, state.rowWritten)
        }
        let requestHeaders = self.head.headers.headerFields
        var record = WebhookRecord(
            id: self.id,
            time: self.time,
            method: self.head.method,
            path: self.head.path.isEmpty ? "/" : self.head.path,
            requestHeaders: requestHeaders,
            requestBody: CapturedBody.empty,
            replayOf: self.head.replayOf,
            deliveryID: self.head.replayOf == nil ? requestHeaders.deliveryID : nil,
            state: .inProgress
        )
        guard let end else { return Snapshot(record: record, complete: false, rowWritten: rowWritten) }
        record.status = end.status
        record.responseHeaders = end.headers?.headerFields
        record.requestBody = end.request
        record.responseBody = end.response
        record.error = end.error
        record.durationMilliseconds = Double(end.elapsed.components.seconds) * 1000 + Double(end.elapsed.components.attoseconds) / 1e15
        record.state = .complete
        return Snapshot(record: record, complete: true, rowWritten: rowWritten)
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
