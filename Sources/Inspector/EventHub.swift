import Foundation
import Synchronization

/// Fans server-sent events out to every open `/api/events` stream.
///
/// Each subscriber has its own bounded buffer: a page that stops reading
/// loses old events (it re-reads the list when it reconnects), never slows
/// the writer.
final class EventHub: Sendable {
    private struct State {
        var subscribers: [UUID: AsyncStream<String>.Continuation] = [:]
        var closed = false
    }

    private let state = Mutex(State())

    func subscribe() -> (UUID, AsyncStream<String>) {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1_000))
        let id = UUID()
        let closed = self.state.withLock { state in
            if !state.closed { state.subscribers[id] = continuation }
            return state.closed
        }
        if closed { continuation.finish() }
        return (id, stream)
    }

    func unsubscribe(_ id: UUID) {
        self.state.withLock { $0.subscribers.removeValue(forKey: id) }?.finish()
    }

    /// Sends one event (already formatted as SSE text) to every subscriber.
    func publish(_ text: String) {
        let subscribers = self.state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers { subscriber.yield(text) }
    }

    /// `event: webhook` with the summary as data.
    func publish(summary record: WebhookRecord) {
        // No page open: skip encoding the summary.
        guard self.state.withLock({ !$0.subscribers.isEmpty }) else { return }
        self.publish("event: webhook\ndata: \(JSONText.string(record.summaryJSON))\n\n")
    }

    var subscriberCount: Int { self.state.withLock { $0.subscribers.count } }

    /// Ends every stream (shutdown), so open pages do not hold the server up.
    func close() {
        let subscribers = self.state.withLock { state in
            state.closed = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }
}
