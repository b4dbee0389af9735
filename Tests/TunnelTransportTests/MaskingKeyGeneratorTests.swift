import NIOWebSocket
import Testing

@testable import TunnelTransport

@Suite("Masking keys read from the kernel in blocks")
struct MaskingKeyGeneratorTests {
    @Test("Keys across several blocks are all different and not zero")
    func keysAreUnpredictable() {
        var generator = MaskingKeyGenerator()
        // Three blocks' worth of 64-bit words: a refill that repeated or zeroed a block would show.
        let words = (0..<(3 * MaskingKeyGenerator.blockWords)).map { _ in generator.next() }
        #expect(Set(words).count == words.count)
        #expect(!words.contains(0))
        let keys = (0..<1_000).map { _ in WebSocketMaskingKey.random(using: &generator) }
        #expect(Set(keys.map { Array($0) }).count > 990)
    }
}
