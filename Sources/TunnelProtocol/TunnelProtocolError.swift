/// A frame or message that does not follow the protocol.
public enum TunnelProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(String)
    case unknownFrameType(UInt8)
    case invalidStreamID(UInt32)
    case invalidField(String)
    case fieldTooLong(String)
    case flowControlViolation(streamID: UInt32)
    case unexpectedFrame(String)
    case malformedLegacyMessage(String)

    public var description: String {
        switch self {
        case .truncated(let what): "truncated frame: \(what)"
        case .unknownFrameType(let type): "unknown frame type 0x\(String(type, radix: 16))"
        case .invalidStreamID(let id): "invalid stream id \(id)"
        case .invalidField(let what): "invalid field: \(what)"
        case .fieldTooLong(let what): "field too long: \(what)"
        case .flowControlViolation(let id): "stream \(id) sent more than its window allows"
        case .unexpectedFrame(let what): "unexpected frame: \(what)"
        case .malformedLegacyMessage(let what): "malformed legacy message: \(what)"
        }
    }
}
