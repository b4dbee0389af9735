import HTTPTypes
import Testing
@testable import TunnelProtocol

@Suite("The fields a proxy forwards")
struct HopByHopTests {
    static func fields(_ pairs: [(String, String)]) -> HTTPFields {
        HTTPFields(pairs.map { HTTPField(name: HTTPField.Name($0.0)!, value: $0.1) })
    }

    static func pairs(_ fields: HTTPFields) -> [[String]] {
        fields.map { [$0.name.rawName, $0.value] }
    }

    @Test("Hop-by-hop fields, Host, Proxy-* and the names Connection lists are dropped; the rest keep order, repeats and case")
    func dropsHopByHop() {
        let fields = Self.fields([
            ("Host", "relay.example"),
            ("X-GitHub-Event", "push"),
            ("Connection", "keep-alive,\tX-Private , Upgrade"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAAQAAP__"),
            ("Proxy-Authorization", "Basic eDp5"),
            ("Proxy-Connection", "keep-alive"),
            ("x-private", "secret"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Content-Type", "application/json"),
            ("Proxyish", "kept: not the proxy- prefix"),
        ])
        #expect(
            Self.pairs(fields.endToEnd) == [
                ["X-GitHub-Event", "push"],
                ["Set-Cookie", "a=1"],
                ["Set-Cookie", "b=2"],
                ["Content-Type", "application/json"],
                ["Proxyish", "kept: not the proxy- prefix"],
            ]
        )
    }

    @Test("Fields with nothing to drop come back as they were")
    func keepsEverythingElse() {
        let fields = Self.fields([("Content-Length", "2"), ("X-Te", "1"), ("Hosts", "2"), ("Trailers", "3")])
        #expect(Self.pairs(fields.endToEnd) == Self.pairs(fields))
    }
}

extension HopByHopTests {
    @Test("A Connection of only keep-alive drops nothing more; any other token is read as a name")
    func connectionOptions() {
        for value in ["keep-alive", " Keep-Alive\t", "KEEP-ALIVE"] {
            #expect(HTTPFields.namesNoOtherField(value), "\(value)")
        }
        for value in ["keep-alive, x-trace", "close", "upgrade", "keep-alive2", "keep", ""] {
            #expect(!HTTPFields.namesNoOtherField(value), "\(value)")
        }
        let fields = Self.fields([("Connection", "Keep-Alive"), ("Keep-Alive", "timeout=5"), ("Close", "kept"), ("X", "1")])
        #expect(Self.pairs(fields.endToEnd) == [["Close", "kept"], ["X", "1"]])
        // `close` is still a token: a field of that name goes, as RFC 9110 §7.6.1 has it.
        #expect(Self.pairs(Self.fields([("Connection", "close"), ("Close", "x"), ("X", "1")]).endToEnd) == [["X", "1"]])
    }

    @Test(
        "A list filtered as a list gives the same fields as the fields filtered",
        arguments: [
            [("Host", "h"), ("Connection", "keep-alive, X-Private"), ("x-private", "1"), ("X-A", "2"), ("Keep-Alive", "5")],
            [("X-Private", "early"), ("Connection", "x-private"), ("X-B", "3")],
            [("Content-Type", "text/plain"), ("Content-Length", "2")],
            [("Connection", "close"), ("Close", "x"), ("X", "1")],
            [],
        ]
    )
    func aListFilteredAsAListMatches(_ pairs: [(String, String)]) {
        let fields = Self.fields(pairs)
        #expect(Self.pairs(HTTPFields.endToEnd(from: Array(fields))) == Self.pairs(fields.endToEnd))
    }
}
