import NIOCore
import NIOHTTP1
import TunnelTransport

/// Closes HTTP connections that hold the server's resources without making progress.
///
/// Two rules, on the decoded side of NIO's HTTP parser: a request head that has started to arrive
/// must be complete within ``headTimeout`` (a slowloris sender trickling header bytes is answered
/// 408 and closed), and a keep-alive connection with no request in progress is closed after
/// ``idleTimeout``. The idle limit stays above common proxies' own (Traefik: 90 s) so a proxy never
/// sends a request on a connection the server is closing. Bodies are not timed here: webhooks are
/// bounded by `--request-timeout` and the tunnel's flow control.
final class SlowClientGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    static let headTimeout: TimeAmount = .seconds(10)
    static let idleTimeout: TimeAmount = .seconds(120)

    private enum State {
        case idle
        case receivingHead
        case inRequest
    }

    private var state = State.idle
    private var requestEnded = false
    /// A `DeadlineQueue` timeout, not a scheduled task: every request on a kept-alive connection
    /// arms the idle limit after its answer and cancels it at the next head, and NIO's scheduled
    /// task (allocate, then search the loop's queue to cancel) was 2 % of the server's samples.
    private var timer: DeadlineQueue.Timeout?

    func handlerAdded(context: ChannelHandlerContext) {
        arm(context: context, Self.idleTimeout, answer: false)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            state = .inRequest
            requestEnded = false
            timer?.cancel()
            timer = nil
        case .body:
            break
        case .end:
            requestEnded = true
        }
        context.fireChannelRead(data)
    }

    /// Bytes arrived; if they did not complete a head, the head has started.
    func channelReadComplete(context: ChannelHandlerContext) {
        if case .idle = state {
            state = .receivingHead
            arm(context: context, Self.headTimeout, answer: true)
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), case .inRequest = state {
            // The exchange is over (or the answer came before the whole body, which is closed anyway).
            state = .idle
            arm(context: context, Self.idleTimeout, answer: false)
        }
        context.write(data, promise: promise)
    }

    private func arm(context: ChannelHandlerContext, _ timeout: TimeAmount, answer: Bool) {
        timer?.cancel()
        timer = DeadlineQueue.schedule(in: timeout, on: context.eventLoop) {
            self.expire(context: context, answer: answer)
        }
    }

    private func expire(context: ChannelHandlerContext, answer: Bool) {
        timer = nil
        if answer, case .receivingHead = state {
            ConnectionErrorResponse.write(.requestTimeout, "the request's head did not arrive in time", context: context)
        }
        context.close(promise: nil)
    }
}
