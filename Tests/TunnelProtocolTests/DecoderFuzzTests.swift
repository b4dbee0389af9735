import Foundation
import NIOCore
import Testing

@testable import TunnelProtocol

/// Mutation fuzzing of every decoder a hostile peer reaches: v2 frames
/// (through a multiplexer of each role), the legacy envelope and HTTP/1.1.
/// Seeds are the valid messages in `Corpus/`; each round flips, inserts,
/// deletes and truncates bytes with a fixed seed, so a failure reproduces.
/// Decoders may reject input; they must never crash or over-read.
@Suite struct DecoderFuzzTests {
    static let corpus: [[UInt8]] = {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.sorted().compactMap { try? Array(Data(contentsOf: directory.appendingPathComponent($0))) }
    }()

    /// A small deterministic generator (SplitMix64).
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

    static func mutate(_ input: [UInt8], using random: inout SplitMix) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            switch Int.random(in: 0..<5, using: &random) {
            case 0 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            case 1:
                bytes.insert(UInt8.random(in: 0...255, using: &random), at: Int.random(in: 0...bytes.count, using: &random))
            case 2 where !bytes.isEmpty:
                bytes.remove(at: Int.random(in: 0..<bytes.count, using: &random))
            case 3 where !bytes.isEmpty:
                bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random)))
            default:
                // Lengths are where decoders go wrong: set a u16 to an extreme.
                if bytes.count >= 8 {
                    let at = Int.random(in: 6..<(bytes.count - 1), using: &random)
                    bytes[at] = 0xFF
                    bytes[at + 1] = 0xFF
                }
            }
        }
        return bytes
    }

    static func decodeEverything(_ bytes: [UInt8]) {
        let buffer = ByteBuffer(bytes: bytes)
        let acceptor = StreamMultiplexer(role: .acceptor) { _ in }
        let opener = StreamMultiplexer(role: .opener) { _ in }
        _ = try? opener.openStream()
        _ = try? acceptor.receive(buffer)
        _ = try? opener.receive(buffer)
        if let text = String(bytes: bytes, encoding: .utf8), let message = try? LegacyMessage(json: text) {
            _ = try? HTTP1Message.parse(message.payload)
        }
        _ = try? HTTP1Message.parse(buffer)
        acceptor.shutdown(StreamResetReason(.connectionLost, "done"))
        opener.shutdown(StreamResetReason(.connectionLost, "done"))
    }

    @Test func corpusIsThere() {
        #expect(Self.corpus.count >= 7)
    }

    @Test func mutatedInputsNeverCrashTheDecoders() {
        var random = SplitMix(state: 0x5EED)
        for seed in Self.corpus {
            Self.decodeEverything(seed)
            for _ in 0..<3_000 {
                Self.decodeEverything(Self.mutate(seed, using: &random))
            }
        }
        for _ in 0..<3_000 {
            let noise = (0..<Int.random(in: 0..<64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            Self.decodeEverything(noise)
        }
    }
}
