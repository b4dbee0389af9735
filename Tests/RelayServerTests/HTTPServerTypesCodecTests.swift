import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Testing

@testable import RelayServer

@Suite("HTTP/1 heads as HTTP types, without URLComponents")
struct HTTPServerTypesCodecTests {
    static func head(_ method: HTTPMethod, _ uri: String, _ headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    /// Origin-form heads (the fast path) and every other form (the extras' conversion).
    static let heads: [HTTPRequestHead] = [
        head(
            .POST,
            "/webhook/6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f/github?x=1&y=%20",
            [
                ("Host", "relay.example:8080"), ("Content-Type", "application/json"), ("X-Hub-Signature-256", "sha256=ab"),
                ("content-length", "2"), ("X-Repeat", "1"), ("x-repeat", "2"),
            ]
        ),
        head(.GET, "/", []),
        head(.GET, "/a", [("hOsT", "first.example"), ("Host", "second.example"), ("Accept", "*/*")]),
        head(.GET, "/with a space?and=%zz", [("Bad Name", "dropped"), ("Good", "kept")]),
        head(.GET, "//double/slash", [("Host", "h")]),
        head(.GET, "http://absolute.example/path?q=1", [("Host", "other.example")]),
        head(.OPTIONS, "*", [("Host", "h")]),
        head(.CONNECT, "relay.example:443", [("Host", "relay.example:443")]),
        head(.RAW(value: "PURGE"), "/cache", [("Host", "h")]),
    ]

    @Test("Every head converts to the request swift-nio-extras' conversion gives")
    func sameAsTheExtras() throws {
        for head in Self.heads {
            let expected = try HTTPRequest(head, secure: false, splitCookie: false)
            #expect(try HTTPServerTypesCodec.request(head) == expected, "\(head.method) \(head.uri)")
        }
    }

    @Test("In a pipeline: request parts in, response parts out")
    func convertsBothWays() throws {
        let channel = EmbeddedChannel(handler: HTTPServerTypesCodec())
        let head = Self.heads[0]
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "{}")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let request) = try channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("no head")
            return
        }
        #expect(request.authority == "relay.example:8080")
        #expect(request.path == head.uri)
        #expect(request.headerFields.map(\.name.rawName) == ["Content-Type", "X-Hub-Signature-256", "content-length", "X-Repeat", "x-repeat"])
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == .body(ByteBuffer(string: "{}")))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == .end(nil))

        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .accepted, headerFields: [.contentType: "text/plain"])))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        guard case .head(let response) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no response head")
            return
        }
        #expect(response.status == .accepted)
        #expect(response.headers["Content-Type"] == ["text/plain"])
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == .end(nil))
        #expect(try channel.finish().isClean)
    }
}
