import Foundation
import NIOCore
import Synchronization

/// The inspector's ``WebhookObserver``: keeps each exchange's heads and the
/// first bytes, size and SHA-256 of each body, and hands the record to the
/// ``HistoryWriter`` when the webhook starts and when it ends.
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
        self.writer.enqueue(record)
        return CapturedExchange(record: record, captureLimit: self.captureLimit, writer: self.writer)
    }
}

/// One exchange being captured. Its methods only update memory under a
/// lock; the last one queues the finished record.
final class CapturedExchange: WebhookExchangeObserver {
    private struct State {
        var record: WebhookRecord
        var request: BodyCapture
        var response: BodyCapture?
        var done = false
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
        let record = self.state.withLock { state -> WebhookRecord? in
            guard !state.done else { return nil }
            state.done = true
            state.record.requestBody = state.request.finish()
            state.record.responseBody = state.response?.finish()
            state.record.error = error
            state.record.durationMilliseconds =
                Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            state.record.state = .complete
            return state.record
        }
        if let record { self.writer.enqueue(record) }
    }
}
