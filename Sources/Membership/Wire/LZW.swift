/// LZW exactly as Go's `compress/lzw` does it with LSB bit order and 8-bit literals (docs/memberlist-wire.md §11).
///
/// A default Go node compresses every stream message and larger packets this way, so decoding is
/// required. The encoder reproduces Go's bytes exactly (clear code first, a clear when the code space
/// runs out at 4095), so that what we send looks like what Go sends.
enum LZW {
    private static let clearCode = 256
    private static let endCode = 257
    private static let maxWidth = 12
    private static let maxCode = (1 << maxWidth) - 1

    /// Decodes `bytes`, throwing ``WireError/invalidCompressedData`` on an invalid code or missing
    /// end-of-data code, and ``WireError/decompressedTooLarge(limit:)`` once more than `limit` bytes
    /// would be produced (LZW can expand a 64 KiB packet to tens of megabytes).
    ///
    /// This follows Go's reader rather than a textbook decoder where they differ: the first code need
    /// not be a clear, and once the dictionary is full (12 bits) no entries are added until a clear.
    static func decompress(_ bytes: [UInt8], limit: Int) throws -> [UInt8] {
        var prefix = [UInt16](repeating: 0, count: Self.maxCode + 1)
        var suffix = [UInt8](repeating: 0, count: Self.maxCode + 1)
        // A string is assembled backwards from its prefix chain, then copied out.
        var scratch = [UInt8](repeating: 0, count: Self.maxCode + 1)
        var output: [UInt8] = []
        output.reserveCapacity(min(limit, bytes.count * 3))

        var width = 9
        var hi = Self.endCode  // the highest code handed out so far
        var overflow = 1 << width
        var last: Int? = nil  // the previous code, if an entry may be derived from it

        var input = bytes.startIndex
        var bits: UInt32 = 0
        var bitCount = 0

        while true {
            while bitCount < width {
                guard input < bytes.endIndex else { throw WireError.invalidCompressedData }  // no end-of-data
                bits |= UInt32(bytes[input]) << UInt32(bitCount)
                input += 1
                bitCount += 8
            }
            let code = Int(bits & ((1 << UInt32(width)) - 1))
            bits >>= UInt32(width)
            bitCount -= width

            if code == Self.clearCode {
                width = 9
                hi = Self.endCode
                overflow = 1 << width
                last = nil
                continue
            }
            if code == Self.endCode {
                return output
            }
            let first: UInt8
            if code < Self.clearCode {
                first = UInt8(code)
                guard output.count < limit else { throw WireError.decompressedTooLarge(limit: limit) }
                output.append(first)
            } else if code <= hi {
                var start = scratch.count
                var chain = code
                if code == hi, let last {
                    // KwKwK: the code being defined now is string(last) + first byte of string(last).
                    var head = last
                    while head >= Self.clearCode { head = Int(prefix[head]) }
                    start -= 1
                    scratch[start] = UInt8(head)
                    chain = last
                }
                while chain >= Self.clearCode {
                    guard start > 0 else { throw WireError.invalidCompressedData }
                    start -= 1
                    scratch[start] = suffix[chain]
                    chain = Int(prefix[chain])
                }
                guard start > 0 else { throw WireError.invalidCompressedData }
                start -= 1
                scratch[start] = UInt8(chain)
                first = UInt8(chain)
                guard scratch.count - start <= limit - output.count else {
                    throw WireError.decompressedTooLarge(limit: limit)
                }
                output.append(contentsOf: scratch[start...])
            } else {
                throw WireError.invalidCompressedData
            }
            if let last {
                suffix[hi] = first
                prefix[hi] = UInt16(last)
            }
            last = code
            hi += 1
            if hi >= overflow {
                if width == Self.maxWidth {
                    // Dictionary full: add nothing more until the next clear code.
                    last = nil
                    hi -= 1
                } else {
                    width += 1
                    overflow <<= 1
                }
            }
        }
    }

    /// Encodes `bytes` byte-identically to Go's `lzw.NewWriter(w, lzw.LSB, 8)` after one `Write` and
    /// `Close`.
    static func compress(_ bytes: [UInt8]) -> [UInt8] {
        var writer = BitWriter(capacity: bytes.count / 2 + 8)
        writer.write(Self.clearCode)
        guard var code = bytes.first.map(Int.init) else {
            writer.write(Self.endCode)
            return writer.finish()
        }
        // Open-addressing map from (code << 8 | byte) to the code of that string, as Go keeps it.
        let tableSize = 4 << Self.maxWidth
        let tableMask = tableSize - 1
        let empty: UInt32 = 0
        var table = [UInt32](repeating: empty, count: tableSize)
        var hi = Self.endCode
        var overflow = 1 << 9

        /// Advances `hi`; returns false (after emitting a clear and resetting) when the codes ran out.
        func incrementHi() -> Bool {
            hi += 1
            if hi == overflow {
                writer.width += 1
                overflow <<= 1
            }
            guard hi == Self.maxCode else { return true }
            writer.write(Self.clearCode)
            writer.width = 9
            hi = Self.endCode
            overflow = 1 << 9
            for index in table.indices { table[index] = empty }
            return false
        }

        nextByte: for byte in bytes.dropFirst() {
            let key = UInt32(code) << 8 | UInt32(byte)
            var hash = Int((key >> 12 ^ key)) & tableMask
            var probe = hash
            while table[probe] != empty {
                if table[probe] >> 12 == key {
                    code = Int(table[probe] & UInt32(Self.maxCode))
                    continue nextByte
                }
                probe = (probe + 1) & tableMask
            }
            writer.write(code)
            code = Int(byte)
            guard incrementHi() else { continue }
            while table[hash] != empty { hash = (hash + 1) & tableMask }
            table[hash] = key << 12 | UInt32(hi)
        }
        writer.write(code)
        _ = incrementHi()
        writer.write(Self.endCode)
        return writer.finish()
    }

    /// Packs codes least-significant bit first.
    private struct BitWriter {
        var width = 9
        private var bits: UInt32 = 0
        private var bitCount = 0
        private var output: [UInt8] = []

        init(capacity: Int) {
            self.output.reserveCapacity(capacity)
        }

        mutating func write(_ code: Int) {
            self.bits |= UInt32(code) << UInt32(self.bitCount)
            self.bitCount += self.width
            while self.bitCount >= 8 {
                self.output.append(UInt8(truncatingIfNeeded: self.bits))
                self.bits >>= 8
                self.bitCount -= 8
            }
        }

        /// Flushes the last partial byte, zero-padded.
        mutating func finish() -> [UInt8] {
            if self.bitCount > 0 {
                self.output.append(UInt8(truncatingIfNeeded: self.bits))
                self.bits = 0
                self.bitCount = 0
            }
            return self.output
        }
    }
}
