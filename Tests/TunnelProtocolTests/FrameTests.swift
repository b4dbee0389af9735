import HTTPTypes
import NIOCore
import Testing

@testable import TunnelProtocol

@Suite struct FrameTests {
    @Test func encodesTheDocumentedBytes() throws {
        // The example of docs/protocol.md: DATA on stream 1 carrying "hi".
        let frame = Frame(type: .data, streamID: 1, payload: ByteBuffer(string: "hi"))
        #expect(Array(frame.encoded().readableBytesView) == [0x03, 0x00, 0x00, 0x00, 0x00, 0x01, 0x68, 0x69])
    }

    @Test func roundTripsEveryType() throws {
        for type in [FrameType.requestHead, .responseHead, .data, .end, .reset, .windowUpdate] {
            let frame = Frame(type: type, flags: .endStream, streamID: 0xDEAD_BEEF, payload: ByteBuffer(string: "payload"))
            #expect(try Frame(decoding: frame.encoded()) == frame)
        }
    }

    @Test func rejectsBadFrames() {
        #expect(throws: TunnelProtocolError.self) { try Frame(decoding: ByteBuffer(bytes: [0x03, 0x00, 0x00])) }
        #expect(throws: TunnelProtocolError.unknownFrameType(0x09)) {
            try Frame(decoding: ByteBuffer(bytes: [0x09, 0, 0, 0, 0, 1]))
        }
        #expect(throws: TunnelProtocolError.invalidStreamID(0)) {
            try Frame(decoding: ByteBuffer(bytes: [0x03, 0, 0, 0, 0, 0]))
        }
    }

    @Test func requestHeadKeepsHeaderOrderAndRepeats() throws {
        var fields = HTTPFields()
        fields.append(HTTPField(name: HTTPField.Name("X-Multi")!, value: "one"))
        fields.append(HTTPField(name: .contentType, value: "application/json"))
        fields.append(HTTPField(name: HTTPField.Name("X-Multi")!, value: "two"))
        let head = RequestHead(method: "POST", target: "/github?x=1", headerFields: fields)
        var buffer = ByteBuffer()
        try head.encode(into: &buffer)
        let decoded = try RequestHead(decoding: buffer)
        #expect(decoded == head)
        #expect(decoded.headerFields.map(\.value) == ["one", "application/json", "two"])
    }

    @Test func requestHeadRejectsGarbage() {
        #expect(throws: TunnelProtocolError.self) { try RequestHead(decoding: ByteBuffer(bytes: [5, 0x50])) }
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(3))
        buffer.writeString("GET")
        buffer.writeInteger(UInt16(3))
        buffer.writeString("abc")
        buffer.writeInteger(UInt16(0))
        #expect(throws: TunnelProtocolError.self) { try RequestHead(decoding: buffer) }
    }

    @Test func resetReasonRoundTrips() throws {
        let reason = StreamResetReason(.timeout, "too slow")
        var buffer = ByteBuffer()
        reason.encode(into: &buffer)
        #expect(try StreamResetReason(decoding: buffer) == reason)
    }
}
