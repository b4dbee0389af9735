import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
@_spi(WSInternal) import WSCore

/// What the server decided about a WebSocket upgrade request.
enum UpgradeDecision: Sendable {
    /// Accepted: `connection` says how the WebSocket runs; `abandon` gives back what the
    /// decision claimed when the upgrade fails before it runs.
    case accept(headers: HTTPFields, connection: AcceptedConnection, abandon: @Sendable () async -> Void)
    /// Refused with a real status (401, 403, 409...) and a JSON error body.
    case refuse(HTTPResponse.Status, message: String)
}

/// How an accepted WebSocket runs.
enum AcceptedConnection: Sendable {
    /// v2: the tunnel runs as NIO handlers on the channel's loop; this adds them (on the loop). From
    /// then on the connection is owned by its handlers, not by a task.
    case tunnel(install: @Sendable (any Channel) throws -> Void)
    /// The original JSON framing: an async handler over swift-websocket, as a task.
    case legacy(WebSocketDataHandler<RelayWebSocketContext>)
}

struct RelayWebSocketContext: WebSocketContext {
    let logger: Logger
}

/// The server's child channel: HTTP/1.1 with WebSocket upgrades.
///
/// It exists because Hummingbird's `HTTP1WebSocketUpgradeChannel` answers
/// every refused upgrade with 400, while clients need to tell a bad token
/// (401) from an unknown channel (403) and a channel already in use (409).
/// The pipeline is the same as Hummingbird's; only a refusal writes the
/// status and body the decision carried.
struct RelayChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Decide = @Sendable (HTTPRequest, any Channel, Logger) async -> UpgradeDecision?

    enum UpgradeResult: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, WebSocketDataHandler<RelayWebSocketContext>, Logger)
        /// A v2 tunnel, running on the loop.
        case tunnel
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, HTTPResponse.Status, String)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
        let decision: NIOLoopBoundBox<UpgradeDecision?>
    }

    let responder: HTTPChannelHandler.Responder
    let decide: Decide
    /// Webhooks for channels connected here, delivered on the loop (`WebhookChannelHandler`).
    let webhookRoute: WebhookRoute?
    let webSocket: WebSocketHandler.Configuration
    let maxFrameSize: Int

    init(
        responder: @escaping HTTPChannelHandler.Responder,
        maxFrameSize: Int,
        autoPing: AutoPingSetup,
        webhookRoute: WebhookRoute?,
        decide: @escaping Decide
    ) {
        self.responder = Self.upgradeAwareResponder(responder)
        self.decide = decide
        self.webhookRoute = webhookRoute
        self.maxFrameSize = maxFrameSize
        self.webSocket = .init(
            extensions: [],
            autoPing: autoPing,
            closeTimeout: .seconds(5),
            validateUTF8: false,
            maxFrameSize: maxFrameSize
        )
    }

    /// Most fields a request head may have. Apache's and Go's `LimitRequestFields`-style default; GitHub,
    /// Stripe and Slack send 8–15, and 30 or so after a few proxies (docs/operations.md, "Limits").
    static let maxHeaderFields = 100
    /// Most bytes of one field and of all of a head's fields together: NIO's default, above nginx's
    /// (8 KiB a line, 32 KiB in all with `large_client_header_buffers 4 8k`).
    static let maxHeadBytes = 80 * 1024

    /// What NIO's parser accepts; beyond it, `HTTPConnectionGuard` answers 431 and closes.
    static var headLimits: NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldCount = Self.maxHeaderFields
        limits.maxHeaderFieldSize = Self.maxHeadBytes
        limits.maxHeaderListSize = Self.maxHeadBytes
        return limits
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let pending = NIOLoopBoundBox<UpgradeDecision?>(nil, eventLoop: channel.eventLoop)
            let decide = self.decide
            let webhookRoute = self.webhookRoute
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: self.maxFrameSize,
                enableAutomaticErrorHandling: true,
                shouldUpgrade: { channel, head in
                    let request: HTTPRequest
                    do {
                        request = try HTTPRequest(head, secure: false, splitCookie: false)
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                    let promise = channel.eventLoop.makePromise(of: UpgradeDecision?.self)
                    promise.completeWithTask { await decide(request, channel, logger) }
                    return promise.futureResult.hop(to: channel.eventLoop).map { decision -> HTTPHeaders? in
                        pending.value = decision ?? .refuse(.notFound, message: "not found")
                        if case .accept(let headers, _, _) = decision { return HTTPHeaders(headers) }
                        return nil
                    }
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard case .accept(_, let accepted, _) = pending.value else {
                            throw ChannelError.inappropriateOperationForState
                        }
                        // HTTP is over on this connection; the upgrader removed NIO's HTTP handlers.
                        let connectionGuard = try channel.pipeline.syncOperations.handler(type: HTTPConnectionGuard.self)
                        channel.pipeline.syncOperations.removeHandler(connectionGuard, promise: nil)
                        switch accepted {
                        case .tunnel(let install):
                            try install(channel)
                            return UpgradeResult.tunnel
                        case .legacy(let handler):
                            let asyncChannel = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                                wrappingChannelSynchronously: channel,
                                configuration: .init(isOutboundHalfClosureEnabled: true)
                            )
                            return UpgradeResult.websocket(asyncChannel, handler, logger)
                        }
                    }
                }
            )
            let serverUpgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let webhookRoute {
                            try channel.pipeline.syncOperations.addHandler(WebhookChannelHandler(route: webhookRoute))
                        }
                        try channel.pipeline.syncOperations.addHandler(HTTPServerTypesCodec())
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(logger: logger))
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        if case .refuse(let status, let message) = pending.value {
                            return UpgradeResult.refused(asyncChannel, status, message)
                        }
                        return UpgradeResult.notUpgraded(asyncChannel)
                    }
                }
            )
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(
                upgradeConfiguration: serverUpgradeConfiguration
            )
            configuration.enablePipelining = false
            // A request that does not parse must get 400 and a closed
            // connection; without NIO's error handler a parse error on a
            // connection's first request left it open and silent forever.
            configuration.enableErrorHandling = true
            configuration.enableResponseHeaderValidation = false
            configuration.decoderConfiguration = Self.headLimits
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            let errorHandler = try channel.pipeline.syncOperations.handler(type: HTTPServerProtocolErrorHandler.self)
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionGuard(), position: .before(errorHandler))
            return Value(upgradeResult: result, channel: channel, decision: pending)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .notUpgraded(let http1):
                await self.handleHTTP(asyncChannel: http1, logger: logger)
            case .refused(let http1, let status, let message):
                await Self.writeRefusal(status, message: message, on: http1, logger: logger)
            case .tunnel:
                // The tunnel's handlers own the connection now and release the channel when it closes.
                return
            case .websocket(let asyncChannel, let handler, let logger):
                do {
                    _ = try await WebSocketHandler.handle(
                        type: .server,
                        configuration: self.webSocket,
                        asyncChannel: asyncChannel,
                        context: RelayWebSocketContext(logger: logger),
                        handler: handler
                    )
                } catch {
                    logger.debug("WebSocket ended with an error", metadata: ["error": "\(error)"])
                }
            }
        } catch {
            logger.debug("Connection ended before it was set up", metadata: ["error": "\(error)"])
        }
        // Whatever happened, an accepted upgrade's claim ends with its
        // connection (a no-op when the handler already released it).
        let decision = try? await value.channel.eventLoop.submit { value.decision.value }.get()
        if case .accept(_, _, let abandon) = decision {
            await abandon()
        }
    }

    private static func writeRefusal(
        _ status: HTTPResponse.Status,
        message: String,
        on channel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>,
        logger: Logger
    ) async {
        let body = ErrorBody.json(message)
        do {
            try await channel.executeThenClose { _, outbound in
                let head = HTTPResponse(
                    status: status,
                    headerFields: [
                        .connection: "close",
                        .contentType: "application/json",
                        .contentLength: "\(body.readableBytes)",
                    ]
                )
                try await outbound.write(contentsOf: [.head(head), .body(body), .end(nil)])
            }
        } catch {
            logger.trace("Could not write the refusal", metadata: ["error": "\(error)"])
        }
    }

    /// NIO only looks for an upgrade on a connection's first request. A later
    /// upgrade request on a kept-alive connection is redirected to itself with
    /// `Connection: close`, so the client retries on a fresh connection (what
    /// Hummingbird does too).
    private static func upgradeAwareResponder(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        struct RedirectClose: Error {}
        return { request, writer, channel in
            if request.headers[.upgrade]?.lowercased() == "websocket" {
                var location = request.uri.path
                if let query = request.uri.query { location += "?\(query)" }
                try await writer.writeResponse(
                    HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location])
                )
                throw RedirectClose()
            }
            try await responder(request, writer, channel)
        }
    }
}
