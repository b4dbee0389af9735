import NIOCore

/// Decodes the message a peer sends on a TCP stream, from bytes as they arrive (docs/memberlist-wire.md §7).
///
/// A Go peer neither sends a length nor half-closes the connection, so ``next()`` tells from the
/// parse itself when the message is complete. It accepts an optional label header at the start of the
/// connection (stripped, not checked), plain messages, and messages wrapped in `09 {Algo, Buf}` as
/// default-config Go sends them. Encrypted streams (`0x0A`) are rejected.
///
/// Memory is bounded against a hostile peer: a message (and a compressed one's decompressed form)
/// may be at most `maxMessageSize` bytes, a push/pull at most 1,048,576 node states and 20 MiB of user
/// state, a user message at most 20 MiB, as latest Go enforces. As long as ``next()`` is called after
/// every ``append(_:)``, the decoder never holds more than `maxMessageSize` bytes of an unfinished
/// message.
public struct StreamMessageDecoder: Sendable {
    /// 40 MiB: latest Go's limit on decompressed data, which bounds every stream message a default
    /// (compressing) Go node can send.
    public static let defaultMaxMessageSize = 40 << 20

    private enum Form {
        case undetermined
        case plain
        /// Walking the `{Algo, Buf}` map that follows the `0x09` byte.
        case compressed(MessagePackScanner)
    }

    private let maxMessageSize: Int
    private var buffer: [UInt8] = []
    /// Where the current message starts in `buffer`.
    private var messageStart = 0
    private var atConnectionStart = true
    private var form = Form.undetermined
    private var parser = StreamMessageParser(startingAt: 0)

    public init(maxMessageSize: Int = StreamMessageDecoder.defaultMaxMessageSize) {
        precondition(maxMessageSize > 0)
        self.maxMessageSize = maxMessageSize
    }

    /// Adds bytes read from the stream.
    public mutating func append(_ bytes: ByteBuffer) {
        self.buffer.append(contentsOf: bytes.readableBytesView)
    }

    /// Returns the next complete message, or nil while more bytes are needed.
    ///
    /// - Throws: ``WireError`` when the stream cannot be a valid message (malformed msgpack, a type
    ///   that does not belong on a stream, bad compressed data, a limit exceeded, encryption). The
    ///   stream is unusable afterwards; Go answers such a stream with an `err` message and closes it.
    public mutating func next() throws -> StreamMessage? {
        if self.atConnectionStart {
            guard self.messageStart < self.buffer.count else { return nil }
            if self.buffer[self.messageStart] == MessageType.hasLabel.rawValue {
                guard self.messageStart + 2 <= self.buffer.count else { return nil }
                let length = Int(self.buffer[self.messageStart + 1])
                guard length > 0 else { throw WireError.invalidLabel }
                guard self.messageStart + 2 + length <= self.buffer.count else { return nil }
                self.messageStart += 2 + length
            }
            self.atConnectionStart = false
        }
        let limit = self.messageStart + self.maxMessageSize
        let available = min(self.buffer.count, limit)
        let exceeding = WireError.messageTooLarge(limit: self.maxMessageSize)

        if case .undetermined = self.form {
            guard self.messageStart < available else { return nil }
            switch self.buffer[self.messageStart] {
            case MessageType.encrypt.rawValue:
                throw WireError.encryptionNotSupported
            case MessageType.compress.rawValue:
                self.form = .compressed(MessagePackScanner(startingAt: self.messageStart + 1))
            default:
                self.form = .plain
                self.parser = StreamMessageParser(startingAt: self.messageStart)
            }
        }

        switch self.form {
        case .undetermined:
            return nil
        case .plain:
            let message = try self.parser.parse(self.buffer, available: available, limit: limit, exceeding: exceeding)
            guard let message else { return nil }
            self.finishMessage(at: self.parser.position)
            return message
        case .compressed(var scanner):
            let found = try scanner.scan(self.buffer, available: available, limit: limit, exceeding: exceeding)
            guard let end = found else {
                self.form = .compressed(scanner)
                return nil
            }
            var reader = MessagePackReader(self.buffer, range: self.messageStart + 1..<end)
            let inner = try Compressed(reading: &reader).decompressed(limit: self.maxMessageSize)
            // The whole message is inside `Buf`: anything incomplete there is malformed, not pending.
            var innerParser = StreamMessageParser(startingAt: 0)
            let message = try innerParser.parse(inner, available: inner.count, limit: inner.count, exceeding: .truncated)
            guard let message else { throw WireError.truncated }
            self.finishMessage(at: end)
            return message
        }
    }

    /// Drops the finished message's bytes and gets ready for another (Go sends one per connection, but
    /// nothing is lost if a peer sends more).
    private mutating func finishMessage(at end: Int) {
        self.buffer.removeSubrange(0..<end)
        self.messageStart = 0
        self.form = .undetermined
        self.parser = StreamMessageParser(startingAt: 0)
    }
}
