import NIOCore
import Synchronization

/// The next chunk index of a body being read: the state of a pull-based
/// `AsyncThrowingStream`, which asks for one chunk at a time.
final class ChunkCursor: Sendable {
    private let state = Mutex<Int?>(0)

    /// The index to read now; nil once the body ended.
    func next() -> Int? {
        state.withLock { index in
            defer { index = index.map { $0 + 1 } }
            return index
        }
    }

    func finish() {
        state.withLock { $0 = nil }
    }
}

extension ChunkCursor {
    /// A stored body as the stores hand it to delivery: the inline copy kept with its claim if
    /// there is one, else one chunk at a time from `chunk(index)`, which gives the chunk and
    /// whether it is the last (nil past the end).
    static func body(
        of id: String,
        inline: InlineBodyCache,
        chunk: @escaping @Sendable (Int) async throws -> (ByteBuffer, Bool)?
    ) -> AsyncThrowingStream<ByteBuffer, any Error> {
        if let kept = inline.stream(of: id) { return kept }
        let cursor = ChunkCursor()
        return AsyncThrowingStream {
            guard let index = cursor.next() else { return nil }
            guard let (data, isLast) = try await chunk(index) else {
                cursor.finish()
                return nil
            }
            if isLast { cursor.finish() }
            return data
        }
    }
}
