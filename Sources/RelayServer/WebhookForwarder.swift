import AsyncHTTPClient
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import Prometheus
import TunnelProtocol
import TunnelTransport

/// Delivers one webhook through the channel's client and streams the answer
/// back to the sender.
///
/// This runs below Hummingbird's router, on the raw `ResponseWriter`,
/// because the request body must keep uploading while the response head and
/// body come back (an app may answer before it has read everything), and
/// neither body is ever held whole in memory.
struct WebhookForwarder: Sendable {
    let registry: ChannelRegistry
    let configuration: RelayServerConfiguration
    let metrics: RelayMetrics
    let logger: Logger
    /// Counts webhooks in flight, so a graceful shutdown can wait for them.
    let drain: ShutdownDrain
    /// Cluster mode: where other replicas' channels are, and the client that forwards to them.
    var cluster: (directory: ClusterDirectory, client: HTTPClient)?
    /// The offline queue: webhooks for away clients in `queue` mode are stored (WebhookForwarder+Queue.swift).
    var offline: OfflineDelivery?

    /// A parsed `/webhook/{id}[/rest]` target.
    struct Target {
        var channelID: String
        /// What is appended to the client's target URL: rest of the path and query.
        var suffix: String
    }

    static func parseTarget(path: String, query: String?) -> Target? {
        // As bytes: a path is ASCII on the wire, and Character-wise slicing (grapheme breaking)
        // was 2.4 % of the server's samples, once per webhook (docs/performance.md).
        let bytes = path.utf8
        let prefix = "/webhook/".utf8
        guard bytes.starts(with: prefix) else { return nil }
        let idStart = bytes.index(bytes.startIndex, offsetBy: prefix.count)
        let idEnd = bytes[idStart...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex
        guard idStart < idEnd else { return nil }
        var suffix = String(path[idEnd...])
        if let query { suffix += "?\(query)" }
        return Target(channelID: String(path[idStart..<idEnd]), suffix: suffix)
    }

    func respond(to request: Request, target: Target, writer: consuming ResponseWriter, channel: any Channel) async throws {
        let started = ContinuousClock.now
        var outcome = Outcome(status: 0, bytesIn: 0, bytesOut: 0)
        self.metrics.webhooksInFlight.increment()
        self.drain.webhookStarted()
        defer {
            self.drain.webhookEnded()
            self.metrics.webhooksInFlight.decrement()
            self.record(request, target: target, outcome: outcome, started: started)
        }

        guard ChannelID.isCanonical(target.channelID) else {
            // Not a UUID, so never a channel: nothing to hold for, even in the start-up window.
            outcome.status = 404
            try await Self.writeError(.notFound, ChannelGate.notAChannelID, to: writer)
            return
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > self.configuration.maxBodySize {
            outcome.status = 413
            try await Self.writeError(.contentTooLarge, "the body is larger than the server's limit", to: writer, close: true)
            return
        }
        let fromPeer = PeerHop.isFromPeer(request.headers, internalToken: self.configuration.internalToken)
        let lookup: ChannelRegistry.Lookup
        let route: Route
        switch await self.routeOrQueue(target.channelID, fromPeer: fromPeer) {
        case .queue:
            try await self.queue(request, target: target, writer: writer, channel: channel, outcome: &outcome, fromPeer: fromPeer)
            return
        case .route(let found):
            route = found
        }
        switch route {
        case .peer(let url, let client):
            try await self.forwardToPeer(request, peerURL: url, client: client, writer: writer, channel: channel, outcome: &outcome)
            return
        case .here(let found):
            lookup = found
        }
        switch lookup {
        case .unknown:
            outcome.status = 404
            try await Self.writeError(.notFound, "no such channel", to: writer)
        case .unavailable:
            outcome.status = 503
            try await Self.writeError(
                .serviceUnavailable,
                "the channel's client is not connected",
                to: writer,
                extraHeaders: [.retryAfter: "5"]
            )
        case .connected(.multiplexed(let tunnel)):
            try await self.forward(
                request,
                target: target,
                over: tunnel,
                writer: writer,
                channel: channel,
                outcome: &outcome,
                fromPeer: fromPeer
            )
        case .connected(.legacy(let session)):
            try await self.forwardLegacy(
                request,
                target: target,
                over: session,
                writer: writer,
                channel: channel,
                outcome: &outcome,
                fromPeer: fromPeer
            )
        }
    }

    struct Outcome {
        var status: Int
        var bytesIn: Int
        var bytesOut: Int
    }

    /// What the local app sees; a peer replica already added the `X-Forwarded-*` headers.
    func requestHeaders(_ request: Request, channel: any Channel, fromPeer: Bool) -> HTTPFields {
        Self.requestHeaders(
            request.headers,
            senderAddress: channel.remoteAddress?.ipAddress,
            scheme: request.head.scheme ?? "http",
            authority: request.head.authority,
            fromPeer: fromPeer
        )
    }

    /// The request headers a webhook carries through the tunnel, for both the event-loop path and this one.
    static func requestHeaders(_ fields: HTTPFields, senderAddress: String?, scheme: String, authority: String?, fromPeer: Bool) -> HTTPFields {
        // Both paths build a fresh copy, so the peer marker is dropped from that copy.
        var result =
            fromPeer
            ? fields.endToEnd
            : ForwardedHeaders.forRequest(fields, senderAddress: senderAddress, scheme: scheme, host: authority)
        result[PeerHop.header] = nil
        return result
    }

    /// Whether the request carries a body at all.
    static func hasBody(_ request: Request) -> Bool {
        Self.hasBody(request.headers)
    }

    static func hasBody(_ fields: HTTPFields) -> Bool {
        if fields.contains(.transferEncoding) { return true }
        if let length = fields.value(of: .contentLength) { return length != "0" }
        return false
    }

    private func forward(
        _ request: Request,
        target: Target,
        over tunnel: TunnelConnection,
        writer: consuming ResponseWriter,
        channel: any Channel,
        outcome: inout Outcome,
        fromPeer: Bool
    ) async throws {
        let stream: TunnelStream
        do {
            stream = try await tunnel.openStream()
        } catch {
            let answer = error.code == .tooManyStreams ? ErrorAnswer.forReset(error) : ErrorAnswer.reconnecting
            outcome.status = answer.status.code
            try await Self.writeError(answer, to: writer)
            return
        }
        defer { stream.release() }

        let hasBody = Self.hasBody(request)
        let head = RequestHead(
            method: request.method.rawValue,
            target: target.suffix,
            headerFields: self.requestHeaders(request, channel: channel, fromPeer: fromPeer)
        )
        do {
            try await stream.sendRequestHead(head, endStream: !hasBody)
        } catch {
            // The client's connection broke: like a client that is away, worth a retry.
            outcome.status = 503
            try await Self.writeError(.serviceUnavailable, "the channel's client went away", to: writer, extraHeaders: [.retryAfter: "5"])
            return
        }

        // The request timeout is a timer on the connection's event loop rather than a task of its own:
        // it wakes the wait below with a timeout unless the response head comes first.
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(self.configuration.requestTimeout)) {
            stream.inject(StreamResetReason(.timeout, "the local app did not answer in time"))
        }
        async let uploaded: Int = hasBody ? Self.upload(request.body, to: stream, limit: self.configuration.maxBodySize) : 0

        var events = stream.events.makeAsyncIterator()
        let first = await events.next()
        timer.cancel()
        switch first {
        case .responseHead(let response, let endStream):
            outcome.status = response.status
            let headers = response.headerFields.endToEnd
            var resetByClient = false
            do {
                var body = try await writer.writeHead(HTTPResponse(status: .init(code: response.status), headerFields: headers))
                if !endStream {
                    loop: while true {
                        switch await events.next() {
                        case .data(let buffer):
                            outcome.bytesOut += buffer.readableBytes
                            try await body.write(buffer)
                            // Credit that cannot be sent means the client is gone, which the next
                            // event says; it must not cut an answer that may be complete already.
                            try? await stream.acknowledge(buffer.readableBytes)
                        case .end:
                            break loop
                        case .reset(let reason):
                            // The head is out: all the sender can learn is a cut connection.
                            resetByClient = true
                            throw reason
                        case .responseHead, nil:
                            throw StreamResetReason(.protocolError, "the response stream broke")
                        }
                    }
                }
                try await body.finish(nil)
            } catch {
                // The sender hung up (or the stream broke) mid-answer. Without a RESET the client's body
                // writer would wait for credit that never comes, holding its request to the local app
                // open until the WebSocket drops; the RESET ends that request now (docs/protocol.md).
                if !resetByClient {
                    let reason = error as? StreamResetReason ?? StreamResetReason(.cancelled, "the sender went away")
                    await stream.reset(reason)
                }
                throw error
            }
        case .reset(let reason):
            outcome.status = try await Self.writeError(for: reason, to: writer)
            await stream.reset(reason)
        case .data, .end, nil:
            outcome.status = 502
            await stream.reset(StreamResetReason(.protocolError, "body before head"))
            try await Self.writeError(.badGateway, "the client answered out of order", to: writer)
        }
        // The answer is complete. An upload still running (the app answered before reading the whole
        // body) would wait forever for credit the client no longer sends: forgetting the stream ends
        // its wait, and the rest of the body is not wanted.
        stream.release()
        outcome.bytesIn = await uploaded
    }

    /// Streams the sender's body to the client. Failures are injected into
    /// the stream so the task waiting for the answer learns of them; returns
    /// the bytes sent.
    private static func upload(_ body: RequestBody, to stream: TunnelStream, limit: Int) async -> Int {
        struct OverLimit: Error {}
        var writer = stream.makeBodyWriter()
        var received = 0
        do {
            try await writer.writeAll(body) { chunk in
                received += chunk.readableBytes
                if received > limit { throw OverLimit() }
            }
        } catch is OverLimit {
            let reason = StreamResetReason(.bodyTooLarge, "the body is larger than the server's limit")
            stream.inject(reason)
            await stream.reset(reason)
        } catch is CancellationError {
            // The exchange is over (answered early or failed); nothing to report.
        } catch let reason as StreamResetReason {
            stream.inject(reason)
        } catch {
            // Writes to the tunnel fail as StreamResetReason, so this is the sender's body failing.
            let reason = StreamResetReason(.cancelled, "the sender went away")
            stream.inject(reason)
            await stream.reset(reason)
        }
        return writer.bytesWritten
    }

    /// Maps a failed stream to the sender's answer (``ErrorAnswer``); returns the status sent.
    @discardableResult
    static func writeError(for reason: StreamResetReason, to writer: consuming ResponseWriter) async throws -> Int {
        let answer = ErrorAnswer.forReset(reason)
        try await Self.writeError(answer, to: writer)
        return answer.status.code
    }

    static func writeError(_ answer: ErrorAnswer, to writer: consuming ResponseWriter) async throws {
        let body = answer.body
        var bodyWriter = try await writer.writeHead(answer.head(bodyLength: body.readableBytes))
        try await bodyWriter.write(body)
        try await bodyWriter.finish(nil)
    }

    static func writeError(
        _ status: HTTPResponse.Status,
        _ message: String,
        to writer: consuming ResponseWriter,
        extraHeaders: HTTPFields = [:],
        close: Bool = false
    ) async throws {
        let answer = ErrorAnswer(status: status, message: message, retryAfter: extraHeaders[.retryAfter], close: close)
        try await Self.writeError(answer, to: writer)
    }

    private func record(_ request: Request, target: Target, outcome: Outcome, started: ContinuousClock.Instant) {
        Self.record(
            metrics: self.metrics,
            logger: self.logger,
            channelID: target.channelID,
            method: request.method.rawValue,
            path: request.uri.path,
            status: outcome.status,
            bytesIn: outcome.bytesIn,
            bytesOut: outcome.bytesOut,
            elapsed: ContinuousClock.now - started
        )
    }

    /// Counts and logs one answered webhook, for both paths. The line is at `debug`: a line per webhook
    /// through the standard log handler (a formatted timestamp and a write to standard error each) cost
    /// a third of the server's throughput on small webhooks, and the counts are in `/metrics`
    /// (docs/operations.md, "Logs").
    static func record(
        metrics: RelayMetrics,
        logger: Logger,
        channelID: String,
        method: String,
        path: @autoclosure () -> String,
        status: Int,
        bytesIn: Int,
        bytesOut: Int,
        elapsed: Duration
    ) {
        metrics.webhookAnswered(status: status)
        metrics.latency.record(elapsed)
        metrics.bytesIn.increment(by: Int64(bytesIn))
        metrics.bytesOut.increment(by: Int64(bytesOut))
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        guard logger.logLevel <= .debug else { return }
        logger.debug(
            "webhook",
            metadata: [
                "channel": "\(channelID)",
                "method": "\(method)",
                "path": "\(path())",
                "status": "\(status)",
                "duration_ms": "\(Int(milliseconds.rounded()))",
                "bytes_in": "\(bytesIn)",
                "bytes_out": "\(bytesOut)",
            ]
        )
    }
}
