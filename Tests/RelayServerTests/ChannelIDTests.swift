import Testing

@testable import RelayServer

@Suite("Channel id shape")
struct ChannelIDTests {
    @Test("Canonical UUIDs of either case are channel ids")
    func acceptsUUIDs() {
        #expect(ChannelID.isCanonical("0f8fad5b-d9cb-469f-a165-70867728950e"))
        #expect(ChannelID.isCanonical("0F8FAD5B-D9CB-469F-A165-70867728950E"))
        #expect(ChannelID.isCanonical("00000000-0000-0000-0000-000000000000"))
    }

    @Test("Anything else is not: junk, traversal, encoded separators, braces, wrong lengths")
    func refusesTheRest() {
        let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
        for id in [
            "", "not-a-uuid", "..", "%2e%2e", "\(uuid)%2F..%2Fnew", String(repeating: "a", count: 10_000),
            "{\(uuid)}", "0f8fad5bd9cb469fa16570867728950e", String(uuid.dropLast()), uuid + "0",
            "0f8fad5b-d9cb-469f-a165-70867728950g", "0f8fad5b_d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-469f-a165-7086772895\u{e9}",
        ] {
            #expect(!ChannelID.isCanonical(id), "\(id.prefix(60))")
        }
    }
}
