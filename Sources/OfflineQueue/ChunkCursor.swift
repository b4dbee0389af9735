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
