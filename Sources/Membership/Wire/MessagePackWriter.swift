/// Writes the small subset of msgpack that memberlist uses, byte for byte as Go's go-msgpack does with
/// a default `MsgpackHandle` (docs/memberlist-wire.md §4).
///
/// Go compares some fields byte for byte and older Go versions reject some encodings (e.g. `bin` in a
/// string field), so the safe choice is to copy Go's output exactly rather than to write any valid
/// msgpack:
/// - strings *and* byte slices use the str family: fixstr below 32 bytes, then str16 (`0xDA`; Go never
///   writes str8), then str32;
/// - a nil byte slice is msgpack nil (`0xC0`);
/// - integers use the smallest unsigned form. Go `int` fields above 127 are written unsigned, as
///   go-msgpack 0.5.x (memberlist ≤ 0.5.0) does; newer Go writes them signed but both read both;
/// - the caller writes struct keys in ascending byte order of the field name.
struct MessagePackWriter {
    private(set) var bytes: [UInt8]

    init(reservingCapacity capacity: Int = 64) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    /// Appends raw bytes that are not msgpack (a type byte, or the raw user state after a push/pull).
    mutating func writeBytes(_ raw: some Sequence<UInt8>) {
        self.bytes.append(contentsOf: raw)
    }

    mutating func writeByte(_ byte: UInt8) {
        self.bytes.append(byte)
    }

    mutating func writeMapHeader(_ count: Int) {
        precondition(count >= 0 && count <= Int(UInt32.max), "msgpack map too large")
        if count < 16 {
            self.bytes.append(0x80 | UInt8(count))
        } else if count <= Int(UInt16.max) {
            self.bytes.append(0xDE)
            self.appendBigEndian(UInt16(count))
        } else {
            self.bytes.append(0xDF)
            self.appendBigEndian(UInt32(count))
        }
    }

    mutating func writeNil() {
        self.bytes.append(0xC0)
    }

    mutating func writeBool(_ value: Bool) {
        self.bytes.append(value ? 0xC3 : 0xC2)
    }

    /// Writes an unsigned integer in its smallest form (positive fixint, then u8, u16, u32, u64).
    mutating func writeUnsigned(_ value: some UnsignedInteger & FixedWidthInteger) {
        let value = UInt64(value)
        switch value {
        case 0...0x7F:
            self.bytes.append(UInt8(value))
        case 0x80...0xFF:
            self.bytes.append(0xCC)
            self.bytes.append(UInt8(value))
        case 0x100...0xFFFF:
            self.bytes.append(0xCD)
            self.appendBigEndian(UInt16(value))
        case 0x1_0000...0xFFFF_FFFF:
            self.bytes.append(0xCE)
            self.appendBigEndian(UInt32(value))
        default:
            self.bytes.append(0xCF)
            self.appendBigEndian(value)
        }
    }

    /// Writes a Go `int` field. Only non-negative values (counts, lengths, states) occur in memberlist.
    mutating func writeInt(_ value: Int) {
        precondition(value >= 0, "memberlist int fields are never negative")
        self.writeUnsigned(UInt64(value))
    }

    mutating func writeString(_ value: String) {
        self.writeRaw(Array(value.utf8))
    }

    /// Writes a byte slice the way Go writes `[]byte`: str family, or nil for a nil slice.
    mutating func writeRaw(_ value: [UInt8]?) {
        guard let value else {
            self.writeNil()
            return
        }
        self.writeRawHeader(count: value.count)
        self.bytes.append(contentsOf: value)
    }

    private mutating func writeRawHeader(count: Int) {
        precondition(count <= Int(UInt32.max), "msgpack raw value too large")
        if count < 32 {
            self.bytes.append(0xA0 | UInt8(count))
        } else if count <= Int(UInt16.max) {
            self.bytes.append(0xDA)
            self.appendBigEndian(UInt16(count))
        } else {
            self.bytes.append(0xDB)
            self.appendBigEndian(UInt32(count))
        }
    }

    private mutating func appendBigEndian(_ value: some FixedWidthInteger) {
        withUnsafeBytes(of: value.bigEndian) { self.bytes.append(contentsOf: $0) }
    }
}
