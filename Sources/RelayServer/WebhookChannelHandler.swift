import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import TunnelTransport

/// The `/webhook/...` route for channels whose client is connected to this replica, on the sender's
/// connection's event loop: no Swift task, the request streamed into the channel's tunnel and the
/// answer streamed back (docs/architecture.md, "One webhook, end to end").
///
/// It sits in the HTTP pipeline right after NIO's HTTP/1 codec and the connection guard, ahead of
/// the HTTP-types conversion (`HTTPServerTypesCodec`), Hummingbird's connection-state handler and
/// the router's channel: a webhook it takes crosses two handlers fewer each way, and only its head
/// is converted. A request it does not take — any other path, and a webhook whose channel has no
/// client here (held, queued, at a peer, the original framing, unknown) — passes on untouched to
/// those handlers and the router, where `WebhookForwarder` answers it (see
/// `RelayServer+Routes.swift`). Because Hummingbird's state handler never sees the webhooks taken
/// here, a graceful shutdown's `ChannelShouldQuiesceEvent` waits here until the exchange is over.
///
/// While an exchange runs, reads are held for back-pressure (the tunnel's window is full) and while
/// a pipelined request waits its turn; a sender that sends one request at a time is read throughout.
final class WebhookChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// A request the router answers: its parts pass through, and its answer, until both have ended.
        case passing(requestDone: Bool, responseDone: Bool)
        /// A webhook this handler delivers.
        case exchanging(WebhookExchange)
    }

    private let route: WebhookRoute
    private var state = State.idle
    /// Parts of a pipelined request that came while an exchange ran.
    private var queued: [HTTPServerRequestPart] = []
    /// A graceful shutdown asked to close the connection while an exchange ran: it goes on to
    /// Hummingbird's state handler (which closes an idle connection) once the exchange is over.
    private var quiesceHeld = false
    private var context: ChannelHandlerContext?
    /// A `read` held while reading is paused.
    private var readHeld = false
    private var inRead = false

    /// What a webhook's path starts with (`WebhookRoute` decides the rest).
    private static let webhookPrefix = "/webhook/".utf8

    /// The sender's IP address as text (`X-Forwarded-For`), formatted once per connection rather than
    /// once per webhook (`inet_ntop` and a new string each time).
    private(set) lazy var senderAddress: String? = self.context?.channel.remoteAddress?.ipAddress

    init(route: WebhookRoute) {
        self.route = route
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.inRead = true
        self.receive(self.unwrapInboundIn(data), context: context)
    }

    private func receive(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch self.state {
        case .idle:
            guard case .head(let nioHead) = part else {
                // Parts of a request that was already answered and ended: the router's to drop.
                context.fireChannelRead(self.wrapInboundOut(part))
                return
            }
            // Only a path under /webhook/ can be ours: everything else goes on unconverted. A head
            // that does not convert goes on too, and the HTTP-types codec reports its error.
            guard nioHead.uri.utf8.starts(with: Self.webhookPrefix),
                let head = try? HTTPServerTypesCodec.request(nioHead),
                let plan = self.route.plan(for: head)
            else {
                self.state = .passing(requestDone: false, responseDone: false)
                context.fireChannelRead(self.wrapInboundOut(part))
                return
            }
            let exchange = WebhookExchange(plan: plan, head: head, route: self.route, channel: context.channel, handler: self)
            self.state = .exchanging(exchange)
            exchange.start()
        case .passing(let requestDone, let responseDone):
            if requestDone {
                // A pipelined request: it waits until the router's answer is out.
                self.queued.append(part)
                return
            }
            context.fireChannelRead(self.wrapInboundOut(part))
            if case .end = part { self.passingEnded(request: true, response: responseDone) }
        case .exchanging(let exchange):
            if exchange.requestComplete {
                // A pipelined request: it waits until this answer is out.
                self.queued.append(part)
            } else {
                switch part {
                case .head: break  // never: the request's head started the exchange
                case .body(let buffer): exchange.requestPart(.body(buffer))
                case .end(let trailers): exchange.requestPart(.end(trailers.map { HTTPFields($0, splitCookie: false) }))
                }
            }
        }
    }

    /// Notes the end of a passing request or of its answer; when both have ended, the next may start.
    private func passingEnded(request: Bool, response: Bool) {
        if request && response {
            self.exchangeEnded()
        } else {
            self.state = .passing(requestDone: request, responseDone: response)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .passing(let requestDone, _) = self.state, case .end = self.unwrapOutboundIn(data) {
            context.write(data, promise: promise)
            self.passingEnded(request: requestDone, response: true)
            return
        }
        context.write(data, promise: promise)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.inRead = false
        if case .exchanging(let exchange) = self.state { exchange.readComplete() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .exchanging(let exchange) = self.state {
            exchange.senderLeft()
            self.state = .idle
        }
        context.fireChannelInactive()
    }

    /// A sender that closes its side has left, as nginx takes it (`proxy_ignore_client_abort off`): the
    /// listener allows half-closure, so a hang-up arrives as this event and not as the channel going
    /// inactive. The stream is reset, so the local app's request ends too. Outside an exchange the
    /// event goes on to Hummingbird, which closes the connection.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, case .exchanging(let exchange) = self.state {
            exchange.senderLeft()
            self.state = .idle
            context.close(promise: nil)
            return
        }
        if event is ChannelShouldQuiesceEvent, self.isExchanging {
            self.quiesceHeld = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.route.logger.debug("sender's connection failed", metadata: ["error": "\(error)"])
        if case .exchanging(let exchange) = self.state { exchange.senderLeft() }
        context.fireErrorCaught(error)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .exchanging(let exchange) = self.state, context.channel.isWritable { exchange.senderWritable() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Reads

    func read(context: ChannelHandlerContext) {
        if self.holdsReads {
            self.readHeld = true
            return
        }
        context.read()
    }

    private var isExchanging: Bool {
        if case .exchanging = self.state { return true }
        return false
    }

    /// Reads wait while the exchange's window is full, and while a pipelined request's parts wait
    /// their turn (so a sender cannot queue more than one read's worth here).
    private var holdsReads: Bool {
        if !self.queued.isEmpty { return true }
        if case .exchanging(let exchange) = self.state { return exchange.holdsReads }
        return false
    }

    /// The exchange may read again.
    func resumeReading() {
        guard self.readHeld, let context = self.context, !self.holdsReads else { return }
        self.readHeld = false
        context.read()
    }

    // MARK: Answering (called by the exchange)

    func write(_ part: HTTPResponsePart, promise: EventLoopPromise<Void>? = nil) {
        guard let context = self.context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let nioPart: HTTPServerResponsePart =
            switch part {
            case .head(let response): .head(HTTPResponseHead(response))
            case .body(let buffer): .body(.byteBuffer(buffer))
            case .end(let trailers): .end(trailers.map(HTTPHeaders.init))
            }
        context.write(self.wrapOutboundOut(nioPart), promise: promise)
    }

    func flush() {
        self.context?.flush()
    }

    /// Cuts the connection after flushing what was written: an answer's head may still wait for the
    /// end of the loop tick's flush, and a sender must get the head before the cut, not a connection
    /// closed without any answer (bench/soak.py checks exactly that).
    func close() {
        self.context?.flush()
        self.context?.close(promise: nil)
    }

    /// The exchange is over: the next request (perhaps already queued) may start.
    func exchangeEnded() {
        self.state = .idle
        guard let context = self.context else { return }
        let queued = self.queued
        self.queued = []
        for part in queued { self.receive(part, context: context) }
        // A held shutdown goes on after a pipelined request was handed on (Hummingbird's state
        // handler then answers it before closing), or waits again if that request is a webhook too.
        if self.quiesceHeld, !self.isExchanging {
            self.quiesceHeld = false
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        // Parts replayed outside a read end with a read-complete of their own: the router's channel
        // hands what it buffered to Hummingbird only then, and no further read may come while the
        // sender waits for this request's answer.
        if !queued.isEmpty { context.fireChannelReadComplete() }
        self.resumeReading()
    }
}
