import Foundation
import Testing

@testable import Inspector

/// Ids checked against Foundation's own UUID parser.
@Suite struct WebhookIDTests {
    @Test func idsAreDistinctVersion4UUIDsInLowerCase() throws {
        let ids = (0..<10_000).map { _ in WebhookID.string(WebhookID.nextSerial()) }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            let parsed = try #require(UUID(uuidString: id))
            #expect(parsed.uuidString.lowercased() == id)
            let bytes = withUnsafeBytes(of: parsed.uuid) { Array($0) }
            #expect(bytes[6] >> 4 == 4)
            #expect(bytes[8] >> 6 == 0b10)
        }
    }
}
