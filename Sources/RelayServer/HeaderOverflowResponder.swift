import NIOCore
import NIOHTTP1

/// Answers request heads larger than the parser allows (too many fields or bytes:
/// `RelayChannel.headLimits`) with 431 instead of NIO's generic 400.
///
/// Sits between the HTTP decoder and NIO's protocol error handler, and swallows only the header
/// overflow error after answering it; every other error goes on to NIO's handler as before. The
/// decoder closes the connection right after, as for any parse error.
final class HeaderOverflowResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A response has started and not ended: no error answer can be written then.
    private var responseInProgress = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, parserError == .headerOverflow, !responseInProgress else {
            context.fireErrorCaught(error)
            return
        }
        ConnectionErrorResponse.write(
            .requestHeaderFieldsTooLarge,
            "the request's head is larger than this server accepts: at most \(RelayChannel.maxHeaderFields) fields and \(RelayChannel.maxHeadBytes / 1024) KiB",
            context: context
        )
        context.close(promise: nil)
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
