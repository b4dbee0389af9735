public import NIOCore

/// Why a stream ended before its normal end. Sent in RESET frames, and also
/// used locally when the connection or a timer ends a stream.
public struct StreamResetReason: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        /// The other side gave up on the stream (sender went away, client shut down).
        public static let cancelled = Code(rawValue: 1)
        /// A frame on this stream broke the protocol.
        public static let protocolError = Code(rawValue: 2)
        /// The answer did not come in time.
        public static let timeout = Code(rawValue: 3)
        /// The body was larger than allowed.
        public static let bodyTooLarge = Code(rawValue: 4)
        /// The WebSocket carrying the stream closed.
        public static let connectionLost = Code(rawValue: 5)
        /// Too many streams are open on the connection (local only: the
        /// server answers 429 without opening the stream).
        public static let tooManyStreams = Code(rawValue: 6)
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }

    /// RESET payload: u16 code, UTF-8 message.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(self.code.rawValue)
        buffer.writeString(String(self.message.utf8.prefix(512)) ?? "")
    }

    public init(decoding payload: ByteBuffer) throws(TunnelProtocolError) {
        var payload = payload
        guard let code: UInt16 = payload.readInteger() else { throw .truncated("reset code") }
        let message = payload.readString(length: payload.readableBytes) ?? ""
        self.init(Code(rawValue: code), message)
    }
}
