import Foundation
public import HTTPTypes
public import NIOCore

/// The original Go client's framing: each WebSocket text message is
/// `{"req_id": "<uuid>", "payload": "<base64>"}`, where the payload is a whole
/// HTTP/1.1 request (server to client) or response (client to server).
///
/// This framing carries whole bodies, so the server buffers them (bounded by
/// `--max-body-size`); v2 exists to avoid exactly that.
public struct LegacyMessage: Sendable, Equatable, Codable {
    public var requestID: String
    public var payload: ByteBuffer

    public init(requestID: String, payload: ByteBuffer) {
        self.requestID = requestID
        self.payload = payload
    }

    enum CodingKeys: String, CodingKey {
        case requestID = "req_id"
        case payload
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.requestID = try container.decode(String.self, forKey: .requestID)
        let base64 = try container.decode(String.self, forKey: .payload)
        guard let data = Data(base64Encoded: base64) else {
            throw DecodingError.dataCorruptedError(forKey: .payload, in: container, debugDescription: "payload is not base64")
        }
        self.payload = ByteBuffer(bytes: data)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.requestID, forKey: .requestID)
        try container.encode(Data(self.payload.readableBytesView).base64EncodedString(), forKey: .payload)
    }

    /// Parses one text message.
    public init(json: String) throws(TunnelProtocolError) {
        do {
            self = try JSONDecoder().decode(LegacyMessage.self, from: Data(json.utf8))
        } catch {
            throw .malformedLegacyMessage("\(error)")
        }
    }

    /// The text message for this envelope.
    public func json() -> String {
        // Encoding a struct of two strings cannot fail.
        let data = (try? JSONEncoder().encode(self)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// HTTP/1.1 messages as the legacy framing carries them.
public enum HTTP1Message {
    /// A whole HTTP/1.1 request as sent on the wire, with `Content-Length`.
    public static func serializeRequest(method: String, target: String, headerFields: HTTPFields, body: ByteBuffer) -> ByteBuffer {
        Self.serialize(startLine: "\(method) \(target) HTTP/1.1", headerFields: headerFields, body: body)
    }

    /// A whole HTTP/1.1 response as sent on the wire.
    public static func serializeResponse(status: Int, reason: String = "", headerFields: HTTPFields, body: ByteBuffer) -> ByteBuffer {
        Self.serialize(startLine: "HTTP/1.1 \(status) \(reason)", headerFields: headerFields, body: body)
    }

    private static func serialize(startLine: String, headerFields: HTTPFields, body: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("\(startLine)\r\n")
        for field in headerFields where field.name != .contentLength && field.name != .transferEncoding {
            buffer.writeString("\(field.name.rawName): \(field.value)\r\n")
        }
        buffer.writeString("Content-Length: \(body.readableBytes)\r\n\r\n")
        buffer.writeImmutableBuffer(body)
        return buffer
    }

    public struct Parsed: Sendable, Equatable {
        /// Status code for responses; 0 for requests.
        public var status: Int
        /// Method and target for requests; empty for responses.
        public var method: String
        public var target: String
        public var headerFields: HTTPFields
        public var body: ByteBuffer
    }

    /// Parses a whole HTTP/1.1 request or response. The body is delimited by
    /// `Content-Length`, chunked encoding, or the end of the message.
    public static func parse(_ message: ByteBuffer) throws(TunnelProtocolError) -> Parsed {
        var buffer = message
        guard let startLine = Self.readLine(&buffer) else { throw .malformedLegacyMessage("no start line") }
        var parsed = Parsed(status: 0, method: "", target: "", headerFields: [:], body: ByteBuffer())
        let parts = startLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        if startLine.hasPrefix("HTTP/") {
            guard parts.count >= 2, let status = Int(parts[1]), (100...999).contains(status) else {
                throw .malformedLegacyMessage("bad status line")
            }
            parsed.status = status
        } else {
            guard parts.count == 3, parts[2].hasPrefix("HTTP/") else { throw .malformedLegacyMessage("bad request line") }
            parsed.method = String(parts[0])
            parsed.target = String(parts[1])
        }
        while true {
            guard let line = Self.readLine(&buffer) else { throw .malformedLegacyMessage("headers not terminated") }
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":"),
                let name = HTTPField.Name(String(line[..<colon]))
            else { throw .malformedLegacyMessage("bad header line") }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            parsed.headerFields.append(HTTPField(name: name, value: value))
        }
        if parsed.headerFields[.transferEncoding]?.lowercased().contains("chunked") == true {
            parsed.body = try Self.readChunked(&buffer)
            parsed.headerFields[.transferEncoding] = nil
        } else if let lengthText = parsed.headerFields[.contentLength] {
            guard let length = Int(lengthText), length >= 0, length <= buffer.readableBytes else {
                throw .malformedLegacyMessage("Content-Length does not match the body")
            }
            parsed.body = buffer.readSlice(length: length)!
        } else {
            parsed.body = buffer
        }
        return parsed
    }

    private static func readLine(_ buffer: inout ByteBuffer) -> String? {
        guard let index = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let length = index - buffer.readerIndex
        var line = buffer.readString(length: length) ?? ""
        buffer.moveReaderIndex(forwardBy: 1)
        if line.hasSuffix("\r") { line.removeLast() }
        return line
    }

    private static func readChunked(_ buffer: inout ByteBuffer) throws(TunnelProtocolError) -> ByteBuffer {
        var body = ByteBuffer()
        while true {
            guard let sizeLine = Self.readLine(&buffer),
                let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16)
            else { throw .malformedLegacyMessage("bad chunk size") }
            if size == 0 { return body }
            guard var chunk = buffer.readSlice(length: size) else { throw .malformedLegacyMessage("truncated chunk") }
            body.writeBuffer(&chunk)
            _ = Self.readLine(&buffer)
        }
    }
}
