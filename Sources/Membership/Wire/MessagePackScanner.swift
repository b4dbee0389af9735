/// Finds where one msgpack object ends, resumably, without decoding it.
///
/// Streams carry no length (docs/memberlist-wire.md §7.2): the only way to know that a push/pull header or a node map
/// has fully arrived is to walk its msgpack structure. The scanner keeps its place between calls, so
/// feeding a stream in small pieces costs time proportional to the bytes, not quadratic re-parsing.
/// ``MessagePackReader/skip()`` uses it too, to step over unknown values of any type, iteratively (a
/// deeply nested hostile value cannot overflow the call stack).
struct MessagePackScanner {
    /// Items still to be walked over: the object itself, then children announced by maps and arrays.
    private var pending = 1
    /// Index of the next item to walk over.
    private(set) var position: Int

    init(startingAt position: Int) {
        self.position = position
    }

    /// Walks over complete items in `bytes[position..<available]`.
    ///
    /// - Parameters:
    ///   - limit: index the object must end at or before. Every pending item needs at least one byte,
    ///     so a map or array announcing more children than could fit fails at once instead of being
    ///     trusted.
    ///   - exceeding: what to throw when the object cannot fit before `limit`; `.truncated` when all
    ///     the data is already there, a size error when reading from a stream.
    /// - Returns: the end index of the object once it is complete, or nil when more bytes are needed.
    mutating func scan(_ bytes: [UInt8], available: Int, limit: Int, exceeding: WireError) throws -> Int? {
        precondition(available <= bytes.count && available <= limit)
        while self.pending > 0 {
            guard self.position < available else {
                if self.position >= limit { throw exceeding }
                return nil
            }
            let format = bytes[self.position]
            let (headerLength, lengthBytes) = try Self.header(format)
            let headerEnd = self.position + headerLength
            guard headerEnd <= available else {
                if headerEnd > limit { throw exceeding }
                return nil
            }
            var length = 0
            for offset in 0..<lengthBytes {
                length = length << 8 | Int(bytes[self.position + 1 + offset])
            }
            var payload = 0
            var children = 0
            switch format {
            case 0x80...0x8F: children = 2 * Int(format & 0x0F)
            case 0x90...0x9F: children = Int(format & 0x0F)
            case 0xA0...0xBF: payload = Int(format & 0x1F)
            case 0xDC, 0xDD: children = length
            case 0xDE, 0xDF: children = 2 * length
            default: payload = length
            }
            let itemEnd = headerEnd + payload
            guard itemEnd <= limit else { throw exceeding }
            guard itemEnd <= available else { return nil }
            self.pending += children - 1
            guard self.pending <= limit - itemEnd else { throw exceeding }
            self.position = itemEnd
        }
        return self.position
    }

    /// The header length of an item (format byte included) and how many of its bytes after the format
    /// byte hold a big-endian length or count. Fixed-size payloads (integers, floats, fixext) are
    /// counted into the header.
    private static func header(_ format: UInt8) throws -> (length: Int, lengthBytes: Int) {
        switch format {
        case 0x00...0xBF, 0xC0, 0xC2, 0xC3, 0xE0...0xFF: return (1, 0)
        case 0xC4, 0xD9: return (2, 1)  // bin8, str8
        case 0xC5, 0xDA, 0xDC, 0xDE: return (3, 2)  // bin16, str16, array16, map16
        case 0xC6, 0xDB, 0xDD, 0xDF: return (5, 4)  // bin32, str32, array32, map32
        case 0xC7: return (3, 1)  // ext8: length, type
        case 0xC8: return (4, 2)  // ext16
        case 0xC9: return (6, 4)  // ext32
        case 0xCA: return (5, 0)  // float32
        case 0xCB: return (9, 0)  // float64
        case 0xCC, 0xD0: return (2, 0)
        case 0xCD, 0xD1: return (3, 0)
        case 0xCE, 0xD2: return (5, 0)
        case 0xCF, 0xD3: return (9, 0)
        case 0xD4: return (3, 0)  // fixext1: type + 1
        case 0xD5: return (4, 0)
        case 0xD6: return (6, 0)
        case 0xD7: return (10, 0)
        case 0xD8: return (18, 0)
        default: throw WireError.unexpectedFormat(format)  // 0xC1 is never used
        }
    }
}
