import HTTPTypes
import NIOCore
import Testing

@testable import TunnelProtocol

@Suite struct LegacyMessageTests {
    @Test func envelopeRoundTrips() throws {
        let message = LegacyMessage(requestID: "3f1c", payload: ByteBuffer(bytes: [0, 1, 2, 255]))
        let json = message.json()
        #expect(json.contains("\"req_id\":\"3f1c\""))
        #expect(json.contains("\"payload\":\"AAEC\\/w==\"") || json.contains("\"payload\":\"AAEC/w==\""))
        #expect(try LegacyMessage(json: json) == message)
        #expect(throws: TunnelProtocolError.self) { try LegacyMessage(json: "{\"req_id\": 1}") }
    }

    @Test func serializesAndParsesRequests() throws {
        var fields = HTTPFields()
        fields.append(HTTPField(name: .contentType, value: "application/json"))
        fields.append(HTTPField(name: HTTPField.Name("X-A")!, value: "1"))
        fields.append(HTTPField(name: HTTPField.Name("X-A")!, value: "2"))
        let wire = HTTP1Message.serializeRequest(method: "POST", target: "/webhook/abc/x?y=1", headerFields: fields, body: ByteBuffer(string: "{}"))
        #expect(String(buffer: wire).hasPrefix("POST /webhook/abc/x?y=1 HTTP/1.1\r\nContent-Type: application/json\r\nX-A: 1\r\nX-A: 2\r\n"))
        let parsed = try HTTP1Message.parse(wire)
        #expect(parsed.method == "POST")
        #expect(parsed.target == "/webhook/abc/x?y=1")
        #expect(parsed.headerFields[values: HTTPField.Name("X-A")!] == ["1", "2"])
        #expect(String(buffer: parsed.body) == "{}")
    }

    @Test func parsesChunkedAndUndelimitedResponses() throws {
        let chunked = ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        let parsed = try HTTP1Message.parse(chunked)
        #expect(parsed.status == 200)
        #expect(String(buffer: parsed.body) == "abcde")
        let open = try HTTP1Message.parse(ByteBuffer(string: "HTTP/1.1 204 No Content\r\nX: y\r\n\r\n"))
        #expect(open.status == 204)
        #expect(open.body.readableBytes == 0)
        #expect(throws: TunnelProtocolError.self) { try HTTP1Message.parse(ByteBuffer(string: "HTTP/1.1 abc\r\n\r\n")) }
        #expect(throws: TunnelProtocolError.self) {
            try HTTP1Message.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
        }
    }
}
