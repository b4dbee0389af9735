import NIOCore
import Testing

@testable import Membership

/// Truncated and corrupted versions of every vector: the decoders may throw or return fewer
/// messages, but must never trap, hang or over-read. Mutations use a fixed seed so failures reproduce.
@Suite struct HostileInputTests {
    static let packetSeeds: [[UInt8]] =
        WireVectors.udpMessages.map(\.bytes) + [
            WireVectors.gossip,
            Packet.encode([WireVectors.pingMessage, WireVectors.deadMessage], crc: false).bytes,
            [0x09] + Compressed(buffer: LZW.compress(Packet.compound([WireVectors.ack, WireVectors.aliveB, WireVectors.suspect]))).messagePack,
            [0xF4, 0x02, 0x78, 0x79] + WireVectors.gossip,
        ]

    static let streamSeeds: [[UInt8]] =
        [WireVectors.pushPull, WireVectors.compressedPushPull]
        + StreamMessageDecoderTests.samples.prefix(2).flatMap { [$0.encoded(compressed: false), $0.encoded(compressed: true)] }
        + StreamMessageDecoderTests.samples.dropFirst(2).map { $0.encoded(compressed: false) }

    /// Decodes a datagram; throwing is fine, and what is returned can't exceed what the input holds.
    private func decodePacket(_ bytes: [UInt8]) {
        if let messages = try? Packet.decode(ByteBuffer(bytes: bytes)) {
            #expect(messages.count <= 127 * 127)
        }
    }

    /// Decodes a stream both whole and in small pieces; both must agree.
    private func decodeStream(_ bytes: [UInt8]) {
        var whole = StreamMessageDecoder(maxMessageSize: 1 << 20)
        whole.append(ByteBuffer(bytes: bytes))
        let wholeResult = Result { try whole.next() }

        var pieces = StreamMessageDecoder(maxMessageSize: 1 << 20)
        var piecesResult: Result<StreamMessage?, any Error> = .success(nil)
        var start = 0
        while start < bytes.count {
            let end = min(start + 7, bytes.count)
            pieces.append(ByteBuffer(bytes: bytes[start..<end]))
            start = end
            piecesResult = Result { try pieces.next() }
            if case .success(nil) = piecesResult { continue }
            break
        }
        switch (wholeResult, piecesResult) {
        case (.success(let a), .success(let b)): #expect(a == b)
        case (.failure, .failure): break
        default: Issue.record("whole and piecewise decoding disagree on \(bytes)")
        }
    }

    @Test func everyTruncatedPacketIsHandled() throws {
        for seed in Self.packetSeeds {
            for length in 0..<seed.count {
                self.decodePacket(Array(seed.prefix(length)))
            }
        }
        // A truncated single message is an error, never a wrong message.
        for length in 1..<WireVectors.ping.count {
            #expect(throws: WireError.self) { try Packet.decode(ByteBuffer(bytes: Array(WireVectors.ping.prefix(length)))) }
        }
        // A truncated CRC'd packet fails its checksum.
        for length in 6..<WireVectors.gossip.count {
            #expect(throws: WireError.self) { try Packet.decode(ByteBuffer(bytes: Array(WireVectors.gossip.prefix(length)))) }
        }
    }

    @Test func everyTruncatedStreamWaitsForMoreBytes() throws {
        for seed in Self.streamSeeds {
            // Every prefix of the small seeds; a sample of them for the large push/pull (parsing each
            // prefix from scratch would make this test quadratic).
            for length in stride(from: 0, to: seed.count, by: seed.count < 2048 ? 1 : 13) {
                var decoder = StreamMessageDecoder()
                decoder.append(ByteBuffer(bytes: Array(seed.prefix(length))))
                #expect(try decoder.next() == nil, "a prefix of \(length) bytes must not be a message")
            }
        }
    }

    @Test func mutatedPacketsNeverCrash() {
        var generator = SplitMix(state: 0x5EED)
        for seed in Self.packetSeeds {
            for _ in 0..<400 {
                self.decodePacket(Self.mutate(seed, using: &generator))
            }
            // Every single-byte replacement with a few interesting values.
            for index in seed.indices {
                for value: UInt8 in [0x00, 0x7F, 0xC0, 0xC1, 0xDB, 0xDF, 0xFF, seed[index] ^ 0x80] {
                    var mutated = seed
                    mutated[index] = value
                    self.decodePacket(mutated)
                }
            }
        }
    }

    @Test func mutatedStreamsNeverCrash() {
        var generator = SplitMix(state: 0xF00D)
        // The large push/pull seeds would take minutes in a debug build; truncation covers them.
        for seed in Self.streamSeeds where seed.count < 2048 {
            for _ in 0..<200 {
                self.decodeStream(Self.mutate(seed, using: &generator))
            }
            for index in seed.indices where index < 400 {
                for value: UInt8 in [0x00, 0xC0, 0xC1, 0xDB, 0xDF, 0xFF, seed[index] ^ 0x01] {
                    var mutated = seed
                    mutated[index] = value
                    self.decodeStream(mutated)
                }
            }
        }
    }

    @Test func mutatedCompressedDataNeverCrashes() {
        var generator = SplitMix(state: 0x12D)
        let seeds = [WireVectors.compressedPushPullBuffer, LZW.compress(LZWTests.compressibleData(count: 20_000, seed: 3))]
        for seed in seeds {
            for _ in 0..<300 {
                _ = try? LZW.decompress(Self.mutate(seed, using: &generator), limit: 1 << 20)
            }
        }
    }

    @Test func randomBytesNeverCrash() {
        var generator = SplitMix(state: 0xABCD)
        for _ in 0..<2000 {
            let count = Int(generator.next() % 64)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            self.decodePacket(bytes)
            self.decodeStream(bytes)
            self.decodePacket([0x07, 0x03] + bytes)
            self.decodeStream([0x06] + bytes)
            var reader = MessagePackReader(bytes)
            _ = try? reader.skip()
        }
    }

    /// Flips bits, overwrites, inserts, deletes or truncates at random positions.
    static func mutate(_ seed: [UInt8], using generator: inout SplitMix) -> [UInt8] {
        var bytes = seed
        for _ in 0..<(1 + Int(generator.next() % 3)) {
            guard !bytes.isEmpty else { break }
            let index = Int(generator.next() % UInt64(bytes.count))
            switch generator.next() % 5 {
            case 0: bytes[index] ^= UInt8(1 << (generator.next() % 8))
            case 1: bytes[index] = UInt8(truncatingIfNeeded: generator.next())
            case 2: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: index)
            case 3: bytes.remove(at: index)
            default: bytes.removeLast(bytes.count - index)
            }
        }
        return bytes
    }
}
