public import TunnelProtocol

/// The owner of one stream on a ``TunnelHandler``: the server's webhook exchange, the client's call
/// to the local app, or the async adapter ``TunnelStream``.
///
/// Every call comes on the tunnel connection's event loop, in order. After
/// ``tunnelStream(_:didCloseWith:)`` nothing more comes for that stream.
public protocol TunnelStreamDelegate: AnyObject {
    /// The peer sent part of its side: the answer's head (opener), a body chunk or the end of its body.
    func tunnelStream(_ id: UInt32, didReceive part: StreamPart)
    /// Body this owner wrote that was waiting for window has gone out, and the window has room again:
    /// a producer paused because ``TunnelHandler/writeBody(_:endStream:on:)`` returned false may resume.
    func tunnelStreamDidGainCredit(_ id: UInt32)
    /// The stream ended, once: `nil` when both sides finished their bodies, else why it was reset (by
    /// either side, a stream-level protocol error, or the connection ending).
    func tunnelStream(_ id: UInt32, didCloseWith reason: StreamResetReason?)
}
