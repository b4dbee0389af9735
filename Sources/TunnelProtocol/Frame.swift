import NIOCore

/// One frame of the `webhook-over-websocket.v2` protocol.
///
/// Every WebSocket binary message carries exactly one frame:
///
/// ```
///  0        1        2                                6
/// +--------+--------+--------------------------------+----------------
/// |  type  | flags  |   stream id (u32, big endian)  |  payload ...
/// +--------+--------+--------------------------------+----------------
/// ```
///
/// The payload runs to the end of the WebSocket message, so a frame needs no
/// length field of its own. `docs/protocol.md` describes every type with a
/// byte-level example.
public struct Frame: Sendable, Equatable {
    public var type: FrameType
    public var flags: FrameFlags
    public var streamID: UInt32
    public var payload: ByteBuffer

    public init(type: FrameType, flags: FrameFlags = [], streamID: UInt32, payload: ByteBuffer = ByteBuffer()) {
        self.type = type
        self.flags = flags
        self.streamID = streamID
        self.payload = payload
    }

    /// Size of the fixed header in front of every payload.
    public static let headerSize = 6

    /// Writes the frame header and payload into `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(self.type.rawValue)
        buffer.writeInteger(self.flags.rawValue)
        buffer.writeInteger(self.streamID)
        var payload = self.payload
        buffer.writeBuffer(&payload)
    }

    /// The frame as one buffer, ready to be sent as a WebSocket binary message.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: Self.headerSize + self.payload.readableBytes)
        self.encode(into: &buffer)
        return buffer
    }

    /// Decodes one frame from a whole WebSocket message.
    ///
    /// The payload is a slice of `message`: decoding copies nothing.
    public init(decoding message: ByteBuffer) throws(TunnelProtocolError) {
        var message = message
        guard let rawType: UInt8 = message.readInteger(),
            let rawFlags: UInt8 = message.readInteger(),
            let streamID: UInt32 = message.readInteger()
        else {
            throw .truncated("frame header needs \(Self.headerSize) bytes, got \(message.readableBytes)")
        }
        guard let type = FrameType(rawValue: rawType) else {
            throw .unknownFrameType(rawType)
        }
        guard streamID != 0 else {
            throw .invalidStreamID(streamID)
        }
        self.init(type: type, flags: FrameFlags(rawValue: rawFlags), streamID: streamID, payload: message)
    }
}

/// The kinds of frame. Values are part of the wire format.
public enum FrameType: UInt8, Sendable, CustomStringConvertible {
    /// Server → client: method, target and headers of a webhook.
    case requestHead = 0x01
    /// Client → server: status and headers of the local app's answer.
    case responseHead = 0x02
    /// Either way: a chunk of body.
    case data = 0x03
    /// Either way: the body in this direction is complete.
    case end = 0x04
    /// Either way: abandon the stream (payload: u16 code, UTF-8 reason).
    case reset = 0x05
    /// Either way: the receiver consumed bytes; the sender may send that many more (payload: u32).
    case windowUpdate = 0x06

    public var description: String {
        switch self {
        case .requestHead: "REQUEST_HEAD"
        case .responseHead: "RESPONSE_HEAD"
        case .data: "DATA"
        case .end: "END"
        case .reset: "RESET"
        case .windowUpdate: "WINDOW_UPDATE"
        }
    }
}

/// Frame flags.
public struct FrameFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// On a head frame: no body follows in this direction (no DATA, no END).
    /// On a DATA frame: this is the body's last chunk (no END follows), which saves a message
    /// per direction for the common webhook whose body fits in one chunk.
    public static let endStream = FrameFlags(rawValue: 0x01)
}
