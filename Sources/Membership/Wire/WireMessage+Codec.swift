extension WireMessage {
    /// The message as Go writes it: its type byte, then the msgpack body (docs/memberlist-wire.md §5). A user message
    /// is its type byte followed by the payload as it is, which is the UDP form.
    public func encoded() -> [UInt8] {
        var writer = MessagePackWriter()
        switch self {
        case .ping(let ping): Self.write(.ping, ping, to: &writer)
        case .indirectPing(let indirectPing): Self.write(.indirectPing, indirectPing, to: &writer)
        case .ack(let ack): Self.write(.ack, ack, to: &writer)
        case .nack(let nack): Self.write(.nack, nack, to: &writer)
        case .suspect(let suspect): Self.write(.suspect, suspect, to: &writer)
        case .alive(let alive): Self.write(.alive, alive, to: &writer)
        case .dead(let dead): Self.write(.dead, dead, to: &writer)
        case .user(let payload):
            writer.writeByte(MessageType.user.rawValue)
            writer.writeBytes(payload)
        }
        return writer.bytes
    }

    private static func write(_ type: MessageType, _ body: some MessagePackBody, to writer: inout MessagePackWriter) {
        writer.writeByte(type.rawValue)
        body.write(to: &writer)
    }

    /// Decodes one single message (type byte and body) from `bytes[range]`.
    ///
    /// Bytes after the msgpack body are ignored, as Go ignores them. Container and stream-only types
    /// (compound, compress, pushPull, …) are not single UDP messages and throw
    /// ``WireError/unexpectedMessageType(_:)``; ``Packet/decode(_:)`` handles the containers.
    init(decoding bytes: [UInt8], range: Range<Int>) throws {
        guard !range.isEmpty else { throw WireError.emptyMessage }
        let typeByte = bytes[range.lowerBound]
        var reader = MessagePackReader(bytes, range: range.lowerBound + 1..<range.upperBound)
        switch MessageType(rawValue: typeByte) {
        case .ping: self = .ping(try Ping(reading: &reader))
        case .indirectPing: self = .indirectPing(try IndirectPing(reading: &reader))
        case .ack: self = .ack(try Ack(reading: &reader))
        case .nack: self = .nack(try Nack(reading: &reader))
        case .suspect: self = .suspect(try Suspect(reading: &reader))
        case .alive: self = .alive(try Alive(reading: &reader))
        case .dead: self = .dead(try Dead(reading: &reader))
        case .user: self = .user(Array(bytes[range.lowerBound + 1..<range.upperBound]))
        default: throw WireError.unexpectedMessageType(typeByte)
        }
    }

    init(decoding bytes: [UInt8]) throws {
        try self.init(decoding: bytes, range: bytes.startIndex..<bytes.endIndex)
    }
}
