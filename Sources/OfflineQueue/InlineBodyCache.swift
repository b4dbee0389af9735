import NIOCore
import Synchronization

/// Bodies of one small chunk that came with their webhooks' claim, kept until
/// the delivery reads them or the webhook is settled: a delivery of a small
/// webhook then reads nothing more from the store (docs/offline-queue.md,
/// "Storage"). Bounded, so a burst of claims cannot hold more than
/// ``budget`` bytes; past it, bodies are read from the store as usual.
final class InlineBodyCache: Sendable {
    /// A body of one chunk at most this large comes with its claim.
    static let bodyLimit: Int64 = 16 * 1_024
    /// Bodies held at once, at most.
    static let budget = 8 << 20

    private let state = Mutex<(bodies: [String: ByteBuffer], bytes: Int)>(([:], 0))

    /// Keeps what fits in the budget.
    func keep(_ bodies: [(id: String, data: ByteBuffer)]) {
        state.withLock { state in
            for (id, data) in bodies where state.bytes + data.readableBytes <= Self.budget {
                state.bytes += data.readableBytes - (state.bodies.updateValue(data, forKey: id)?.readableBytes ?? 0)
            }
        }
    }

    /// The body of `id`, taken out of the cache; nil when it was not kept.
    func take(_ id: String) -> ByteBuffer? {
        state.withLock { state in
            guard let data = state.bodies.removeValue(forKey: id) else { return nil }
            state.bytes -= data.readableBytes
            return data
        }
    }

    /// Drops what is kept for these webhooks (they were settled unread).
    func drop(_ ids: some Sequence<String>) {
        for id in ids { _ = take(id) }
    }

    /// A stream of the one kept body of `id`; nil when it was not kept.
    func stream(of id: String) -> AsyncThrowingStream<ByteBuffer, any Error>? {
        guard let data = take(id) else { return nil }
        return AsyncThrowingStream { continuation in
            continuation.yield(data)
            continuation.finish()
        }
    }
}
