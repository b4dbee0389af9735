public import NIOCore

/// What arrives on one stream, in order.
public enum StreamEvent: Sendable {
    /// The local app's answer started (server side only).
    case responseHead(ResponseHead, endStream: Bool)
    /// A chunk of body.
    case data(ByteBuffer)
    /// The body is complete.
    case end
    /// The stream was abandoned; nothing more will arrive.
    case reset(StreamResetReason)
}
