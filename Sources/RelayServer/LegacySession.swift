import Foundation
import NIOCore
import Synchronization
import TunnelProtocol
import WSCore

/// A client speaking the original JSON framing (no subprotocol offered).
///
/// Each webhook is one text message out and one back, matched by `req_id`.
final class LegacySession: Sendable {
    typealias Reply = AsyncThrowingStream<ByteBuffer, any Error>

    private struct State {
        var pending: [String: Reply.Continuation] = [:]
        var closed = false
    }

    private let outbound: WebSocketOutboundWriter
    private let state = Mutex(State())
    private let maxPending: Int

    struct Closed: Error {}
    struct TooMany: Error {}

    init(outbound: WebSocketOutboundWriter, maxPending: Int) {
        self.outbound = outbound
        self.maxPending = maxPending
    }

    /// ``exchange(_:)`` bounded by `timeout`: nil when no answer came in time.
    func exchange(_ request: ByteBuffer, timeout: Duration) async throws -> ByteBuffer? {
        try await result(before: .now + timeout) { try await self.exchange(request) }
    }

    /// Sends a whole HTTP/1.1 request and waits for the whole response.
    /// Cancelling the calling task stops the wait.
    func exchange(_ request: ByteBuffer) async throws -> ByteBuffer {
        let id = UUID().uuidString.lowercased()
        let (reply, continuation) = Reply.makeStream()
        let registered: Result<Void, any Error> = self.state.withLock { state in
            guard !state.closed else { return .failure(Closed()) }
            guard state.pending.count < self.maxPending else { return .failure(TooMany()) }
            state.pending[id] = continuation
            return .success(())
        }
        try registered.get()
        defer { _ = self.state.withLock { $0.pending.removeValue(forKey: id) } }
        try await self.outbound.write(.text(LegacyMessage(requestID: id, payload: request).json()))
        for try await payload in reply { return payload }
        try Task.checkCancellation()
        throw Closed()
    }

    /// Handles one text message from the client. Replies to requests that
    /// are no longer waiting are dropped.
    func receive(_ text: String) throws {
        let message = try LegacyMessage(json: text)
        let continuation = self.state.withLock { $0.pending.removeValue(forKey: message.requestID) }
        continuation?.yield(message.payload)
        continuation?.finish()
    }

    /// The WebSocket closed: every waiting webhook fails.
    func close() {
        let all = self.state.withLock { state in
            state.closed = true
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for continuation in all { continuation.finish(throwing: Closed()) }
    }
}
