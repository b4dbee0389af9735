public import HTTPTypes
public import NIOCore

/// The head of a tunnelled request: what the server received after `/webhook/<id>`.
public struct RequestHead: Sendable, Equatable {
    /// The HTTP method, as the sender wrote it.
    public var method: String
    /// Path suffix and query, e.g. `/github?x=1`; empty when the sender used `/webhook/<id>` alone.
    public var target: String
    /// Headers in the sender's order, with repeats; hop-by-hop headers already removed.
    public var headerFields: HTTPFields

    public init(method: String, target: String, headerFields: HTTPFields) {
        self.method = method
        self.target = target
        self.headerFields = headerFields
    }

    /// REQUEST_HEAD payload: method (u8 length + bytes), target (u16 length + bytes), header block.
    public func encode(into buffer: inout ByteBuffer) throws(TunnelProtocolError) {
        try buffer.writeShortString(self.method, lengthBytes: 1, what: "method")
        try buffer.writeShortString(self.target, lengthBytes: 2, what: "target")
        try buffer.writeHeaderBlock(self.headerFields)
    }

    public init(decoding payload: ByteBuffer) throws(TunnelProtocolError) {
        var payload = payload
        let method = try payload.readShortString(lengthBytes: 1, what: "method")
        guard !method.isEmpty, method.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .invalidField("method \(method.debugDescription)")
        }
        let target = try payload.readShortString(lengthBytes: 2, what: "target")
        guard target.isEmpty || target.hasPrefix("/") || target.hasPrefix("?") else {
            throw .invalidField("target must start with / or ?")
        }
        let fields = try payload.readHeaderBlock()
        self.init(method: method, target: target, headerFields: fields)
    }
}

/// The head of the local app's answer.
public struct ResponseHead: Sendable, Equatable {
    public var status: Int
    public var headerFields: HTTPFields

    public init(status: Int, headerFields: HTTPFields) {
        self.status = status
        self.headerFields = headerFields
    }

    /// RESPONSE_HEAD payload: status (u16), header block.
    public func encode(into buffer: inout ByteBuffer) throws(TunnelProtocolError) {
        buffer.writeInteger(UInt16(clamping: self.status))
        try buffer.writeHeaderBlock(self.headerFields)
    }

    public init(decoding payload: ByteBuffer) throws(TunnelProtocolError) {
        var payload = payload
        guard let status: UInt16 = payload.readInteger() else { throw .truncated("status") }
        guard (100...999).contains(status) else { throw .invalidField("status \(status)") }
        let fields = try payload.readHeaderBlock()
        self.init(status: Int(status), headerFields: fields)
    }
}

extension ByteBuffer {
    /// Header block: u16 count, then per field u16 name length, name, u16 value length, value.
    fileprivate mutating func writeHeaderBlock(_ fields: HTTPFields) throws(TunnelProtocolError) {
        guard fields.count <= UInt16.max else { throw .fieldTooLong("\(fields.count) header fields") }
        self.writeInteger(UInt16(fields.count))
        for field in fields {
            try self.writeShortString(field.name.rawName, lengthBytes: 2, what: "header name")
            try self.writeShortString(field.value, lengthBytes: 2, what: "value of \(field.name)")
        }
    }

    fileprivate mutating func readHeaderBlock() throws(TunnelProtocolError) -> HTTPFields {
        guard let count: UInt16 = self.readInteger() else { throw .truncated("header count") }
        var list: [HTTPField] = []
        list.reserveCapacity(Int(count))
        for _ in 0..<count {
            let name = try self.readShortString(lengthBytes: 2, what: "header name")
            let value = try self.readShortString(lengthBytes: 2, what: "header value")
            guard let fieldName = HTTPField.Name(name) else { throw .invalidField("header name \(name.debugDescription)") }
            guard HTTPField.isValidValue(value) else { throw .invalidField("value of \(name)") }
            list.append(HTTPField(name: fieldName, value: value))
        }
        guard self.readableBytes == 0 else { throw .invalidField("\(self.readableBytes) trailing bytes after headers") }
        return HTTPFields.from(list)
    }

    /// `what` names the field in the error, and is made only then: a name interpolated for every
    /// header was five string allocations per webhook on the server (docs/performance.md).
    fileprivate mutating func writeShortString(_ string: String, lengthBytes: Int, what: @autoclosure () -> String) throws(TunnelProtocolError) {
        let count = string.utf8.count
        if lengthBytes == 1 {
            guard count <= UInt8.max else { throw .fieldTooLong(what()) }
            self.writeInteger(UInt8(count))
        } else {
            guard count <= UInt16.max else { throw .fieldTooLong(what()) }
            self.writeInteger(UInt16(count))
        }
        self.writeString(string)
    }

    fileprivate mutating func readShortString(lengthBytes: Int, what: String) throws(TunnelProtocolError) -> String {
        let length: Int
        if lengthBytes == 1 {
            guard let value: UInt8 = self.readInteger() else { throw .truncated("\(what) length") }
            length = Int(value)
        } else {
            guard let value: UInt16 = self.readInteger() else { throw .truncated("\(what) length") }
            length = Int(value)
        }
        guard let string = self.readString(length: length) else { throw .truncated(what) }
        return string
    }
}
