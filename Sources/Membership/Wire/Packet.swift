import NIOCore

/// UDP datagrams: the layering of docs/memberlist-wire.md §2 around the messages of §5.
///
/// Decoding mirrors what Go accepts; encoding writes what Go 0.2.2 and later read: one message alone,
/// or a compound of up to 127, optionally behind a CRC header. Nothing is compressed on send (Go
/// always accepts uncompressed packets).
public enum Packet {
    /// The most parts a compound may have: Go 0.2.2 misparses compounds of more than 127 (§5.9).
    public static let maxCompoundParts = 127
    /// The most bytes a compound part may have (its length is a 16-bit field).
    public static let maxCompoundPartSize = Int(UInt16.max)
    /// How many bytes decompressing may produce per datagram, as latest Go allows (§10).
    static let maxDecompressedSize = 40 << 20
    /// How deeply compound and compress layers may nest. Go itself sends at most compress(compound).
    static let maxNesting = 8

    /// The bytes ``encode(encodedMessages:crc:)`` adds around `parts` encoded messages, so that
    /// gossip can be piggybacked up to a packet size budget (Go keeps packets within 1400 bytes).
    public static func overhead(parts: Int, crc: Bool) -> Int {
        (parts > 1 ? 2 + 2 * parts : 0) + (crc ? 5 : 0)
    }

    /// Encodes one message alone, or 2…127 messages as a compound.
    ///
    /// - Parameter crc: prefix the `0x0C` CRC-32 header. Go understands it from protocol version 5
    ///   (the recipient's `Vsn` PMax ≥ 5) and sends it only on gossip; packets without it are always
    ///   accepted.
    /// - Precondition: 1…``maxCompoundParts`` messages; each at most ``maxCompoundPartSize`` bytes
    ///   when there are several. Splitting is the caller's job because only it knows the size budget.
    public static func encode(_ messages: [WireMessage], crc: Bool) -> ByteBuffer {
        Self.encode(encodedMessages: messages.map { $0.encoded() }, crc: crc)
    }

    /// Like ``encode(_:crc:)``, for messages already encoded with ``WireMessage/encoded()`` (e.g. gossip
    /// whose size was needed to decide what fits).
    public static func encode(encodedMessages: [[UInt8]], crc: Bool) -> ByteBuffer {
        precondition(!encodedMessages.isEmpty, "a packet needs at least one message")
        let body = encodedMessages.count == 1 ? encodedMessages[0] : Self.compound(encodedMessages)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(body.count + 5)
        if crc {
            buffer.writeInteger(MessageType.hasCRC.rawValue)
            buffer.writeInteger(CRC32.checksum(body), endianness: .big)
        }
        buffer.writeBytes(body)
        return buffer
    }

    /// `07 N len_1 … len_N msg_1 … msg_N`, lengths as 16-bit big-endian (§5.9).
    static func compound(_ parts: [[UInt8]]) -> [UInt8] {
        precondition(parts.count <= Self.maxCompoundParts, "Go 0.2.2 misparses compounds of more than 127 parts")
        var bytes: [UInt8] = [MessageType.compound.rawValue, UInt8(parts.count)]
        bytes.reserveCapacity(2 + 2 * parts.count + parts.reduce(0) { $0 + $1.count })
        for part in parts {
            precondition(part.count <= Self.maxCompoundPartSize, "a compound part is at most 65535 bytes")
            bytes.append(UInt8(part.count >> 8))
            bytes.append(UInt8(part.count & 0xFF))
        }
        for part in parts {
            bytes.append(contentsOf: part)
        }
        return bytes
    }

    /// Decodes a datagram into its messages, in order.
    ///
    /// Strips a label header (without checking the label: this node configures none), checks the CRC
    /// header, splits compounds and decompresses. As Go does, it skips message types it doesn't know
    /// or that don't belong on UDP (pushPull, err, …), keeps the complete parts of a truncated
    /// compound, and drops a compound part that fails to decode while keeping the others (one bad
    /// piggybacked message must not cost the ack it rode with).
    ///
    /// - Throws: ``WireError`` when the packet as a whole is unusable: bad label or CRC, a malformed
    ///   message that is not inside a compound, a broken compound header, bad compressed data, or
    ///   more than 40 MiB decompressed.
    public static func decode(_ datagram: ByteBuffer) throws -> [WireMessage] {
        try Self.decode(datagram, maxDecompressedSize: Self.maxDecompressedSize)
    }

    static func decode(_ datagram: ByteBuffer, maxDecompressedSize: Int) throws -> [WireMessage] {
        let bytes = Array(datagram.readableBytesView)
        var start = 0
        if bytes.first == MessageType.hasLabel.rawValue {
            guard bytes.count >= 2, bytes[1] > 0, bytes.count >= 2 + Int(bytes[1]) else { throw WireError.invalidLabel }
            start = 2 + Int(bytes[1])
        }
        if bytes.count - start >= 5, bytes[start] == MessageType.hasCRC.rawValue {
            let expected = bytes[start + 1..<start + 5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let computed = CRC32.checksum(bytes[(start + 5)...])
            guard expected == computed else { throw WireError.checksumMismatch(expected: expected, computed: computed) }
            start += 5
        }
        var unpacker = Unpacker(decompressionBudget: maxDecompressedSize)
        try unpacker.dispatch(bytes, start..<bytes.count, depth: 0)
        return unpacker.messages
    }

    /// Walks the compound and compress layers, sharing one decompression budget per datagram.
    private struct Unpacker {
        var decompressionBudget: Int
        var messages: [WireMessage] = []

        mutating func dispatch(_ bytes: [UInt8], _ range: Range<Int>, depth: Int) throws {
            guard depth <= Packet.maxNesting else { throw WireError.nestingTooDeep }
            guard !range.isEmpty else { throw WireError.emptyMessage }
            switch MessageType(rawValue: bytes[range.lowerBound]) {
            case .compound:
                for part in try Self.compoundParts(bytes, range) {
                    // Go handles each part on its own and only logs a part it cannot read.
                    try? self.dispatch(bytes, part, depth: depth + 1)
                }
            case .compress:
                var reader = MessagePackReader(bytes, range: range.lowerBound + 1..<range.upperBound)
                let inner = try Compressed(reading: &reader).decompressed(limit: self.decompressionBudget)
                self.decompressionBudget -= inner.count
                try self.dispatch(inner, inner.startIndex..<inner.endIndex, depth: depth + 1)
            case .ping, .indirectPing, .ack, .nack, .suspect, .alive, .dead, .user:
                self.messages.append(try WireMessage(decoding: bytes, range: range))
            case .pushPull, .encrypt, .hasCRC, .error, .hasLabel, nil:
                return  // stream-only, outermost-only or unknown: Go ignores these on UDP
            }
        }

        /// The byte ranges of the complete parts of the compound in `range`. Throws only when the
        /// count or length table itself is cut off, as Go does.
        static func compoundParts(_ bytes: [UInt8], _ range: Range<Int>) throws -> [Range<Int>] {
            var index = range.lowerBound + 1
            guard index < range.upperBound else { throw WireError.truncated }
            let count = Int(bytes[index])
            index += 1
            guard range.upperBound - index >= 2 * count else { throw WireError.truncated }
            var offset = index + 2 * count
            var parts: [Range<Int>] = []
            parts.reserveCapacity(count)
            for part in 0..<count {
                let length = Int(bytes[index + 2 * part]) << 8 | Int(bytes[index + 2 * part + 1])
                guard length <= range.upperBound - offset else { break }  // truncated: keep what is complete
                parts.append(offset..<offset + length)
                offset += length
            }
            return parts
        }
    }
}
