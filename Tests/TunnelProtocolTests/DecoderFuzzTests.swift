import Foundation
import NIOCore
import Testing

@testable import TunnelProtocol

/// Mutation fuzzing of every decoder a hostile peer reaches: v2 frames
/// (through a `MultiplexerStateMachine` of each role), the legacy envelope and HTTP/1.1.
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
        // Both roles, as the handler runs them: the opener with webhooks in flight and a small
        // window, so DATA can overrun it; a connection error (a throw) ends the connection.
        let configuration = TunnelConfiguration(initialWindow: 64, maxDataChunk: 16, maxOpenStreams: 4)
        var acceptor = MultiplexerStateMachine(role: .acceptor, configuration: configuration)
        var opener = MultiplexerStateMachine(role: .opener, configuration: configuration)
        for _ in 0..<3 {
            guard let id = try? opener.openStream() else { break }
            _ = opener.sendHead(on: id, endStream: false)
        }
        if let frame = try? Frame(decoding: buffer) {
            // The same frame twice: a second head, data after the end, a stray.
            for _ in 0..<2 {
                if case .open(let id, _, _) = try? acceptor.receive(frame) { _ = acceptor.sendHead(on: id, endStream: false) }
                if case .deliver(let id, .data(let data, _), _) = try? opener.receive(frame) {
                    _ = opener.consume(data.readableBytes, on: id)
                }
            }
        }
        if let text = String(bytes: bytes, encoding: .utf8), let message = try? LegacyMessage(json: text) {
            _ = try? HTTP1Message.parse(message.payload)
        }
        _ = try? HTTP1Message.parse(buffer)
        _ = acceptor.closeConnection(StreamResetReason(.connectionLost, "done"))
        _ = opener.closeConnection(StreamResetReason(.connectionLost, "done"))
        #expect(acceptor.openStreamCount == 0 && opener.openStreamCount == 0)
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
