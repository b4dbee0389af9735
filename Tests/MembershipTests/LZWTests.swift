import Testing

@testable import Membership

@Suite struct LZWTests {
    /// Deterministic data that compresses, but not trivially: runs of words drawn from a small
    /// vocabulary mixed with noise bytes, so the dictionary fills and is reset many times.
    static func compressibleData(count: Int, seed: UInt64) -> [UInt8] {
        var generator = SplitMix(state: seed)
        let words = ["alive", "suspect", "dead", "node-", "127.0.0.", "Incarnation", "\u{0}\u{1}\u{2}", "http://"].map { Array($0.utf8) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 16)
        while bytes.count < count {
            if generator.next() % 4 == 0 {
                bytes.append(UInt8(truncatingIfNeeded: generator.next()))
            } else {
                bytes.append(contentsOf: words[Int(generator.next() % UInt64(words.count))])
            }
        }
        return Array(bytes.prefix(count))
    }

    @Test func emptyInputIsClearThenEndOfData() throws {
        // Codes 256 then 257, 9 bits each, LSB first: 0x100 | 0x101 << 9 = 0x20300, in 3 bytes.
        #expect(LZW.compress([]) == [0x00, 0x03, 0x02])
        #expect(try LZW.decompress([0x00, 0x03, 0x02], limit: 10) == [])
    }

    @Test func singleByteRoundTrips() throws {
        // clear (0x100), 'A' (0x41), end (0x101): 0x100 | 0x41 << 9 | 0x101 << 18.
        #expect(LZW.compress([0x41]) == [0x00, 0x83, 0x04, 0x04])
        #expect(try LZW.decompress([0x00, 0x83, 0x04, 0x04], limit: 10) == [0x41])
    }

    @Test func kwkwkCaseRoundTrips() throws {
        // "aaaa…" makes the encoder emit a code in the same step that defines it (code == next).
        for count in [2, 3, 4, 7, 100, 5000] {
            let input = [UInt8](repeating: 0x61, count: count)
            let compressed = LZW.compress(input)
            #expect(try LZW.decompress(compressed, limit: count) == input)
        }
        // Hand-built: clear, 'a' (0x61), 258 (= "aa", defined by this very code), end.
        // Codes at 9 bits: 0x100, 0x061, 0x102, 0x101.
        var bits: UInt64 = 0x100
        bits |= 0x061 << 9
        bits |= 0x102 << 18
        bits |= 0x101 << 27
        let packed = (0..<5).map { UInt8(truncatingIfNeeded: bits >> (8 * $0)) }
        #expect(try LZW.decompress(packed, limit: 10) == [0x61, 0x61, 0x61])
    }

    @Test func largeDataRoundTripsThroughManyDictionaryResets() throws {
        let input = Self.compressibleData(count: 200_000, seed: 7)
        let compressed = LZW.compress(input)
        #expect(compressed.count < input.count / 2)
        #expect(compressed.count > 4096)  // far more codes than one 12-bit dictionary holds
        #expect(try LZW.decompress(compressed, limit: input.count) == input)
    }

    @Test func randomDataRoundTrips() throws {
        var generator = SplitMix(state: 99)
        let input = (0..<70_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        #expect(try LZW.decompress(LZW.compress(input), limit: input.count) == input)
    }

    @Test func everyByteValueRoundTrips() throws {
        let input = (0..<4).flatMap { _ in (0...255).map { UInt8($0) } }
        #expect(try LZW.decompress(LZW.compress(input), limit: input.count) == input)
    }

    @Test func decompressionStopsAtTheLimit() throws {
        let input = [UInt8](repeating: 0x7A, count: 10_000)
        let compressed = LZW.compress(input)
        #expect(throws: WireError.decompressedTooLarge(limit: 9_999)) { try LZW.decompress(compressed, limit: 9_999) }
        #expect(try LZW.decompress(compressed, limit: 10_000) == input)
    }

    @Test func missingEndOfDataIsRejected() throws {
        let compressed = LZW.compress(Array("hello hello hello".utf8))
        #expect(throws: WireError.invalidCompressedData) { try LZW.decompress(Array(compressed.dropLast(2)), limit: 100) }
        #expect(throws: WireError.invalidCompressedData) { try LZW.decompress([], limit: 100) }
    }

    @Test func codeBeyondTheDictionaryIsRejected() throws {
        // clear, then code 300 while the next free code is 258.
        let bits: UInt32 = 0x100 | 300 << 9
        let packed = (0..<3).map { UInt8(truncatingIfNeeded: bits >> (8 * $0)) }
        #expect(throws: WireError.invalidCompressedData) { try LZW.decompress(packed, limit: 100) }
    }
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
