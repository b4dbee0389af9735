import Crypto
import NIOCore

/// A body seen chunk by chunk: its first `limit` bytes, its total size and
/// its SHA-256, computed as it streams, so a body of any size costs at most
/// `limit` bytes of memory (docs/inspector.md, "Capture limit").
struct BodyCapture: Sendable {
    let limit: Int
    private(set) var head = ByteBuffer()
    private(set) var size = 0
    private var hasher = SHA256()

    init(limit: Int) {
        self.limit = limit
    }

    mutating func append(_ chunk: ByteBuffer) {
        self.size += chunk.readableBytes
        chunk.withUnsafeReadableBytes { self.hasher.update(bufferPointer: $0) }
        let room = self.limit - self.head.readableBytes
        if room > 0 {
            var chunk = chunk
            if let slice = chunk.readSlice(length: min(room, chunk.readableBytes)) {
                self.head.writeImmutableBuffer(slice)
            }
        }
    }

    var truncated: Bool { self.size > self.head.readableBytes }

    /// The finished body: the kept bytes plus size and hex SHA-256.
    func finish() -> CapturedBody {
        let digest = self.hasher.finalize()
        return CapturedBody(
            bytes: self.head,
            size: self.size,
            sha256: Hex.encode(digest),
            truncated: self.truncated
        )
    }
}

/// A captured body as stored: `bytes` is the whole body unless `truncated`.
struct CapturedBody: Sendable, Equatable {
    var bytes: ByteBuffer
    var size: Int
    var sha256: String
    var truncated: Bool

    static let empty = BodyCapture(limit: 0).finish()
}

/// Lower-case hex, for digests and signatures.
enum Hex {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
