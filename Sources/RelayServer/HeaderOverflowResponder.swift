import NIOCore
import NIOHTTP1

/// Answers request heads larger than the parser allows (too many fields or bytes:
/// `RelayChannel.headLimits`) with 431 instead of NIO's generic 400.
///
/// Sits between the HTTP decoder and NIO's protocol error handler, and swallows only the header
/// overflow error after answering it; every other error goes on to NIO's handler as before.
///
/// The sender of a huge head is usually still sending it. Closing at once, with its bytes unread,
/// makes the kernel answer them with a reset that can destroy the 431 before the sender reads it,
/// so the close lingers as nginx's does: the output side is shut after the answer, and what
/// still arrives is read and dropped until the sender closes or ``lingerTimeout`` passes.
final class HeaderOverflowResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// How long the rest of an oversized head is read and dropped after the 431.
    static let lingerTimeout: TimeAmount = .seconds(2)

    /// A response has started and not ended: no error answer can be written then.
    private var responseInProgress = false
    /// The 431 went out: everything else on this connection is dropped until it closes.
    private var answered = false
    private var lingerTimer: Scheduled<Void>?

    func handlerRemoved(context: ChannelHandlerContext) {
        self.lingerTimer?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.lingerTimer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.answered else { return }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // After the 431 the decoder reports every further byte as data in its error state: dropped.
        guard !self.answered else { return }
        guard let parserError = error as? HTTPParserError, parserError == .headerOverflow, !responseInProgress else {
            context.fireErrorCaught(error)
            return
        }
        ConnectionErrorResponse.write(
            .requestHeaderFieldsTooLarge,
            "the request's head is larger than this server accepts: at most \(RelayChannel.maxHeaderFields) fields and \(RelayChannel.maxHeadBytes / 1024) KiB",
            context: context
        )
        self.answered = true
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.lingerTimer = context.eventLoop.scheduleTask(in: Self.lingerTimeout) { loopBound.value.close(promise: nil) }
        let outputClosed = context.eventLoop.makePromise(of: Void.self)
        outputClosed.futureResult.whenFailure { _ in loopBound.value.close(promise: nil) }
        context.close(mode: .output, promise: outputClosed)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responseInProgress = true
        case .end: responseInProgress = false
        default: break
        }
        context.write(data, promise: promise)
    }
}
