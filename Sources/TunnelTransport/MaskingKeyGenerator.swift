#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The random source of a client's WebSocket masking keys: the kernel's, read 4 KiB at a time.
///
/// RFC 6455 §5.3 asks for keys from a strong source of entropy, and NIO's
/// `WebSocketMaskingKey.random()` asks the kernel (`getrandom`) for each frame: two system calls
/// per webhook, 2.0 of the client's 7.2 per 1 KiB webhook under load (docs/performance.md). Reading
/// the same source (`/dev/urandom`) in blocks of 512 keys keeps the keys as unpredictable for a
/// fraction of the calls. One generator belongs to one ``TunnelHandler``, on its event loop.
struct MaskingKeyGenerator: RandomNumberGenerator {
    static let blockWords = 512

    private var block: [UInt64] = []
    private var index = 0

    mutating func next() -> UInt64 {
        if self.index == self.block.count { self.refill() }
        defer { self.index += 1 }
        return self.block[self.index]
    }

    private mutating func refill() {
        var words = [UInt64](repeating: 0, count: Self.blockWords)
        if !Self.readKernelRandom(into: &words) {
            // No `/dev/urandom` (a sandbox, or not Linux): the standard library's source, a word at a time.
            var system = SystemRandomNumberGenerator()
            for index in words.indices { words[index] = system.next() }
        }
        self.block = words
        self.index = 0
    }

    /// Fills `words` from `/dev/urandom`; false if it cannot be read whole.
    private static func readKernelRandom(into words: inout [UInt64]) -> Bool {
        #if os(Linux)
        let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return words.withUnsafeMutableBytes { bytes in
            guard let base = bytes.baseAddress else { return false }
            var filled = 0
            while filled < bytes.count {
                let count = read(descriptor, base + filled, bytes.count - filled)
                if count > 0 {
                    filled += count
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
        }
        #else
        return false
        #endif
    }
}
