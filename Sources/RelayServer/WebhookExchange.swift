import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import Prometheus
import TunnelProtocol
import TunnelTransport

/// One webhook delivered on the event loops: the sender's request streamed into a tunnel stream,
/// the local app's answer streamed back.
///
/// Two halves, one per event loop. This object lives on the sender's connection's loop and owns the
/// HTTP side; its ``StreamOwner`` lives on the tunnel's loop and owns the stream there. They talk by
/// one hop per message (none when both connections share a loop). The request's parts gathered
/// during one read go over in one hop, so a small webhook's head, body and END_STREAM leave the
/// tunnel in one flush.
///
/// How it ends (docs/architecture.md, "Who owns a stream's state"): the answer's end was written and
/// the request was read to its end (or is being dropped), or the stream closed early and the sender
/// got an error answer or, with the head already out, a cut connection. ``finish(status:)`` records it
/// once.
final class WebhookExchange {
    private let plan: WebhookRoute.Plan
    private let head: HTTPRequest
    private let route: WebhookRoute
    private let channel: any Channel
    private let handler: WebhookChannelHandler
    private let started = NIODeadline.now()
    private let owner: NIOLoopBoundBox<StreamOwner?>

    private enum Response {
        /// Waiting for the answer's head.
        case waiting
        /// The head is out; body parts follow.
        case streaming
        /// The answer is complete, or an error answer was sent, or the sender left.
        case done
    }

    private var response = Response.waiting
    /// The request's end was read.
    private(set) var requestComplete = false
    /// The rest of the request body is not wanted (the answer came first, or it failed).
    private var discarding = false
    /// The tunnel's window is full: reads wait for credit.
    private var uploadPaused = false
    /// Batches of the request handed to the tunnel's loop that it has not taken yet. The window's
    /// pause comes back over a hop, and until it arrived a fast sender kept this loop reading: with
    /// the two connections on different loops, 10–15 MiB of a 1 GiB upload waited in tasks for the
    /// tunnel's loop (docs/performance.md, "Reads ahead of the window's pause"). A batch that ends
    /// the request is not counted: nothing is read after it.
    private var batchesOut = 0
    /// Reads wait while this many batches are out.
    static let maxBatchesOut = 2
    /// Request parts read since the last hop to the tunnel.
    private var outbox: [StreamOwner.Outgoing] = []
    private var bodyBytesIn = 0
    private var bytesOut = 0
    private var status = 0
    private var recorded = false
    private var timer: DeadlineQueue.Timeout?
    /// Answer bytes written to the sender, not yet credited back because the sender was not writable.
    private var uncredited = 0

    init(plan: WebhookRoute.Plan, head: HTTPRequest, route: WebhookRoute, channel: any Channel, handler: WebhookChannelHandler) {
        self.plan = plan
        self.head = head
        self.route = route
        self.channel = channel
        self.handler = handler
        self.owner = .makeEmptyBox(valueType: StreamOwner.self, eventLoop: plan.tunnel.eventLoop)
    }

    /// Reads wait for window. After the request's end they go on: a sender that hangs up while it
    /// waits is seen at once, and what a pipelining sender sends next waits in the handler, which
    /// holds reads only then (each hold and resume is an `epoll_ctl` call: two per webhook, 2.0 of
    /// the server's 6.7 system calls per 1 KiB webhook before, docs/performance.md).
    var holdsReads: Bool { self.uploadPaused || self.batchesOut >= Self.maxBatchesOut }

    // MARK: The request (sender → tunnel)

    func start() {
        self.route.metrics.webhooksInFlight.increment()
        self.route.drain.webhookStarted()
        let hasBody = WebhookForwarder.hasBody(self.head.headerFields)
        let requestHead = RequestHead(
            method: self.head.method.rawValue,
            target: self.plan.target.suffix,
            headerFields: WebhookForwarder.requestHeaders(
                self.head.headerFields,
                senderAddress: self.handler.senderAddress,
                scheme: self.head.scheme ?? "http",
                authority: self.head.authority,
                fromPeer: self.plan.fromPeer
            )
        )
        // The timeout covers the wait for the answer's head, as the async path's does.
        self.timer = DeadlineQueue.schedule(in: TimeAmount(self.route.configuration.requestTimeout), on: self.channel.eventLoop) {
            self.timedOut()
        }
        self.hasBody = hasBody
        if hasBody, let expect = self.head.headerFields.value(of: .expect), expect.lowercased() == "100-continue" {
            // curl and other clients wait (a second, for curl) for this before sending a large body.
            self.handler.write(.head(HTTPResponse(status: .continue)))
            self.handler.flush()
        }
        self.enqueue(.head(requestHead, endStream: !hasBody))
    }

    /// Whether the request has a body (and so a `.end` to send; without one the head ended it).
    private var hasBody = true
    private var sendScheduled = false
    /// The sender asked for `Connection: close`: the connection closes once the answer is out.
    private lazy var closeAfterAnswer: Bool = self.head.headerFields[values: .connection].contains {
        $0.split(separator: ",").contains { $0.trimmingOptionalWhitespace().equalsASCIICaseInsensitive("close") }
    }

    /// Queues a part for the tunnel. What one read brings goes over in one hop: at
    /// `channelReadComplete`, or at the end of this loop tick for a head replayed outside a read.
    private func enqueue(_ part: StreamOwner.Outgoing) {
        // A small webhook's batch is head, body and end: room for them at once, not grown twice.
        if self.outbox.isEmpty { self.outbox.reserveCapacity(3) }
        self.outbox.append(part)
        guard !self.sendScheduled else { return }
        self.sendScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: self.channel.eventLoop)
        self.channel.eventLoop.execute { loopBound.value.readComplete() }
    }

    func requestPart(_ part: HTTPRequestPart) {
        switch part {
        case .head:
            // Never: a head starts an exchange.
            break
        case .body(let buffer):
            guard !self.discarding else { return }
            self.bodyBytesIn += buffer.readableBytes
            if self.bodyBytesIn > self.route.configuration.maxBodySize {
                self.fail(StreamResetReason(.bodyTooLarge, "the body is larger than the server's limit"))
                return
            }
            self.enqueue(.body(buffer))
        case .end:
            // A request without a body declared none and ended with its head already.
            if self.hasBody && !self.discarding { self.enqueue(.end) }
            self.requestComplete = true
            self.endIfComplete()
        }
    }

    /// The read is over: what it brought goes to the tunnel in one hop.
    func readComplete() {
        self.sendScheduled = false
        guard !self.outbox.isEmpty else { return }
        let parts = self.outbox
        self.outbox = []
        let acknowledge = !self.requestComplete
        if acknowledge { self.batchesOut += 1 }
        let box = self.owner
        let exchange = NIOLoopBound(self, eventLoop: self.channel.eventLoop)
        let httpLoop = self.channel.eventLoop
        self.plan.tunnel.withHandler { tunnel in
            if box.value == nil { box.value = StreamOwner(exchange: exchange, httpLoop: httpLoop, tunnel: tunnel) }
            box.value?.send(parts, acknowledge: acknowledge)
        }
    }

    /// Called from the owner: the tunnel's loop took a batch.
    fileprivate func batchTaken() {
        self.batchesOut = max(0, self.batchesOut - 1)
        self.handler.resumeReading()
    }

    /// Called from the owner: the tunnel's window is full (`true`) or has room again (`false`).
    fileprivate func setUploadPaused(_ paused: Bool) {
        guard !self.discarding else { return }
        self.uploadPaused = paused
        if !paused { self.handler.resumeReading() }
    }

    // MARK: The answer (tunnel → sender)

    fileprivate func received(_ part: StreamPart) {
        guard self.response != .done else { return }
        switch part {
        case .responseHead(let head, let endStream):
            self.timer?.cancel()
            self.status = head.status
            self.response = .streaming
            let response = HTTPResponse(status: .init(code: head.status), headerFields: head.headerFields.endToEnd)
            self.handler.write(.head(response))
            if endStream { self.answerEnded() } else { self.scheduleFlush() }
        case .data(let buffer, let endStream):
            guard self.response == .streaming else { return }
            self.bytesOut += buffer.readableBytes
            self.handler.write(.body(buffer))
            if endStream {
                self.answerEnded()
            } else {
                self.credit(buffer.readableBytes)
                self.scheduleFlush()
            }
        case .end:
            guard self.response == .streaming else { return }
            self.answerEnded()
        }
    }

    private func answerEnded() {
        self.response = .done
        self.writeEnd(close: self.closeAfterAnswer)
        if !self.requestComplete {
            // The app answered before it read the whole body: the rest is dropped here, and the stream
            // (still open for the upload) is reset so nobody waits for it.
            self.discard()
            self.resetStream(StreamResetReason(.cancelled, "the local app answered before reading the whole body"))
        }
        self.finish(status: self.status)
        self.endIfComplete()
    }

    /// Credit for answer bytes goes back as the sender takes them: at once while its connection is
    /// writable, else when it becomes writable again, so a slow sender holds back only its own stream.
    private func credit(_ count: Int) {
        self.uncredited += count
        guard self.channel.isWritable else { return }
        let credit = self.uncredited
        self.uncredited = 0
        let box = self.owner
        self.plan.tunnel.withHandler { _ in box.value?.consume(credit) }
    }

    func senderWritable() {
        if self.uncredited > 0 { self.credit(0) }
    }

    private var flushScheduled = false

    /// One flush for what this loop tick wrote (a head and its body arrive in one tunnel read).
    private func scheduleFlush() {
        guard !self.flushScheduled else { return }
        self.flushScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: self.channel.eventLoop)
        self.channel.eventLoop.execute {
            loopBound.value.flushScheduled = false
            loopBound.value.handler.flush()
        }
    }

    // MARK: Endings

    /// The stream ended (owner's `didCloseWith`). Normal ends were handled by the answer's parts.
    fileprivate func streamClosed(_ reason: StreamResetReason?) {
        guard let reason, self.response != .done else { return }
        self.route.logger.debug(
            "webhook stream ended early",
            metadata: ["channel": "\(self.plan.target.channelID)", "reason": "\(reason.message)", "answer_started": "\(self.response == .streaming)"]
        )
        self.timer?.cancel()
        switch self.response {
        case .waiting:
            self.answerError(ErrorAnswer.forReset(reason))
        case .streaming:
            // The head is out: all the sender can learn is a cut connection.
            self.response = .done
            self.finish(status: self.status)
            self.handler.close()
        case .done:
            break
        }
    }

    private func timedOut() {
        guard self.response == .waiting else { return }
        self.fail(StreamResetReason(.timeout, "the local app did not answer in time"))
    }

    /// The answer's end, flushed; with `close`, the connection closes once it is written.
    private func writeEnd(close: Bool) {
        guard close else {
            self.handler.write(.end(nil))
            self.handler.flush()
            return
        }
        self.closing = true
        let written = self.channel.eventLoop.makePromise(of: Void.self)
        self.handler.write(.end(nil), promise: written)
        self.handler.flush()
        let channel = self.channel
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    /// The connection closes after the answer: no further request is read on it.
    private var closing = false

    /// The rest of the request body is read and dropped: reads resume even if the window had paused them.
    private func discard() {
        self.discarding = true
        self.outbox = []
        self.batchesOut = 0
        self.uploadPaused = false
        self.handler.resumeReading()
    }

    /// Ends the exchange with `reason`: the stream is reset and the sender gets the error answer (or
    /// a cut connection if the head is out).
    private func fail(_ reason: StreamResetReason) {
        self.discard()
        self.resetStream(reason)
        self.streamClosed(reason)
    }

    private func answerError(_ answer: ErrorAnswer) {
        self.response = .done
        self.status = answer.status.code
        let body = answer.body
        self.handler.write(.head(answer.head(bodyLength: body.readableBytes)))
        self.handler.write(.body(body))
        self.writeEnd(close: answer.close || self.closeAfterAnswer)
        if !self.requestComplete { self.discard() }
        self.finish(status: answer.status.code)
        self.endIfComplete()
    }

    /// The sender's connection closed or failed.
    func senderLeft() {
        self.timer?.cancel()
        if self.response != .done {
            self.response = .done
            self.resetStream(StreamResetReason(.cancelled, "the sender went away"))
            self.finish(status: 0)
        }
        self.requestComplete = true
    }

    private func resetStream(_ reason: StreamResetReason) {
        let box = self.owner
        self.plan.tunnel.withHandler { _ in box.value?.reset(reason) }
    }

    /// Hands the connection to the next request once the answer is out and the request was read.
    private func endIfComplete() {
        guard self.response == .done, self.requestComplete, !self.closing else { return }
        self.handler.exchangeEnded()
    }

    /// Records the webhook once: metrics, the drain's count, the log line.
    private func finish(status: Int) {
        guard !self.recorded else { return }
        self.recorded = true
        self.timer?.cancel()
        self.timer = nil
        self.route.drain.webhookEnded()
        self.route.metrics.webhooksInFlight.decrement()
        let elapsed = NIODeadline.now() - self.started
        WebhookForwarder.record(
            metrics: self.route.metrics,
            logger: self.route.logger,
            channelID: self.plan.target.channelID,
            method: self.head.method.rawValue,
            path: WebhookRoute.split(self.head.path ?? "").0,
            status: status,
            bytesIn: self.bodyBytesIn,
            bytesOut: self.bytesOut,
            elapsed: .nanoseconds(elapsed.nanoseconds)
        )
    }
}

extension WebhookExchange {
    /// The exchange's stream, on the tunnel's event loop.
    final class StreamOwner: TunnelStreamDelegate {
        enum Outgoing: Sendable {
            /// Opens the stream with the request's head.
            case head(RequestHead, endStream: Bool)
            case body(ByteBuffer)
            case end
        }

        /// Dropped once the stream ended, so neither half keeps the other alive.
        private var exchange: NIOLoopBound<WebhookExchange>?
        private let httpLoop: any EventLoop
        private weak var tunnel: TunnelHandler?
        private var id: UInt32?
        private var paused = false

        init(exchange: NIOLoopBound<WebhookExchange>, httpLoop: any EventLoop, tunnel: TunnelHandler) {
            self.exchange = exchange
            self.httpLoop = httpLoop
            self.tunnel = tunnel
        }

        /// What the owner tells the exchange, on the sender's loop.
        fileprivate enum Message: Sendable {
            case received(StreamPart)
            case closed(StreamResetReason?)
            case openFailed(ErrorAnswer)
            case taken(pause: Bool, acknowledge: Bool)
            case resumed
        }

        /// Gives `message` to the exchange on the sender's loop: inline when both share a loop, else
        /// in one hop. A value rather than a closure, so the inline case (every part of an answer
        /// when the connections share a loop) allocates nothing (docs/performance.md).
        private func toExchange(_ message: Message) {
            guard let exchange = self.exchange else { return }
            if self.httpLoop.inEventLoop {
                exchange.value.handle(message)
            } else {
                self.httpLoop.execute { exchange.value.handle(message) }
            }
        }

        private func open(on tunnel: TunnelHandler, head: RequestHead, endStream: Bool) {
            do {
                let id = try tunnel.openStream(owner: self)
                self.id = id
                tunnel.writeHead(head, endStream: endStream, on: id)
            } catch {
                let answer = error.code == .tooManyStreams ? ErrorAnswer.forReset(error) : ErrorAnswer.reconnecting
                self.toExchange(.openFailed(answer))
                self.exchange = nil
            }
        }

        /// Sends a batch of the request; with `acknowledge`, tells the exchange once it is taken (with
        /// a pause, if the window filled, in the same hop).
        func send(_ parts: [Outgoing], acknowledge: Bool) {
            var mayContinue = true
            defer { self.taken(mayContinue: mayContinue, acknowledge: acknowledge) }
            guard let tunnel = self.tunnel else { return }
            var index = parts.startIndex
            while index < parts.endIndex {
                let part = parts[index]
                index += 1
                if case .head(let head, let endStream) = part {
                    self.open(on: tunnel, head: head, endStream: endStream)
                    continue
                }
                guard let id = self.id else { return }
                switch part {
                case .head:
                    break
                case .body(let buffer):
                    // The last body chunk of a batch that ends the request carries END_STREAM.
                    var last = false
                    if index < parts.endIndex, case .end = parts[index] {
                        last = true
                        index += 1
                    }
                    mayContinue = tunnel.writeBody(buffer, endStream: last, on: id)
                case .end:
                    mayContinue = tunnel.writeBody(ByteBuffer(), endStream: true, on: id)
                }
            }
        }

        private func taken(mayContinue: Bool, acknowledge: Bool) {
            let pause = !mayContinue && !self.paused
            if pause { self.paused = true }
            guard pause || acknowledge else { return }
            self.toExchange(.taken(pause: pause, acknowledge: acknowledge))
        }

        func consume(_ count: Int) {
            guard let id = self.id, count > 0 else { return }
            self.tunnel?.consume(count, on: id)
        }

        func reset(_ reason: StreamResetReason) {
            guard let id = self.id else { return }
            self.tunnel?.reset(id, reason)
        }

        func tunnelStream(_ id: UInt32, didReceive part: StreamPart) {
            if case .responseHead(let head, endStream: false) = part {
                // A large answer (a download) may come a widened window at a time.
                self.tunnel?.widenReceiveWindow(on: id, forBodyOf: head.headerFields.value(of: .contentLength).flatMap { Int($0) })
            }
            self.toExchange(.received(part))
        }

        func tunnelStreamDidGainCredit(_ id: UInt32) {
            guard self.paused else { return }
            self.paused = false
            self.toExchange(.resumed)
        }

        func tunnelStream(_ id: UInt32, didCloseWith reason: StreamResetReason?) {
            self.toExchange(.closed(reason))
            self.exchange = nil
        }
    }

    fileprivate func handle(_ message: StreamOwner.Message) {
        switch message {
        case .received(let part): self.received(part)
        case .closed(let reason): self.streamClosed(reason)
        case .openFailed(let answer): self.openFailed(answer)
        case .taken(let pause, let acknowledge):
            if pause { self.setUploadPaused(true) }
            if acknowledge { self.batchTaken() }
        case .resumed: self.setUploadPaused(false)
        }
    }

    fileprivate func openFailed(_ answer: ErrorAnswer) {
        self.timer?.cancel()
        guard self.response == .waiting else { return }
        self.answerError(answer)
    }
}
