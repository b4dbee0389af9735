import NIOCore
import NIOSSL
import NIOWebSocket
import TunnelProtocol

/// Watches a tunnel connection's close handshake to tell who ended it, which ``TunnelHandler``
/// does not report: it sits between the frame aggregator and the handler, notes the first close
/// frame in either direction (and a close without one), and completes `ended` once the handler
/// reports the connection over.
///
/// It also drops TLS "unclean shutdown" errors: a server that goes away without `close_notify`
/// has simply dropped the connection, which is not a protocol error to answer.
final class TunnelSessionEndRecorder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum Initiator {
        case server(WebSocketErrorCode, reason: String?)
        case client
    }

    private var initiator: Initiator?
    private var ended: EventLoopPromise<TunnelSessionEnd>?

    init(ended: EventLoopPromise<TunnelSessionEnd>) {
        self.ended = ended
    }

    /// The ``TunnelHandler``'s `onClose`: the connection is over, every stream told.
    func tunnelClosed(_ reason: StreamResetReason) {
        guard let ended = self.ended else { return }
        self.ended = nil
        switch self.initiator {
        case .server(let code, let text):
            ended.succeed(.closedByServer(code, reason: text))
        case .client:
            ended.succeed(.closedByClient(reason.message))
        case nil:
            ended.succeed(.dropped)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Only if the tunnel handler never reported (it always does when it was added).
        self.tunnelClosed(StreamResetReason(.connectionLost, "the tunnel connection was lost"))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        if frame.opcode == .connectionClose, self.initiator == nil {
            var payload = frame.unmaskedData
            let code = payload.readWebSocketErrorCode() ?? .normalClosure
            let text = payload.readString(length: payload.readableBytes)
            self.initiator = .server(code, reason: text.flatMap { $0.isEmpty ? nil : $0 })
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOSSLError, case .uncleanShutdown = error { return }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if self.initiator == nil, self.unwrapOutboundIn(data).opcode == .connectionClose { self.initiator = .client }
        context.write(data, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if self.initiator == nil { self.initiator = .client }
        context.close(mode: mode, promise: promise)
    }
}
