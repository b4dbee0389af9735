import AsyncHTTPClient
import HTTPTypes
import Inspector
import NIOCore
import NIOHTTP1
import TunnelProtocol
import TunnelTransport

/// One webhook's call to the local app: the owner of a tunnel stream the server opened, and the
/// client side of the request it makes to the app.
///
/// An `http://` app (the common case) is called over a ``LocalAppConnectionPool`` of the tunnel's
/// own event loop, with NIO's HTTP/1.1 codec: AsyncHTTPClient's pool was the client's largest cost
/// in the profile, and it wrote a request's head and body in two syscalls, where a webhook whose
/// body is all here when the request starts now goes out in one flush. An `https://` app keeps
/// AsyncHTTPClient (its TLS and configuration), as do inspector replays (``LocalForwarder``).
///
/// Both sides run on the tunnel connection's event loop: the ``TunnelHandler`` calls its owners
/// there, the pool's connections live there, and the AsyncHTTPClient request is made with
/// `.delegate(on:)` that loop, so its callbacks come there too. A webhook therefore needs no Swift
/// task and no lock (docs/architecture.md).
///
/// Retry rule of the pool path: a connection taken idle from the pool may have been closed by the
/// app just before (it restarted). When such a connection fails before any answer came and the
/// whole request had been written in one go (so it is still in hand), the request is sent once
/// more on a new connection. Webhooks may not be idempotent, but an app that sent nothing back on
/// a connection it had closed did not process the request. A streamed upload is not retried: its
/// bytes are no longer here.
///
/// Not `.delegateAndChannel(on:)`: AsyncHTTPClient 1.37 serves a request that requires a loop from
/// an idle connection on that loop or else opens an "overflow" connection, which it closes as soon
/// as it is idle, so every webhook paid a TCP connect to the app (measured: a new connection per
/// request, a fifth of the client's CPU). With `.delegate(on:)` the pool keeps general-purpose
/// connections alive, prefers one on our loop, and hops only when it hands us another loop's.
///
/// Back-pressure, both ways, without ever holding a body whole:
/// - Upload (server → app): each chunk from the tunnel is written to the app's connection (or to
///   AsyncHTTPClient's `StreamWriter`), and its credit goes back to the server (``TunnelHandler/consume(_:on:)``) only
///   when that write's future completes. AsyncHTTPClient completes it at once while its connection
///   to the app is writable and holds it while that connection is over its high-water mark, so an
///   app that reads slowly stops the credit, and the server (and the sender) with it. At most a
///   window's worth waits here, plus what AsyncHTTPClient's channel buffers.
/// - Answer (app → server): ``didReceiveBodyPart(task:_:)`` returns a future that completes when
///   the tunnel took the chunk: at once when ``TunnelHandler/writeBody(_:endStream:on:)`` says the
///   window had room, else on ``tunnelStreamDidGainCredit(_:)``. The app's connection (or
///   AsyncHTTPClient) reads no more from the app until then. One chunk is held back so the last
///   goes out with END_STREAM.
///
/// It is `@unchecked Sendable` only because AsyncHTTPClient and NIO's callbacks require `Sendable`:
/// every stored property is read and written on ``eventLoop`` alone.
final class LocalExchange: TunnelStreamDelegate, HTTPClientResponseDelegate, LocalAppConnectionDelegate, @unchecked Sendable {
    typealias Response = Void

    /// How an ended exchange is reported: the console line and the session's totals.
    typealias Report = @Sendable (_ summary: LocalForwarder.Summary, _ elapsed: Duration, _ queuedID: String?) -> Void

    /// The request body on its way to the app.
    private enum Upload {
        /// The request has not started (it starts at the end of the loop tick that opened the
        /// stream, so a small webhook's body is all here), or is still connecting (or
        /// AsyncHTTPClient has not asked for the body yet): chunks wait here. Their credit has not
        /// gone back, so this is at most one window.
        case waiting(CircularBuffer<ByteBuffer>)
        /// The head went to the app's connection (pool path): chunks are written as they arrive.
        case sending(LocalAppConnection)
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
    private var timeout: DeadlineQueue.Timeout?
    /// The pool path: where an `http://` app's connections come from (`nil`: AsyncHTTPClient).
    private let pool: LocalAppConnectionPool?
    /// The pool path: the connection serving the request until the answer ended.
    private var connection: LocalAppConnection?
    /// The pool path: the whole request, written in one go and kept until the answer's head came,
    /// so it can be sent again (see the retry rule above). `nil` when it was streamed.
    private var resendable: (head: HTTPRequestHead, body: CircularBuffer<ByteBuffer>)?
    private var retried = false

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
        self.pool = forwarder.appTarget.map { LocalAppConnectionPool.on(eventLoop, for: $0) }
        self.summary = LocalForwarder.Summary(method: head.method, path: head.target.isEmpty ? "/" : head.target, status: 0, bytes: 0)
    }

    private func start() {
        if !self.requestEnded {
            // A large upload may come a widened window at a time (docs/protocol.md, "Flow control").
            self.handler.widenReceiveWindow(on: self.id, forBodyOf: self.head.headerFields.value(of: .contentLength).flatMap { Int($0) })
        }
        self.observed = self.forwarder.observer?.webhookStarted(
            ObservedRequestHead(
                method: self.head.method,
                path: self.head.target,
                headers: self.head.headerFields
            )
        )
        if let pool = self.pool {
            if let amount = self.forwarder.timeoutAmount {
                self.timeout = DeadlineQueue.schedule(in: amount, on: self.eventLoop) { self.timedOut() }
            }
            // At the end of this loop tick: what else the same WebSocket read brought (a small
            // webhook's DATA with END_STREAM) is here by then, and goes in the same flush.
            self.eventLoop.execute { self.callApp(pool) }
            return
        }
        var headers = LocalForwarder.headers(self.head.headerFields.endToEnd)
        let body: HTTPClient.Body?
        if self.requestEnded {
            body = nil
            if self.head.headerFields.contains(.contentLength) { headers.replaceOrAdd(name: "Content-Length", value: "0") }
        } else {
            let length = self.head.headerFields.value(of: .contentLength).flatMap(Int64.init)
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
            self.timeout = DeadlineQueue.schedule(in: amount, on: self.eventLoop) { self.timedOut() }
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
        if self.pool != nil {
            self.dropConnection()
            self.failed(HTTPClientError.deadlineExceeded)
        } else {
            self.task?.fail(reason: HTTPClientError.deadlineExceeded)
        }
    }

    // MARK: The pool path's request (server → app)

    private func callApp(_ pool: LocalAppConnectionPool, fresh: Bool = false) {
        guard case .waitingForHead = self.answer, self.abandoned == nil else { return }
        // An idle connection is used at once, with no future.
        if !fresh, let connection = pool.idleConnection() {
            self.send(on: connection)
            return
        }
        pool.newConnection().whenComplete { result in
            switch result {
            case .success(let connection):
                self.send(on: connection)
            case .failure(let error):
                guard case .waitingForHead = self.answer, self.abandoned == nil else { return }
                self.failed(error)
            }
        }
    }

    private func send(on connection: LocalAppConnection) {
        guard case .waitingForHead = self.answer, self.abandoned == nil else {
            // Given up while connecting (timeout, reset): the connection is still unused.
            self.pool?.release(connection)
            return
        }
        guard connection.isIdle else {
            // It closed between the connect and now: nothing of the request was written, so it
            // may go once more on a new connection.
            if let pool = self.pool, !self.retried {
                self.retried = true
                self.callApp(pool, fresh: true)
            } else {
                self.failed(LocalAppConnection.Closed())
            }
            return
        }
        self.connection = connection
        connection.begin(self)
        if let resendable = self.resendable {
            self.write(resendable.head, resendable.body, to: connection)
            return
        }
        var headers = LocalForwarder.headers(self.head.headerFields.endToEnd)
        if !headers.contains(name: "Host"), let pool = self.pool { headers.add(name: "Host", value: pool.target.hostHeader) }
        let uri = LocalForwarder.join(origin: "", basePath: self.forwarder.basePath, suffix: self.head.target)
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: self.head.method), uri: uri, headers: headers)
        let declared = self.head.headerFields.value(of: .contentLength)
        switch self.upload {
        case .waiting(let chunks) where self.requestEnded:
            // All of it is here: one flush, with its length.
            let length = chunks.reduce(0) { $0 + $1.readableBytes }
            if length > 0 || declared != nil || ["POST", "PUT", "PATCH"].contains(self.head.method) {
                head.headers.replaceOrAdd(name: "Content-Length", value: "\(length)")
            }
            for chunk in chunks { self.observed?.requestBody(chunk) }
            self.upload = .finished
            self.resendable = (head, chunks)
            self.write(head, chunks, to: connection)
        case .waiting(let chunks):
            // The rest comes as it arrives, chunked unless the sender said how much.
            if let declared { head.headers.replaceOrAdd(name: "Content-Length", value: declared) }
            connection.writeHead(head)
            self.upload = .sending(connection)
            for chunk in chunks { self.write(chunk, to: connection) }
            connection.flush()
        case .finished, .streaming, .sending:
            // No body (REQUEST_HEAD came with END_STREAM).
            if declared != nil { head.headers.replaceOrAdd(name: "Content-Length", value: "0") }
            self.resendable = (head, [])
            self.write(head, [], to: connection)
        }
    }

    /// Writes a whole request in one flush. No credit goes back for its body: the request has ended
    /// (its END_STREAM came, or it is a resend of one that had), so the server sends nothing more on
    /// this stream and the window's credit would be dropped by the state machine unsent. Waiting
    /// for the write to credit it was a promise and two closures per webhook (docs/performance.md).
    private func write(_ head: HTTPRequestHead, _ body: CircularBuffer<ByteBuffer>, to connection: LocalAppConnection) {
        connection.writeHead(head)
        for chunk in body { connection.writeBody(chunk, promise: nil) }
        connection.writeEnd(promise: nil)
        connection.flush()
    }

    /// Writes one chunk of a streamed upload; the server gets the credit back once it is written.
    private func write(_ chunk: ByteBuffer, to connection: LocalAppConnection) {
        self.observed?.requestBody(chunk)
        let count = chunk.readableBytes
        connection.writeBody(chunk).whenSuccess { self.handler.consume(count, on: self.id) }
    }

    /// Closes the app's connection while it serves this exchange: it is not reused.
    private func dropConnection() {
        self.connection?.abandon()
        self.connection = nil
    }

    func localAppConnection(didReceiveHead head: HTTPResponseHead) {
        self.resendable = nil
        self.answerHead(head)
    }

    func localAppConnection(didReceiveBody buffer: ByteBuffer) -> EventLoopFuture<Void> {
        self.answerBody(buffer)
    }

    func localAppConnectionDidFinish() {
        self.connection = nil
        self.answerFinished()
    }

    func localAppConnection(didFail error: any Error, reusedWithoutAnswer: Bool) {
        self.connection = nil
        if reusedWithoutAnswer, !self.retried, self.resendable != nil, let pool = self.pool,
            case .waitingForHead = self.answer, self.abandoned == nil
        {
            self.retried = true
            self.callApp(pool, fresh: true)
            return
        }
        self.failed(error)
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
        case .sending(let connection):
            self.write(chunk, to: connection)
            connection.flush()
        case .finished:
            // Given up (the app failed or answered): the stream is being reset, the bytes have no taker.
            break
        }
    }

    private func requestBodyEnded() {
        self.requestEnded = true
        if case .sending(let connection) = self.upload {
            self.upload = .finished
            connection.writeEnd(promise: nil)
            connection.flush()
            return
        }
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
        if self.pool != nil {
            // The server reset the stream: the app's connection may be mid-request or mid-answer.
            self.dropConnection()
        }
        switch self.answer {
        case .waitingForHead, .streaming:
            // The sender went away or the connection to the server dropped: stop the app's request.
            // AsyncHTTPClient then reports the cancellation in `didReceiveError`, which ends the exchange.
            self.abandoned = reason
            if case .streaming(_, let paused?) = self.answer { paused.fail(reason) }
            if let task = self.task {
                task.cancel()
            } else {
                // The pool path (or AsyncHTTPClient's request not made): the connection is closed.
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
        case .waiting, .sending:
            self.upload = .finished
        case .finished:
            break
        }
    }

    // MARK: The app's answer (app → server)

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        self.answerHead(head)
        return self.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        self.answerBody(buffer)
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        self.answerFinished()
    }

    private func answerHead(_ head: HTTPResponseHead) {
        self.timeout?.cancel()
        guard case .waitingForHead = self.answer, self.abandoned == nil else { return }
        self.summary.status = Int(head.status.code)
        self.observed?.responseHead(status: self.summary.status, headers: head.headers)
        self.answer = .streaming(held: nil, paused: nil)
        let fields = LocalForwarder.endToEndFields(head.headers)
        self.handler.writeHead(ResponseHead(status: self.summary.status, headerFields: fields), endStream: false, on: self.id)
        if self.head.method != "HEAD", head.status != .noContent, head.status != .notModified {
            self.answerLength = head.headers.first(name: "Content-Length").flatMap(Int.init)
        }
        if self.answerLength == 0, !self.requestEnded { self.answerEndedBeforeUpload(last: ByteBuffer()) }
    }

    private func answerBody(_ buffer: ByteBuffer) -> EventLoopFuture<Void> {
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

    private func answerFinished() {
        guard case .streaming(let held, _) = self.answer else { return }
        if self.abandoned != nil {
            // The answer completed while its cancellation was on the way: nobody waits for it.
            self.failed(HTTPClientError.cancelled)
            return
        }
        self.endAnswer(with: held ?? ByteBuffer())
        self.observeEnd()
        self.reportOnce()
    }

    /// The app's whole answer is here (its `Content-Length` is reached) while the server is still
    /// uploading: the app answered without reading everything. AsyncHTTPClient would report the
    /// answer only once the upload is over, and an app that answered ≥ 300 never takes the rest, so
    /// the server could wait on credit for ever: the answer is finished now instead, and the stream
    /// released (the upload's failure that follows is ignored).
    private func answerEndedBeforeUpload(last: ByteBuffer) {
        self.endAnswer(with: last)
        self.observeEnd()
        self.reportOnce()
    }

    /// Tells the observer the exchange is over after the answer's last frames are flushed (the
    /// tunnel flushes at the end of the loop's tick): the inspector copies the bodies it held
    /// then, and that copy no longer delays the answer (docs/inspector.md, "Cost").
    private func observeEnd() {
        guard let observed = self.observed else { return }
        self.eventLoop.execute { observed.finished(error: nil) }
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
        self.report(self.summary, ContinuousClock.now - self.started, self.head.headerFields.value(of: OfflineQueueHeaders.deliveryID))
    }
}
