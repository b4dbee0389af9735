public import NIOCore
public import NIOWebSocket
public import TunnelProtocol

/// A handle on a running ``TunnelHandler`` that any thread or task may hold.
///
/// Code on the tunnel's event loop uses the handler directly (``withHandler(_:)`` runs inline there);
/// code elsewhere is hopped onto the loop, one hop per call.
public struct TunnelConnection: Sendable {
    public let eventLoop: any EventLoop
    let handler: NIOLoopBound<TunnelHandler>

    public init(handler: TunnelHandler, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
    }

    /// Runs `body` with the handler on its event loop: at once when already there, else after a hop.
    public func withHandler(_ body: @escaping @Sendable (TunnelHandler) -> Void) {
        if self.eventLoop.inEventLoop {
            body(self.handler.value)
        } else {
            let handler = self.handler
            self.eventLoop.execute { body(handler.value) }
        }
    }

    /// Runs `body` on the loop and returns its result.
    func submit<T: Sendable>(_ body: @escaping @Sendable (TunnelHandler) throws -> T) async throws -> T {
        let handler = self.handler
        if self.eventLoop.inEventLoop { return try body(handler.value) }
        return try await self.eventLoop.submit { try body(handler.value) }.get()
    }

    /// Asks the client to go away (graceful shutdown).
    public func close(code: WebSocketErrorCode = .goingAway, reason: String) {
        self.withHandler { $0.close(code: code, reason: reason) }
    }

    /// Opens a stream for an async caller (opener side): its events arrive as an `AsyncStream`.
    public func openStream() async throws(StreamResetReason) -> TunnelStream {
        let result: Result<TunnelStream, StreamResetReason>
        do {
            result = try await self.submit { handler in
                let owner = TunnelStream.Owner()
                return Result { () throws(StreamResetReason) -> TunnelStream in
                    let id = try handler.openStream(owner: owner)
                    return TunnelStream(id: id, owner: owner, connection: self)
                }
            }
        } catch {
            throw StreamResetReason(.connectionLost, "the tunnel connection was lost")
        }
        return try result.get()
    }
}
