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

/// What a peer sends on one stream, frame by frame, as ``MultiplexerStateMachine`` delivers it to the
/// stream's owner on the connection's event loop.
public enum StreamPart: Sendable {
    /// The local app's answer started (opener side only).
    case responseHead(ResponseHead, endStream: Bool)
    /// A chunk of body; `endStream` when it is the last.
    case data(ByteBuffer, endStream: Bool)
    /// The body is complete.
    case end
}
