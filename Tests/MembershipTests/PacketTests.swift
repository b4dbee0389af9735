import NIOCore
import Testing

@testable import Membership

@Suite struct PacketTests {
    private func decode(_ bytes: [UInt8]) throws -> [WireMessage] {
        try Packet.decode(ByteBuffer(bytes: bytes))
    }

    @Test func crcMismatchIsRejected() throws {
        var corrupted = WireVectors.gossip
        corrupted[40] ^= 0x01
        #expect(throws: WireError.checksumMismatch(expected: 0xECDA_3265, computed: CRC32.checksum(corrupted.dropFirst(5)))) {
            try self.decode(corrupted)
        }
        var badHeader = WireVectors.gossip
        badHeader[4] ^= 0x01
        #expect(throws: WireError.self) { try self.decode(badHeader) }
    }

    @Test func crcHeaderIsAddedOnRequest() throws {
        let packet = Packet.encode([WireVectors.nackMessage], crc: true).bytes
        #expect(packet.count == 5 + WireVectors.nack.count)
        #expect(packet[0] == 0x0C)
        let crc = CRC32.checksum(WireVectors.nack)
        #expect(Array(packet[1..<5]) == [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)])
        #expect(try self.decode(packet) == [WireVectors.nackMessage])
    }

    @Test func labelHeaderIsStripped() throws {
        let labelled = [0xF4, 0x03] + Array("dev".utf8) + WireVectors.gossip
        #expect(try self.decode(labelled) == [WireVectors.aliveBMessage, WireVectors.aliveAMessage])
        #expect(throws: WireError.invalidLabel) { try self.decode([0xF4, 0x00] + WireVectors.ping) }
        #expect(throws: WireError.invalidLabel) { try self.decode([0xF4, 0x09, 0x61]) }
        #expect(throws: WireError.invalidLabel) { try self.decode([0xF4]) }
    }

    @Test func truncatedCompoundKeepsItsCompleteParts() throws {
        let compound = Packet.encode([WireVectors.pingMessage, WireVectors.suspectMessage, WireVectors.deadMessage], crc: false).bytes
        #expect(try self.decode(compound) == [WireVectors.pingMessage, WireVectors.suspectMessage, WireVectors.deadMessage])
        #expect(try self.decode(Array(compound.dropLast(1))) == [WireVectors.pingMessage, WireVectors.suspectMessage])
        #expect(try self.decode(Array(compound.dropLast(30))) == [WireVectors.pingMessage])
        // Cut inside the length table: Go rejects the whole compound.
        #expect(throws: WireError.truncated) { try self.decode(Array(compound.prefix(5))) }
        #expect(throws: WireError.truncated) { try self.decode([0x07]) }
    }

    @Test func badCompoundPartIsDroppedAndTheOthersKept() throws {
        let badPart: [UInt8] = [0x0B, 0x81, 0xA5] + Array("SeqNo".utf8) + [0xA1, 0x61]  // SeqNo as a string
        let packet = Packet.encode(encodedMessages: [WireVectors.ack, badPart, WireVectors.suspect, []], crc: false).bytes
        #expect(try self.decode(packet) == [WireVectors.ackMessage, WireVectors.suspectMessage])
        // The same bad message alone is an error.
        #expect(throws: WireError.unexpectedFormat(0xA1)) { try self.decode(badPart) }
    }

    @Test func unknownAndStreamOnlyTypesAreSkipped() throws {
        let packet = Packet.encode(
            encodedMessages: [[0x63, 0x01], WireVectors.pushPull, [0x0D, 0x80], [0x0A, 0, 0, 0, 0], WireVectors.nack, [0x0C, 1, 2, 3, 4, 5]],
            crc: false
        )
        #expect(try Packet.decode(packet) == [WireVectors.nackMessage])
        #expect(try self.decode([0x63]) == [])
        #expect(try self.decode(WireVectors.pushPull) == [])
    }

    @Test func emptyDatagramIsRejected() {
        #expect(throws: WireError.emptyMessage) { try self.decode([]) }
    }

    @Test func compressedCompoundIsUnpacked() throws {
        // Go compresses the whole compound (e.g. a ping with piggybacked alives) and sends `09 {Algo, Buf}`.
        let compound = Packet.encode([WireVectors.pingMessage, WireVectors.aliveBMessage, WireVectors.aliveAMessage], crc: false).bytes
        let packet = [0x09] + Compressed(buffer: LZW.compress(compound)).messagePack
        #expect(try self.decode(packet) == [WireVectors.pingMessage, WireVectors.aliveBMessage, WireVectors.aliveAMessage])
        // And behind a CRC header, as gossip to a protocol-5 node may be.
        let withCRC = Packet.encode(encodedMessages: [packet], crc: true).bytes
        #expect(try self.decode(withCRC) == [WireVectors.pingMessage, WireVectors.aliveBMessage, WireVectors.aliveAMessage])
    }

    @Test func compressionWithAnotherAlgorithmIsRejected() {
        let packet = [0x09] + Compressed(algorithm: 1, buffer: LZW.compress(WireVectors.nack)).messagePack
        #expect(throws: WireError.unsupportedCompression(algorithm: 1)) { try self.decode(packet) }
        let empty = [0x09] + Compressed(buffer: LZW.compress([])).messagePack
        #expect(throws: WireError.invalidCompressedData) { try self.decode(empty) }
    }

    @Test func deepNestingIsRejected() throws {
        var packet = WireVectors.nack
        for _ in 0..<Packet.maxNesting {
            packet = [0x09] + Compressed(buffer: LZW.compress(packet)).messagePack
        }
        #expect(try self.decode(packet) == [WireVectors.nackMessage])
        packet = [0x09] + Compressed(buffer: LZW.compress(packet)).messagePack
        #expect(throws: WireError.nestingTooDeep) { try self.decode(packet) }
    }

    @Test func decompressionIsLimitedPerDatagram() throws {
        // Two compressed parts of 600 KiB each: each fits a 1 MiB budget alone, not both together, and
        // the part over budget is dropped like any bad compound part.
        let part = [0x09] + Compressed(buffer: LZW.compress([0x08] + [UInt8](repeating: 0, count: 600 << 10))).messagePack
        #expect(part.count < 16 << 10)
        let one = try Packet.decode(ByteBuffer(bytes: part), maxDecompressedSize: 1 << 20)
        #expect(one == [.user([UInt8](repeating: 0, count: 600 << 10))])
        #expect(throws: WireError.decompressedTooLarge(limit: 500 << 10)) {
            try Packet.decode(ByteBuffer(bytes: part), maxDecompressedSize: 500 << 10)
        }
        let two = Packet.encode(encodedMessages: [part, part], crc: false)
        #expect(try Packet.decode(two, maxDecompressedSize: 1 << 20) == one)
        #expect(Packet.maxDecompressedSize == 40 << 20)
    }

    @Test func userMessageIsTheRawTail() throws {
        let message = WireMessage.user(Array("hello".utf8))
        #expect(message.encoded() == [0x08] + Array("hello".utf8))
        #expect(try self.decode([0x08] + Array("hello".utf8)) == [message])
        #expect(try self.decode([0x08]) == [.user([])])
    }

    @Test func sourceFieldsAreOmittedWhenAbsentOrEmpty() throws {
        let bare = WireMessage.ping(Ping(node: "a", seqNo: 1))
        let expected = hex("00 82 a4 4e 6f 64 65 a1 61 a5 53 65 71 4e 6f 01")
        #expect(bare.encoded() == expected)
        #expect(WireMessage.ping(Ping(node: "a", seqNo: 1, sourceAddr: [], sourceNode: "", sourcePort: 0)).encoded() == expected)
        #expect(try self.decode(expected) == [bare])
        let partial = WireMessage.ping(Ping(node: "a", seqNo: 1, sourceNode: "b"))
        #expect(partial.encoded() == hex("00 83 a4 4e 6f 64 65 a1 61 a5 53 65 71 4e 6f 01 aa 53 6f 75 72 63 65 4e 6f 64 65 a1 62"))
        #expect(try self.decode(partial.encoded()) == [partial])
    }

    @Test func ackPayloadRoundTripsAndEmptyMeansNil() throws {
        let withPayload = WireMessage.ack(Ack(seqNo: 70_000, payload: [1, 2, 3]))
        #expect(withPayload.encoded() == hex("02 82 a7 50 61 79 6c 6f 61 64 a3 01 02 03 a5 53 65 71 4e 6f ce 00 01 11 70"))
        #expect(try self.decode(withPayload.encoded()) == [withPayload])
        #expect(try self.decode(hex("02 82 a7 50 61 79 6c 6f 61 64 a0 a5 53 65 71 4e 6f 01")) == [WireVectors.ackMessage])
        #expect(try self.decode(hex("02 81 a5 53 65 71 4e 6f 01")) == [WireVectors.ackMessage])
    }

    @Test func compoundOfMaximumSizeRoundTrips() throws {
        let messages = (0..<UInt32(Packet.maxCompoundParts)).map { WireMessage.nack(Nack(seqNo: $0)) }
        let packet = Packet.encode(messages, crc: true)
        #expect(packet.getInteger(at: 6, as: UInt8.self) == 127)
        #expect(try Packet.decode(packet) == messages)
    }
}
