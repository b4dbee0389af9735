import Foundation
import Testing

@testable import Inspector

@Suite struct HeaderEncodingTests {
    @Test func storedHeadersRoundTripWithQuotesBackslashesControlCharactersAndUnicode() throws {
        let headers = [
            HeaderField("Content-Type", "application/json"),
            HeaderField("X-Quote", #"a "quoted" \ value"#),
            HeaderField("X-Control", "tab\there\u{01}\u{1F}"),
            HeaderField("X-Unicode", "café ☕ 𝄞"),
            HeaderField("x-repeat", "1"),
            HeaderField("x-repeat", "2"),
            HeaderField("X-Empty", ""),
        ]
        let text = HistoryStore.encode(headers)
        // Valid JSON for any other reader, too.
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String]])
        #expect(parsed.map { HeaderField($0[0], $0[1]) } == headers)
        #expect(HistoryStore.decode(text) == headers)
        #expect(HistoryStore.encode([]) == "[]")
    }

    @Test func aHeaderNameMatchesIgnoringASCIICaseOnly() {
        #expect(HeaderField("X-Webhook-Delivery-ID", "1").isNamed("x-webhook-delivery-id"))
        #expect(HeaderField("content-length", "1").isNamed("content-length"))
        #expect(!HeaderField("Content-Lengths", "1").isNamed("content-length"))
        #expect(!HeaderField("Content_Length", "1").isNamed("content-length"))
        #expect(!HeaderField("CONTENT-LENGTḦ", "1").isNamed("content-length"))
    }
}
