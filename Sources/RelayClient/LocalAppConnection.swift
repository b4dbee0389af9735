import NIOCore
import NIOHTTP1
import TunnelTransport

/// What a ``LocalAppConnection`` tells the exchange it serves, always on the connection's loop.
protocol LocalAppConnectionDelegate: AnyObject {
    /// The answer's head (informational `1xx` heads are skipped).
    func localAppConnection(didReceiveHead head: HTTPResponseHead)
    /// A chunk of the answer. The connection reads nothing more from the app until the future
    /// completes: that is the answer's back-pressure.
    func localAppConnection(didReceiveBody buffer: ByteBuffer) -> EventLoopFuture<Void>
    /// The answer is complete; the connection is no longer the delegate's.
    func localAppConnectionDidFinish()
    /// The connection failed or closed before the answer was complete. `reusedWithoutAnswer`: it
    /// came idle from the pool and the app sent nothing back, so the app never took the request
    /// (it had closed the connection, e.g. because it restarted).
    func localAppConnection(didFail error: any Error, reusedWithoutAnswer: Bool)
}

/// One keep-alive HTTP/1.1 connection to the local app: the last handler of a pipeline with NIO's
/// `HTTPRequestEncoder` and `HTTPResponseDecoder` (the decoder sees the requests go out, so it
/// knows a `HEAD` answer has no body), serving one request at a time for a
/// ``LocalAppConnectionDelegate``, then going back to its ``LocalAppConnectionPool`` when the
/// answer said it may (docs/architecture.md: one event loop per tunnel connection, no locks).
///
/// While the delegate holds a body chunk's future, `read()` is held back, so the app's socket is
/// not read and TCP slows the app down. Parts already decoded from the last read wait here.
///
/// `@unchecked Sendable` only so that it can be captured by NIO's `@Sendable` callbacks: it is
/// used on its channel's event loop alone.
final class LocalAppConnection: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The connection closed before the answer was complete, without an error.
    struct Closed: Error, CustomStringConvertible {
        var description: String { "the local app closed the connection" }
    }

    /// Where an idle connection goes back; `nil` for a connection outside any pool (tests).
    weak var pool: LocalAppConnectionPool?
    /// Closes the connection when it stayed idle too long.
    /// The pool's limit on how long it stays idle: a `DeadlineQueue` timeout, armed at each
    /// release and cancelled at the next request (a NIO scheduled task for that was 2.5 % of a
    /// busy client's samples; docs/performance.md).
    var idleTimer: DeadlineQueue.Timeout?

    private var context: ChannelHandlerContext?
    private var delegate: (any LocalAppConnectionDelegate)?
    /// It has served a request before this one.
    private(set) var reused = false
    /// The request's end was written: with a keep-alive answer, the connection can serve another.
    private var requestComplete = false
    /// The current answer's head came.
    private var answered = false
    private var keepAlive = true
    private var informational = false
    /// Decoded parts not yet given to the delegate (it is paused, or they came in one read).
    private var pending = CircularBuffer<HTTPClientResponsePart>()
    private var paused = false
    private var draining = false
    private var readPending = false
    private var inactive = false
    private var failure: (any Error)?

    let eventLoop: any EventLoop

    /// `eventLoop`: the loop of the channel it will be added to.
    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The connection is open and serves no request: it may be given one.
    var isIdle: Bool { self.context != nil && !self.inactive && self.delegate == nil }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: The request (used by the delegate)

    /// Makes `delegate` the owner of the next answer.
    func begin(_ delegate: any LocalAppConnectionDelegate) {
        self.idleTimer?.cancel()
        self.idleTimer = nil
        self.delegate = delegate
        self.requestComplete = false
        self.answered = false
        self.keepAlive = true
        self.informational = false
    }

    func writeHead(_ head: HTTPRequestHead) {
        self.context?.write(self.wrapOutboundOut(.head(head)), promise: nil)
    }

    /// The future completes when the chunk is written to the socket (or fails with the connection).
    func writeBody(_ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard let context = self.context else {
            return self.failedFuture()
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: promise)
        return promise.futureResult
    }

    /// A chunk no one waits for: no promise (a future per chunk was a visible share of a small
    /// webhook's cost; docs/performance.md).
    func writeBody(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context = self.context else {
            promise?.fail(self.failure ?? Closed())
            return
        }
        context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: promise)
    }

    /// The request's end; `promise` (if any) completes when it is written.
    func writeEnd(promise: EventLoopPromise<Void>?) {
        guard let context = self.context else {
            promise?.fail(self.failure ?? Closed())
            return
        }
        self.requestComplete = true
        context.write(self.wrapOutboundOut(.end(nil)), promise: promise)
    }

    func flush() {
        self.context?.flush()
    }

    /// The delegate gives up its request (the stream was reset, the answer timed out): the
    /// connection is closed, since the app may still be answering on it.
    func abandon() {
        self.delegate = nil
        self.close()
    }

    func close() {
        self.context?.close(promise: nil)
    }

    private func failedFuture() -> EventLoopFuture<Void> {
        // Without a context the handler was removed, which happens only once the channel closed.
        self.eventLoop.makeFailedFuture(self.failure ?? Closed())
    }

    // MARK: The answer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.delegate != nil || !self.pending.isEmpty else {
            // Bytes nobody asked for: the connection is not in a state to be trusted again.
            context.close(promise: nil)
            return
        }
        self.pending.append(self.unwrapInboundIn(data))
        self.drain()
    }

    func read(context: ChannelHandlerContext) {
        if self.paused {
            self.readPending = true
        } else {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.failure == nil { self.failure = error }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.inactive = true
        self.idleTimer?.cancel()
        self.idleTimer = nil
        self.pool?.remove(self)
        self.drain()
        context.fireChannelInactive()
    }

    /// Gives the delegate what waits, as long as it is not paused.
    private func drain() {
        guard !self.draining else { return }
        self.draining = true
        defer { self.draining = false }
        while !self.paused, let part = self.pending.popFirst() {
            self.deliver(part)
        }
        guard !self.paused else { return }
        if self.inactive {
            self.closed()
        } else if self.readPending {
            self.readPending = false
            self.context?.read()
        }
    }

    private func deliver(_ part: HTTPClientResponsePart) {
        guard let delegate = self.delegate else { return }
        switch part {
        case .head(let head):
            // `100 Continue` and friends come before the answer; the decoder ends each with `.end`.
            if head.status.code < 200 && head.status != .switchingProtocols {
                self.informational = true
                return
            }
            self.informational = false
            self.answered = true
            self.keepAlive = head.isKeepAlive
            delegate.localAppConnection(didReceiveHead: head)
        case .body(let buffer):
            self.paused = true
            delegate.localAppConnection(didReceiveBody: buffer).whenComplete { _ in
                self.paused = false
                self.drain()
            }
        case .end:
            if self.informational {
                self.informational = false
                return
            }
            self.delegate = nil
            delegate.localAppConnectionDidFinish()
            self.answerEnded()
        }
    }

    /// Back to the pool when the app keeps the connection open and the request went out whole;
    /// closed otherwise (`Connection: close`, HTTP/1.0, or an app that answered before reading it all).
    private func answerEnded() {
        self.reused = true
        if self.keepAlive, self.requestComplete, !self.inactive, self.pending.isEmpty, let pool = self.pool {
            pool.release(self)
        } else {
            self.close()
        }
    }

    private func closed() {
        guard let delegate = self.delegate else { return }
        self.delegate = nil
        delegate.localAppConnection(didFail: self.failure ?? Closed(), reusedWithoutAnswer: self.reused && !self.answered)
    }
}
