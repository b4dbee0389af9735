import NIOCore
import NIOHTTP1

/// Keeps an HTTP/1.1 connection within the server's limits before any request reaches a route:
///
/// - **Slow and idle senders.** A request head that has started to arrive must be complete within
///   10 s (a slowloris sender trickling header bytes gets 408 and is closed), and a kept-alive
///   connection with no request in progress is closed after 120 s. Bodies are not timed here:
///   webhooks are bounded by `--request-timeout` and the tunnel's flow control.
/// - **Oversized heads** (more fields or bytes than `RelayChannel.headLimits` lets NIO's parser
///   take) get 431 instead of NIO's generic 400, with a lingering close; every other parser
///   error goes on to NIO's protocol error handler behind this one.
/// - **Foreign upgrades** are served as plain HTTP/1.1 and the connection closes after the answer
///   (``ForeignUpgrade``).
///
/// It sits between NIO's HTTP decoder and its protocol error handler, and leaves the pipeline
/// when a WebSocket upgrade is accepted. The three rules share one record of the request's
/// progress, ``HTTPConnectionGuardStateMachine``; this handler performs what it decides.
/// (docs/operations.md, "Limits", has the figures for operators.)
final class HTTPConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Set again when the handler is added, from the loop's clock (tests run on a virtual one).
    private var state = HTTPConnectionGuardStateMachine(now: .uptimeNanoseconds(0))
    /// The one timer, and when it fires. Between two firings a request only moves the state's
    /// deadline; the firing re-arms for it (a scheduled task per request was 2 % of a busy server).
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    func handlerAdded(context: ChannelHandlerContext) {
        self.state = HTTPConnectionGuardStateMachine(now: context.eventLoop.now)
        self.armTimer(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelTimer()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.cancelTimer()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            switch self.state.receivedHead(head) {
            case .forward: context.fireChannelRead(data)
            case .forwardPlain(let plain): context.fireChannelRead(self.wrapInboundOut(.head(plain)))
            case .drop: break
            }
        case .body, .end:
            if self.state.receivedBodyOrEnd() { context.fireChannelRead(data) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.state.readComplete(now: context.eventLoop.now) { self.armTimer(context: context) }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(var head):
            switch self.state.writingHead(status: head.status) {
            case .write:
                context.write(data, promise: promise)
            case .writeClosing:
                head.headers.replaceOrAdd(name: "Connection", value: "close")
                context.write(self.wrapOutboundOut(.head(head)), promise: promise)
            }
        case .body:
            context.write(data, promise: promise)
        case .end:
            switch self.state.writingEnd(now: context.eventLoop.now) {
            case .write:
                context.write(data, promise: promise)
                self.armTimer(context: context)
            case .writeThenClose:
                let written = promise ?? context.eventLoop.makePromise()
                context.write(data, promise: written)
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                written.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let headTooLarge = (error as? HTTPParserError) == .headerOverflow
        switch self.state.caught(headTooLarge: headTooLarge, now: context.eventLoop.now) {
        case .forward:
            context.fireErrorCaught(error)
        case .swallow:
            break
        case .answerHeadTooLarge:
            ConnectionErrorResponse.write(
                .requestHeaderFieldsTooLarge,
                "the request's head is larger than this server accepts: at most \(RelayChannel.maxHeaderFields) fields and \(RelayChannel.maxHeadBytes / 1024) KiB",
                context: context
            )
            self.armTimer(context: context)
            // Shut only the output: what the sender still sends is read and dropped until it
            // closes or the linger ends. Where half-closing fails, close outright.
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let outputClosed = context.eventLoop.makePromise(of: Void.self)
            outputClosed.futureResult.whenFailure { _ in loopBound.value.close(promise: nil) }
            context.close(mode: .output, promise: outputClosed)
        }
    }

    // MARK: The timer

    /// Arms the timer for the state's deadline unless it already fires no later than that.
    private func armTimer(context: ChannelHandlerContext) {
        guard let deadline = self.state.deadline else { return }
        if let armed = self.timerDeadline, armed <= deadline { return }
        self.timer?.cancel()
        self.timerDeadline = deadline
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
    }

    private func cancelTimer() {
        self.timer?.cancel()
        self.timer = nil
        self.timerDeadline = nil
    }

    private func timerFired(context: ChannelHandlerContext) {
        self.timer = nil
        self.timerDeadline = nil
        switch self.state.timerFired(now: context.eventLoop.now) {
        case .none:
            break
        case .rearm:
            self.armTimer(context: context)
        case .answerTimeoutAndClose:
            ConnectionErrorResponse.write(.requestTimeout, "the request's head did not arrive in time", context: context)
            context.close(promise: nil)
        case .close:
            context.close(promise: nil)
        }
    }
}
