/// Reads msgpack liberally, the way Go's go-msgpack decodes memberlist structs (docs/memberlist-wire.md §4).
///
/// A second implementation must accept whatever any Go version (or anyone else) may write: keys in any
/// order, unknown keys of any type (skipped), any integer form that fits the field, `str8`, `bin` and
/// nil for strings and byte slices. Every read is bounds-checked and throws ``WireError`` on bad input;
/// nothing here traps on what a peer sent.
struct MessagePackReader {
    let bytes: [UInt8]
    /// Index of the next byte to read.
    private(set) var index: Int
    /// One past the last byte this reader may read.
    let end: Int

    init(_ bytes: [UInt8]) {
        self.init(bytes, range: bytes.startIndex..<bytes.endIndex)
    }

    init(_ bytes: [UInt8], range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count)
        self.bytes = bytes
        self.index = range.lowerBound
        self.end = range.upperBound
    }

    var remaining: Int { self.end - self.index }

    mutating func readByte() throws -> UInt8 {
        guard self.index < self.end else { throw WireError.truncated }
        defer { self.index += 1 }
        return self.bytes[self.index]
    }

    /// Reads `count` raw (not msgpack) bytes.
    mutating func readBytes(count: Int) throws -> [UInt8] {
        guard count >= 0, count <= self.remaining else { throw WireError.truncated }
        defer { self.index += count }
        return Array(self.bytes[self.index..<self.index + count])
    }

    /// Steps over one complete msgpack value of any type, however deeply nested.
    mutating func skip() throws {
        var scanner = MessagePackScanner(startingAt: self.index)
        guard let end = try scanner.scan(self.bytes, available: self.end, limit: self.end, exceeding: .truncated) else {
            throw WireError.truncated
        }
        self.index = end
    }

    /// Reads a map header and returns its entry count; nil counts as an empty map, as in Go.
    mutating func readMapHeader() throws -> Int {
        let format = try self.readByte()
        switch format {
        case 0x80...0x8F: return Int(format & 0x0F)
        case 0xDE: return Int(try self.readBigEndian(UInt16.self))
        case 0xDF: return Int(try self.readBigEndian(UInt32.self))
        case 0xC0: return 0
        default: throw WireError.unexpectedFormat(format)
        }
    }

    /// Reads a map, handing each string key to `body`, which reads the value and returns true, or
    /// returns false to have the value skipped. Entries whose key is not a string are skipped whole.
    mutating func readMap(_ body: (_ key: String, _ reader: inout MessagePackReader) throws -> Bool) throws {
        let count = try self.readMapHeader()
        for _ in 0..<count {
            guard let key = try self.readRawIfPresent() else {
                try self.skip()  // the key
                try self.skip()  // its value
                continue
            }
            if try !body(String(decoding: key, as: UTF8.self), &self) {
                try self.skip()
            }
        }
    }

    /// Reads a byte slice: any str or bin form; nil gives nil.
    mutating func readRaw() throws -> [UInt8]? {
        guard self.index < self.end else { throw WireError.truncated }
        if self.bytes[self.index] == 0xC0 {
            self.index += 1
            return nil
        }
        guard let raw = try self.readRawIfPresent() else {
            throw WireError.unexpectedFormat(self.bytes[self.index])
        }
        return raw
    }

    /// Reads a string: any str or bin form; nil gives the empty string.
    ///
    /// Go does not validate UTF-8; invalid sequences become U+FFFD here rather than failing the whole
    /// message.
    mutating func readString() throws -> String {
        String(decoding: try self.readRaw() ?? [], as: UTF8.self)
    }

    /// Reads a bool; nil gives false, as in Go.
    mutating func readBool() throws -> Bool {
        let format = try self.readByte()
        switch format {
        case 0xC2, 0xC0: return false
        case 0xC3: return true
        default: throw WireError.unexpectedFormat(format)
        }
    }

    /// Reads any integer form into an unsigned field, if the value fits; nil gives 0.
    mutating func readUnsigned<T: FixedWidthInteger & UnsignedInteger>(_: T.Type = T.self) throws -> T {
        switch try self.readInteger() {
        case .unsigned(let value):
            guard let result = T(exactly: value) else { throw WireError.integerOutOfRange }
            return result
        case .signed(let value):
            guard let result = T(exactly: value) else { throw WireError.integerOutOfRange }
            return result
        }
    }

    /// Reads any integer form into a signed 64-bit value (Go `int` fields); nil gives 0.
    mutating func readSigned() throws -> Int64 {
        switch try self.readInteger() {
        case .unsigned(let value):
            guard let result = Int64(exactly: value) else { throw WireError.integerOutOfRange }
            return result
        case .signed(let value):
            return value
        }
    }

    private enum Integer {
        case unsigned(UInt64)
        case signed(Int64)
    }

    private mutating func readInteger() throws -> Integer {
        let format = try self.readByte()
        switch format {
        case 0x00...0x7F: return .unsigned(UInt64(format))
        case 0xE0...0xFF: return .signed(Int64(Int8(bitPattern: format)))
        case 0xC0: return .unsigned(0)
        case 0xCC: return .unsigned(UInt64(try self.readBigEndian(UInt8.self)))
        case 0xCD: return .unsigned(UInt64(try self.readBigEndian(UInt16.self)))
        case 0xCE: return .unsigned(UInt64(try self.readBigEndian(UInt32.self)))
        case 0xCF: return .unsigned(try self.readBigEndian(UInt64.self))
        case 0xD0: return .signed(Int64(try self.readBigEndian(Int8.self)))
        case 0xD1: return .signed(Int64(try self.readBigEndian(Int16.self)))
        case 0xD2: return .signed(Int64(try self.readBigEndian(Int32.self)))
        case 0xD3: return .signed(try self.readBigEndian(Int64.self))
        default: throw WireError.unexpectedFormat(format)
        }
    }

    /// Reads a str- or bin-family value, or returns nil without consuming anything when the next value
    /// is of another type.
    private mutating func readRawIfPresent() throws -> [UInt8]? {
        guard self.index < self.end else { throw WireError.truncated }
        let start = self.index
        let format = self.bytes[start]
        let count: Int
        switch format {
        case 0xA0...0xBF:
            self.index += 1
            count = Int(format & 0x1F)
        case 0xD9, 0xC4:
            self.index += 1
            count = Int(try self.readBigEndian(UInt8.self))
        case 0xDA, 0xC5:
            self.index += 1
            count = Int(try self.readBigEndian(UInt16.self))
        case 0xDB, 0xC6:
            self.index += 1
            count = Int(try self.readBigEndian(UInt32.self))
        default:
            return nil
        }
        do {
            return try self.readBytes(count: count)
        } catch {
            self.index = start
            throw error
        }
    }

    private mutating func readBigEndian<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard size <= self.remaining else { throw WireError.truncated }
        var value: T = 0
        for offset in 0..<size {
            value = value << 8 | T(truncatingIfNeeded: self.bytes[self.index + offset])
        }
        self.index += size
        return value
    }
}
