import Crypto
import NIOCore

/// A body seen chunk by chunk: its first `limit` bytes, its total size and,
/// once it outgrows `limit`, its SHA-256 computed as it streams, so a body of
/// any size costs at most `limit` bytes of memory (docs/inspector.md,
/// "Capture limit"). A body kept whole is not hashed here: its digest is
/// computed from the stored bytes when someone asks for it, which keeps
/// SHA-256 off the event loop for nearly every webhook.
///
/// Large chunks are not copied as they arrive: while the body fits `limit`, they are held as
/// they are (the data path holds them too, to resend the request) and copied by ``settle()``,
/// which the observer calls once the webhook's answer has gone out. The copy of a 64 KiB body
/// then no longer delays the webhook it captures (docs/inspector.md, "Cost").
struct BodyCapture: Sendable {
    let limit: Int
    /// The body's declared length (`Content-Length`), when known.
    let expected: Int?
    private var head = ByteBuffer()
    private(set) var size = 0
    /// Started when the body first passes `limit`, with the kept head.
    private var hasher: SHA256?
    /// Chunks held without a copy, in order after `head`; all within `limit`.
    private var held: [ByteBuffer] = []
    private var heldBytes = 0

    /// Chunks from this size on are held rather than copied at once; a smaller copy costs less
    /// than holding it.
    static let holdFrom = 4 * 1024
    /// At most this many chunks are held; the rest is copied as it comes.
    static let maxHeld = 16

    /// The bytes kept so far, copied or held.
    var keptBytes: Int { self.head.readableBytes + self.heldBytes }

    init(limit: Int, expected: Int? = nil) {
        self.limit = limit
        self.expected = expected
    }

    /// The `Content-Length` in `headers`, if there is exactly one and it is a number.
    static func declaredLength(_ headers: [HeaderField]) -> Int? {
        Self.declaredLength(headers, isLength: { $0.isNamed("content-length") }, value: \.value)
    }

    /// The one rule for every kind of head: the value of the only field `isLength` picks, if it is
    /// a number of 0 or more; nil for none, several, or anything else.
    static func declaredLength<Fields: Sequence>(
        _ fields: Fields,
        isLength: (Fields.Element) -> Bool,
        value: (Fields.Element) -> String
    ) -> Int? {
        var found: Int?
        for field in fields where isLength(field) {
            guard found == nil, let length = Int(value(field)), length >= 0 else { return nil }
            found = length
        }
        return found
    }

    mutating func append(_ chunk: ByteBuffer) {
        let length = chunk.readableBytes
        if self.hasher == nil, self.size + length <= self.limit, length >= Self.holdFrom || !self.held.isEmpty,
            self.held.count < Self.maxHeld
        {
            self.held.append(chunk)
            self.heldBytes += length
            self.size += length
            return
        }
        self.settle()
        if self.size == 0, chunk.readableBytes > 0 {
            // One allocation for what will be kept: grown chunk by chunk, a 64 KiB body was
            // reallocated and copied several times, on the event loop (docs/inspector.md, "Cost").
            self.head.reserveCapacity(min(self.limit, max(self.expected ?? 0, chunk.readableBytes)))
        }
        self.size += chunk.readableBytes
        var rest = chunk
        let room = self.limit - self.head.readableBytes
        if room > 0, let slice = rest.readSlice(length: min(room, rest.readableBytes)) {
            self.head.writeImmutableBuffer(slice)
        }
        guard self.size > self.limit else { return }
        if self.hasher == nil {
            var hasher = SHA256()
            self.head.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            self.hasher = hasher
        }
        rest.withUnsafeReadableBytes { self.hasher?.update(bufferPointer: $0) }
    }

    /// Copies the held chunks into the kept bytes, with one allocation for what will be kept.
    mutating func settle() {
        guard !self.held.isEmpty else { return }
        self.head.reserveCapacity(min(self.limit, max(self.expected ?? 0, self.keptBytes)))
        for chunk in self.held { self.head.writeImmutableBuffer(chunk) }
        self.held.removeAll()
        self.heldBytes = 0
    }

    var truncated: Bool { self.size > self.keptBytes }

    /// The finished body: the kept bytes plus size and, for a truncated body, its hex SHA-256
    /// (empty for a whole body: ``CapturedBody/withDigest()`` computes it from the bytes).
    func finish() -> CapturedBody {
        var settled = self
        settled.settle()
        return CapturedBody(
            bytes: settled.head,
            size: settled.size,
            sha256: settled.hasher.map { Hex.encode($0.finalize()) } ?? "",
            truncated: settled.truncated
        )
    }
}

/// A captured body as stored: `bytes` is the whole body unless `truncated`.
struct CapturedBody: Sendable, Equatable {
    var bytes: ByteBuffer
    var size: Int
    /// Hex SHA-256 of the whole body. Captured only for a truncated body; empty for one kept whole
    /// until ``withDigest()`` computes it from `bytes`.
    var sha256: String
    var truncated: Bool

    /// This body with ``sha256`` filled in (computed from `bytes` when the body is whole).
    func withDigest() -> CapturedBody {
        guard self.sha256.isEmpty, !self.truncated else { return self }
        var body = self
        body.sha256 = self.bytes.withUnsafeReadableBytes { Hex.encode(SHA256.hash(data: $0)) }
        return body
    }

    static let empty = BodyCapture(limit: 0).finish().withDigest()
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
