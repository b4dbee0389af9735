import Testing

@testable import Membership

@Suite struct MessagePackTests {
    private func written(_ body: (inout MessagePackWriter) -> Void) -> [UInt8] {
        var writer = MessagePackWriter()
        body(&writer)
        return writer.bytes
    }

    @Test func stringsAndBytesUseTheStrFamilyLikeGo() {
        #expect(written { $0.writeString("") } == [0xA0])
        #expect(written { $0.writeString(String(repeating: "x", count: 31)) }.prefix(1) == [0xBF])
        // Go never writes str8: 32…65535 bytes are str16.
        #expect(written { $0.writeString(String(repeating: "x", count: 32)) }.prefix(3) == [0xDA, 0x00, 0x20])
        #expect(written { $0.writeString(String(repeating: "x", count: 40)) }.prefix(3) == [0xDA, 0x00, 0x28])
        #expect(written { $0.writeRaw([UInt8](repeating: 1, count: 65535)) }.prefix(3) == [0xDA, 0xFF, 0xFF])
        #expect(written { $0.writeRaw([UInt8](repeating: 1, count: 65536)) }.prefix(5) == [0xDB, 0x00, 0x01, 0x00, 0x00])
        #expect(written { $0.writeRaw(nil) } == [0xC0])
        #expect(written { $0.writeRaw([]) } == [0xA0])
        #expect(written { $0.writeRaw([1, 5, 2, 0, 0, 0]) } == [0xA6, 1, 5, 2, 0, 0, 0])
    }

    @Test func unsignedIntegersUseTheSmallestForm() {
        #expect(written { $0.writeUnsigned(UInt32(0)) } == [0x00])
        #expect(written { $0.writeUnsigned(UInt32(127)) } == [0x7F])
        #expect(written { $0.writeUnsigned(UInt32(128)) } == [0xCC, 0x80])
        #expect(written { $0.writeUnsigned(UInt32(255)) } == [0xCC, 0xFF])
        #expect(written { $0.writeUnsigned(UInt16(7946)) } == [0xCD, 0x1F, 0x0A])
        #expect(written { $0.writeUnsigned(UInt32(65536)) } == [0xCE, 0x00, 0x01, 0x00, 0x00])
        #expect(written { $0.writeUnsigned(UInt64(1) << 32) } == [0xCF, 0, 0, 0, 1, 0, 0, 0, 0])
        // Go int fields as go-msgpack 0.5.x writes them (unsigned): 200 → CC C8, 300 → CD 01 2C.
        #expect(written { $0.writeInt(200) } == [0xCC, 0xC8])
        #expect(written { $0.writeInt(300) } == [0xCD, 0x01, 0x2C])
        #expect(written { $0.writeBool(true) } + written { $0.writeBool(false) } == [0xC3, 0xC2])
    }

    @Test func mapHeadersGrowPastFixmap() {
        #expect(written { $0.writeMapHeader(15) } == [0x8F])
        #expect(written { $0.writeMapHeader(16) } == [0xDE, 0x00, 0x10])
        #expect(written { $0.writeMapHeader(70_000) } == [0xDF, 0x00, 0x01, 0x11, 0x70])
    }

    @Test func readerAcceptsEveryIntegerFormThatFits() throws {
        let forms: [[UInt8]] = [
            [0x05],
            [0xCC, 0x05],
            [0xCD, 0x00, 0x05],
            [0xCE, 0x00, 0x00, 0x00, 0x05],
            [0xCF, 0, 0, 0, 0, 0, 0, 0, 0x05],
            [0xD0, 0x05],
            [0xD1, 0x00, 0x05],
            [0xD2, 0x00, 0x00, 0x00, 0x05],
            [0xD3, 0, 0, 0, 0, 0, 0, 0, 0x05],
        ]
        for form in forms {
            var reader = MessagePackReader(form)
            #expect(try reader.readUnsigned(UInt16.self) == 5)
            var signed = MessagePackReader(form)
            #expect(try signed.readSigned() == 5)
        }
        // Newer Go writes int fields signed: 300 → D1 01 2C.
        var reader = MessagePackReader([0xD1, 0x01, 0x2C])
        #expect(try reader.readSigned() == 300)
        var negative = MessagePackReader([0xFF])
        #expect(try negative.readSigned() == -1)
    }

    @Test func readerRejectsIntegersThatDoNotFit() {
        #expect(throws: WireError.integerOutOfRange) {
            var reader = MessagePackReader([0xCE, 0x00, 0x01, 0x00, 0x00])
            _ = try reader.readUnsigned(UInt16.self)
        }
        #expect(throws: WireError.integerOutOfRange) {
            var reader = MessagePackReader([0xFF])
            _ = try reader.readUnsigned(UInt32.self)
        }
        #expect(throws: WireError.integerOutOfRange) {
            var reader = MessagePackReader([0xCF, 0xFF, 0, 0, 0, 0, 0, 0, 0])
            _ = try reader.readSigned()
        }
        #expect(throws: WireError.unexpectedFormat(0xA1)) {
            var reader = MessagePackReader([0xA1, 0x61])
            _ = try reader.readUnsigned(UInt32.self)
        }
    }

    @Test func readerAcceptsEveryStringAndBytesForm() throws {
        let forms: [[UInt8]] = [
            [0xA2, 0x68, 0x69],
            [0xD9, 0x02, 0x68, 0x69],
            [0xDA, 0x00, 0x02, 0x68, 0x69],
            [0xDB, 0x00, 0x00, 0x00, 0x02, 0x68, 0x69],
            [0xC4, 0x02, 0x68, 0x69],
            [0xC5, 0x00, 0x02, 0x68, 0x69],
            [0xC6, 0x00, 0x00, 0x00, 0x02, 0x68, 0x69],
        ]
        for form in forms {
            var reader = MessagePackReader(form)
            #expect(try reader.readString() == "hi")
            #expect(reader.remaining == 0)
            var raw = MessagePackReader(form)
            #expect(try raw.readRaw() == [0x68, 0x69])
        }
        var nilString = MessagePackReader([0xC0])
        #expect(try nilString.readString() == "")
        var nilBytes = MessagePackReader([0xC0])
        #expect(try nilBytes.readRaw() == nil)
    }

    @Test func readerSkipsUnknownKeysOfAnyTypeInAnyOrder() throws {
        // {"Zzz": [1, {"a": [nil, 1.5, -3]}, bin, ext], "SeqNo": 300, "Extra": float64, "Node": "x",
        //  7: true (a non-string key)}
        var bytes: [UInt8] = [0x85]
        bytes += [0xA3] + Array("Zzz".utf8)
        bytes += [0x94, 0x01, 0x81, 0xA1, 0x61, 0x93, 0xC0, 0xCA, 0x3F, 0xC0, 0x00, 0x00, 0xFD]
        bytes += [0xC4, 0x01, 0xAB, 0xD5, 0x01, 0x02, 0x03]
        bytes += [0xA5] + Array("SeqNo".utf8) + [0xCD, 0x01, 0x2C]
        bytes += [0xA5] + Array("Extra".utf8) + [0xCB, 0, 0, 0, 0, 0, 0, 0, 0]
        bytes += [0xA4] + Array("Node".utf8) + [0xA1, 0x78]
        bytes += [0x07, 0xC3]
        var reader = MessagePackReader(bytes)
        #expect(try Ping(reading: &reader) == Ping(node: "x", seqNo: 300))
        #expect(reader.remaining == 0)
    }

    @Test func keysAreCaseSensitive() throws {
        var reader = MessagePackReader([0x81, 0xA5] + Array("seqNo".utf8) + [0x09])
        #expect(try Nack(reading: &reader) == Nack(seqNo: 0))
    }

    @Test func skipHandlesDeepNestingWithoutRecursion() throws {
        let depth = 100_000
        let bytes = [UInt8](repeating: 0x91, count: depth) + [0xC0, 0x2A]
        var reader = MessagePackReader(bytes)
        try reader.skip()
        #expect(reader.remaining == 1)
    }

    @Test func skipRejectsCountsThatCannotFit() {
        // An array32 announcing 4 billion elements in a 6-byte buffer fails at once.
        #expect(throws: WireError.truncated) {
            var reader = MessagePackReader([0xDD, 0xFF, 0xFF, 0xFF, 0xFF, 0xC0])
            try reader.skip()
        }
        #expect(throws: WireError.unexpectedFormat(0xC1)) {
            var reader = MessagePackReader([0x91, 0xC1])
            try reader.skip()
        }
    }

    @Test func scannerResumesAcrossPartialInput() throws {
        let bytes: [UInt8] = [0x82, 0xA1, 0x61, 0xDA, 0x00, 0x03, 0x78, 0x79, 0x7A, 0xA1, 0x62, 0x92, 0x01, 0xCD, 0x01, 0x02]
        var scanner = MessagePackScanner(startingAt: 0)
        for available in 0..<bytes.count {
            #expect(try scanner.scan(bytes, available: available, limit: 100, exceeding: .truncated) == nil)
        }
        #expect(try scanner.scan(bytes, available: bytes.count, limit: 100, exceeding: .truncated) == bytes.count)
        var tooSmall = MessagePackScanner(startingAt: 0)
        #expect(throws: WireError.messageTooLarge(limit: 8)) {
            try tooSmall.scan(bytes, available: 8, limit: 8, exceeding: .messageTooLarge(limit: 8))
        }
    }
}
