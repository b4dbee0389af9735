import AsyncHTTPClient
import HTTPTypes
import Inspector
import NIOCore
import NIOHTTP1
import TunnelProtocol
import TunnelTransport

/// One webhook's call to the local app: the owner of a tunnel stream the server opened, and the
/// AsyncHTTPClient delegate of the request it makes.
///
/// Both sides run on the tunnel connection's event loop: the ``TunnelHandler`` calls its owners
/// there, and the request is made with `.delegate(on:)` that loop, so AsyncHTTPClient's callbacks
/// come there too. A webhook therefore needs no Swift task and no lock (docs/architecture.md).
///
/// Not `.delegateAndChannel(on:)`: AsyncHTTPClient 1.37 serves a request that requires a loop from
/// an idle connection on that loop or else opens an "overflow" connection, which it closes as soon
/// as it is idle, so every webhook paid a TCP connect to the app (measured: a new connection per
/// request, a fifth of the client's CPU). With `.delegate(on:)` the pool keeps general-purpose
/// connections alive, prefers one on our loop, and hops only when it hands us another loop's.
///
/// Back-pressure, both ways, without ever holding a body whole:
/// - Upload (server → app): each chunk from the tunnel is written to AsyncHTTPClient's
///   `StreamWriter`, and its credit goes back to the server (``TunnelHandler/consume(_:on:)``) only
///   when that write's future completes. AsyncHTTPClient completes it at once while its connection
///   to the app is writable and holds it while that connection is over its high-water mark, so an
///   app that reads slowly stops the credit, and the server (and the sender) with it. At most a
///   window's worth waits here, plus what AsyncHTTPClient's channel buffers.
/// - Answer (app → server): ``didReceiveBodyPart(task:_:)`` returns a future that completes when
///   the tunnel took the chunk: at once when ``TunnelHandler/writeBody(_:endStream:on:)`` says the
///   window had room, else on ``tunnelStreamDidGainCredit(_:)``. AsyncHTTPClient reads no more from
///   the app until then. One chunk is held back so the last goes out with END_STREAM.
///
/// It is `@unchecked Sendable` only because AsyncHTTPClient requires delegates to be `Sendable`:
/// every stored property is read and written on ``eventLoop`` alone.
final class LocalExchange: TunnelStreamDelegate, HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void

    /// How an ended exchange is reported: the console line and the session's totals.
    typealias Report = @Sendable (_ summary: LocalForwarder.Summary, _ elapsed: Duration, _ queuedID: String?) -> Void

    /// The request body on its way to the app.
    private enum Upload {
        /// AsyncHTTPClient has not asked for the body yet (it is still connecting): chunks wait
        /// here. Their credit has not gone back, so this is at most one window.
        case waiting(CircularBuffer<ByteBuffer>)
        /// AsyncHTTPClient is sending the body: chunks are written as they arrive. `done` is the
        /// future the body closure returned; it completes after the last write.
        case streaming(HTTPClient.Body.StreamWriter, done: EventLoopPromise<Void>, lastWrite: EventLoopFuture<Void>?)
        /// All of it went to AsyncHTTPClient, there was none, or it was given up.
        case finished
    }

    /// The answer on its way into the tunnel.
    private enum Answer {
        /// Nothing from the app yet; the timeout runs.
        case waitingForHead
        /// RESPONSE_HEAD went. `held` is the chunk kept back so that the last one carries
        /// END_STREAM; `paused` is the future AsyncHTTPClient waits on while bytes wait for window.
        case streaming(held: ByteBuffer?, paused: EventLoopPromise<Void>?)
        /// The whole answer is written, but the server is still uploading (the app answered without
        /// reading it all) and the last bytes wait for window: END and a RESET follow on credit.
        case releasing
        /// Answered (or given up): nothing more goes into the tunnel from here.
        case done
    }

    let id: UInt32
    let handler: TunnelHandler
    let eventLoop: any EventLoop
    private let forwarder: LocalForwarder
    private let report: Report
    private let head: RequestHead
    private let started = ContinuousClock.now
    private var summary: LocalForwarder.Summary
    private var observed: (any WebhookExchangeObserver)?

    private var upload: Upload
    private var answer = Answer.waitingForHead
    /// The server's side of the stream is complete (REQUEST_HEAD with END_STREAM, or its END).
    private var requestEnded: Bool
    /// Why the stream ended under us (the sender went away, the connection dropped), if it did.
    private var abandoned: StreamResetReason?
    /// The answer's `Content-Length`, when it has one that counts body bytes.
    private var answerLength: Int?
    private var reported = false
    private var task: HTTPClient.Task<Void>?
    private var timeout: Scheduled<Void>?

    /// Creates the owner of stream `id` and starts the call to the app. Call on the tunnel's loop,
    /// from the ``TunnelHandler``'s acceptor.
    static func start(
        handler: TunnelHandler,
        id: UInt32,
        head: RequestHead,
        endStream: Bool,
        eventLoop: any EventLoop,
        forwarder: LocalForwarder,
        report: @escaping Report
    ) -> LocalExchange {
        let exchange = LocalExchange(
            handler: handler,
            id: id,
            head: head,
            endStream: endStream,
            eventLoop: eventLoop,
            forwarder: forwarder,
            report: report
        )
        exchange.start()
        return exchange
    }

    private init(
        handler: TunnelHandler,
        id: UInt32,
        head: RequestHead,
        endStream: Bool,
        eventLoop: any EventLoop,
        forwarder: LocalForwarder,
        report: @escaping Report
    ) {
        self.handler = handler
        self.id = id
        self.head = head
        self.eventLoop = eventLoop
        self.forwarder = forwarder
        self.report = report
        self.requestEnded = endStream
        self.upload = endStream ? .finished : .waiting([])
        self.summary = LocalForwarder.Summary(method: head.method, path: head.target.isEmpty ? "/" : head.target, status: 0, bytes: 0)
    }

    private func start() {
        self.observed = self.forwarder.observer?.webhookStarted(
            ObservedRequestHead(
                method: self.head.method,
                path: self.head.target,
                headers: self.head.headerFields.map { HeaderField($0.name.rawName, $0.value) }
            )
        )
        var headers = LocalForwarder.headers(self.head.headerFields.endToEnd)
        let body: HTTPClient.Body?
        if self.requestEnded {
            body = nil
            if self.head.headerFields[.contentLength] != nil { headers.replaceOrAdd(name: "Content-Length", value: "0") }
        } else {
            let length = self.head.headerFields[.contentLength].flatMap(Int64.init)
            body = .stream(contentLength: length) { writer in
                // AsyncHTTPClient calls this on the task's loop, which is ours; hop if it ever is not.
                if self.eventLoop.inEventLoop { return self.streamBody(to: writer) }
                return self.eventLoop.flatSubmit { self.streamBody(to: writer) }
            }
        }
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(
                url: self.forwarder.url(for: self.head.target),
                method: HTTPMethod(rawValue: self.head.method),
                headers: headers,
                body: body
            )
        } catch {
            self.failed(error)
            return
        }
        // The limit is on the answer's head, as with the async API's `execute(_:timeout:)`: an app
        // that answers in time may stream its body for as long as it likes.
        if let amount = self.forwarder.timeoutAmount {
            self.timeout = self.eventLoop.scheduleTask(in: amount) { self.timedOut() }
        }
        self.task = self.forwarder.httpClient.execute(
            request: request,
            delegate: self,
            eventLoop: .delegate(on: self.eventLoop),
            logger: self.forwarder.logger
        )
    }

    private func timedOut() {
        guard case .waitingForHead = self.answer else { return }
        self.task?.fail(reason: HTTPClientError.deadlineExceeded)
    }

    // MARK: The tunnel stream (server → app)

    func tunnelStream(_ id: UInt32, didReceive part: StreamPart) {
        switch part {
        case .data(let chunk, let endStream):
            self.received(chunk)
            if endStream { self.requestBodyEnded() }
        case .end:
            self.requestBodyEnded()
        case .responseHead:
            // Only the opener receives answers; the state machine never delivers one here.
            break
        }
    }

    private func received(_ chunk: ByteBuffer) {
        switch self.upload {
        case .waiting(var chunks):
            self.upload = .finished  // no copy of the buffer while appending
            chunks.append(chunk)
            self.upload = .waiting(chunks)
        case .streaming(let writer, let done, _):
            self.upload = .streaming(writer, done: done, lastWrite: self.write(chunk, to: writer))
        case .finished:
            // Given up (the app failed or answered): the stream is being reset, the bytes have no taker.
            break
        }
    }

    private func requestBodyEnded() {
        self.requestEnded = true
        guard case .streaming(_, let done, let lastWrite) = self.upload else { return }
        self.upload = .finished
        Self.complete(done, after: lastWrite)
    }

    /// AsyncHTTPClient is ready for the body: what waited goes now, the rest as it arrives.
    private func streamBody(to writer: HTTPClient.Body.StreamWriter) -> EventLoopFuture<Void> {
        guard case .waiting(let chunks) = self.upload else {
            return self.eventLoop.makeFailedFuture(self.abandoned ?? StreamResetReason(.cancelled, "the webhook's body is gone"))
        }
        var lastWrite: EventLoopFuture<Void>?
        for chunk in chunks { lastWrite = self.write(chunk, to: writer) }
        let done = self.eventLoop.makePromise(of: Void.self)
        if self.requestEnded {
            self.upload = .finished
            Self.complete(done, after: lastWrite)
        } else {
            self.upload = .streaming(writer, done: done, lastWrite: lastWrite)
        }
        return done.futureResult
    }

    /// Hands one chunk to the app's connection; the server gets the credit back once it is taken.
    private func write(_ chunk: ByteBuffer, to writer: HTTPClient.Body.StreamWriter) -> EventLoopFuture<Void> {
        self.observed?.requestBody(chunk)
        let count = chunk.readableBytes
        let written = writer.write(.byteBuffer(chunk)).hop(to: self.eventLoop)
        written.whenSuccess { self.handler.consume(count, on: self.id) }
        return written
    }

    private static func complete(_ done: EventLoopPromise<Void>, after lastWrite: EventLoopFuture<Void>?) {
        if let lastWrite {
            lastWrite.cascade(to: done)
        } else {
            done.succeed()
        }
    }

    func tunnelStreamDidGainCredit(_ id: UInt32) {
        switch self.answer {
        case .streaming(let held, let paused?):
            self.answer = .streaming(held: held, paused: nil)
            paused.succeed()
        case .releasing:
            self.answer = .done
            self.endAnswerAndRelease()
        case .waitingForHead, .streaming, .done:
            break
        }
    }

    func tunnelStream(_ id: UInt32, didCloseWith reason: StreamResetReason?) {
        self.timeout?.cancel()
        // `nil`: both sides finished normally, so the upload ended and the answer went out whole.
        guard let reason else { return }
        self.giveUpUpload(reason)
        switch self.answer {
        case .waitingForHead, .streaming:
            // The sender went away or the connection to the server dropped: stop the app's request.
            // AsyncHTTPClient then reports the cancellation in `didReceiveError`, which ends the exchange.
            self.abandoned = reason
            if case .streaming(_, let paused?) = self.answer { paused.fail(reason) }
            if let task = self.task {
                task.cancel()
            } else {
                self.failed(reason)
            }
        case .releasing:
            // Reset while the answer's last bytes waited: the server no longer wants them.
            self.answer = .done
        case .done:
            break
        }
    }

    /// Ends the upload to the app when the stream is gone: AsyncHTTPClient stops waiting for bytes.
    private func giveUpUpload(_ reason: StreamResetReason) {
        switch self.upload {
        case .streaming(_, let done, _):
            self.upload = .finished
            done.fail(reason)
        case .waiting:
            self.upload = .finished
        case .finished:
            break
        }
    }

    // MARK: The app's answer (app → server)

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        self.timeout?.cancel()
        guard case .waitingForHead = self.answer, self.abandoned == nil else { return self.eventLoop.makeSucceededVoidFuture() }
        self.summary.status = Int(head.status.code)
        self.observed?.responseHead(status: self.summary.status, headers: head.headers.map { HeaderField($0.name, $0.value) })
        self.answer = .streaming(held: nil, paused: nil)
        let fields = LocalForwarder.fields(head.headers).endToEnd
        self.handler.writeHead(ResponseHead(status: self.summary.status, headerFields: fields), endStream: false, on: self.id)
        if self.head.method != "HEAD", head.status != .noContent, head.status != .notModified {
            self.answerLength = head.headers.first(name: "Content-Length").flatMap(Int.init)
        }
        if self.answerLength == 0, !self.requestEnded { self.answerEndedBeforeUpload(last: ByteBuffer()) }
        return self.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard case .streaming(let held, _) = self.answer, self.abandoned == nil else { return self.eventLoop.makeSucceededVoidFuture() }
        self.observed?.responseBody(buffer)
        self.summary.bytes += buffer.readableBytes
        if let expected = self.answerLength, self.summary.bytes >= expected, !self.requestEnded {
            if let held { self.handler.writeBody(held, endStream: false, on: self.id) }
            self.answerEndedBeforeUpload(last: buffer)
            return self.eventLoop.makeSucceededVoidFuture()
        }
        self.answer = .streaming(held: buffer, paused: nil)
        guard let held, !self.handler.writeBody(held, endStream: false, on: self.id) else {
            return self.eventLoop.makeSucceededVoidFuture()
        }
        // The window is full: AsyncHTTPClient reads no more from the app until the server credits us.
        let paused = self.eventLoop.makePromise(of: Void.self)
        self.answer = .streaming(held: buffer, paused: paused)
        return paused.futureResult
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        guard case .streaming(let held, _) = self.answer else { return }
        if self.abandoned != nil {
            // The answer completed while its cancellation was on the way: nobody waits for it.
            self.failed(HTTPClientError.cancelled)
            return
        }
        self.observed?.finished(error: nil)
        self.endAnswer(with: held ?? ByteBuffer())
        self.reportOnce()
    }

    /// The app's whole answer is here (its `Content-Length` is reached) while the server is still
    /// uploading: the app answered without reading everything. AsyncHTTPClient would report the
    /// answer only once the upload is over, and an app that answered ≥ 300 never takes the rest, so
    /// the server could wait on credit for ever: the answer is finished now instead, and the stream
    /// released (the upload's failure that follows is ignored).
    private func answerEndedBeforeUpload(last: ByteBuffer) {
        self.observed?.finished(error: nil)
        self.endAnswer(with: last)
        self.reportOnce()
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        self.failed(error)
    }

    /// The request failed (the app is unreachable, too slow, broke off its answer) or was cancelled
    /// because the stream went away.
    private func failed(_ error: any Error) {
        self.timeout?.cancel()
        if let abandoned = self.abandoned {
            let message = "the webhook was abandoned: \(abandoned.message)"
            if case .waitingForHead = self.answer {
                // As the sender would have got it, had it stayed.
                self.summary.status = 502
                LocalForwarder.observeError(status: 502, message: message, on: self.observed)
            } else {
                self.observed?.finished(error: message)
            }
            self.answer = .done
            self.reportOnce()
            return
        }
        switch self.answer {
        case .waitingForHead:
            let (status, message) = LocalForwarder.describe(error, target: self.forwarder.origin)
            self.summary.status = status
            LocalForwarder.observeError(status: status, message: message, on: self.observed)
            let body = LocalForwarder.errorBody(message)
            self.answer = .streaming(held: nil, paused: nil)
            self.handler.writeHead(
                ResponseHead(status: status, headerFields: LocalForwarder.errorHeaders(body)),
                endStream: false,
                on: self.id
            )
            self.endAnswer(with: body)
        case .streaming(_, let paused):
            let message = "the local app's response failed: \(error)"
            self.answer = .done
            paused?.fail(error)
            self.observed?.finished(error: message)
            self.handler.reset(self.id, StreamResetReason(.cancelled, message))
        case .releasing, .done:
            // Answered already; AsyncHTTPClient reports the upload it could not finish. Nothing to add.
            return
        }
        self.reportOnce()
    }

    /// Writes the answer's last bytes with END_STREAM. When the server is still uploading (the app
    /// answered without reading everything), the stream is then reset so the server stops sending
    /// and waiting — but only once the answer has gone out whole, since a RESET drops what waits
    /// for window (docs/architecture.md, "Who owns a stream's state").
    private func endAnswer(with last: ByteBuffer) {
        if self.requestEnded {
            self.answer = .done
            self.handler.writeBody(last, endStream: true, on: self.id)
        } else if self.handler.writeBody(last, endStream: false, on: self.id) {
            self.answer = .done
            self.endAnswerAndRelease()
        } else {
            self.answer = .releasing
        }
    }

    private func endAnswerAndRelease() {
        self.handler.writeBody(ByteBuffer(), endStream: true, on: self.id)
        self.handler.reset(self.id, StreamResetReason(.cancelled, "the other side is done with this webhook"))
    }

    private func reportOnce() {
        guard !self.reported else { return }
        self.reported = true
        self.task = nil
        self.report(self.summary, ContinuousClock.now - self.started, self.head.headerFields[OfflineQueueHeaders.deliveryID])
    }
}
