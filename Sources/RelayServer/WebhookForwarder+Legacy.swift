import HTTPTypes
import HummingbirdCore
import NIOCore
import TunnelProtocol

extension WebhookForwarder {
    /// Delivers a webhook to a legacy client: the framing carries whole
    /// messages, so the body is collected (bounded by `--max-body-size`).
    func forwardLegacy(
        _ request: Request,
        target: Target,
        over session: LegacySession,
        writer: consuming ResponseWriter,
        channel: any Channel,
        outcome: inout Outcome,
        fromPeer: Bool
    ) async throws {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: self.configuration.maxBodySize)
        } catch {
            outcome.status = 413
            try await Self.writeError(.contentTooLarge, "the body is larger than the server's limit", to: writer, close: true)
            return
        }
        outcome.bytesIn = body.readableBytes
        var path = request.uri.path
        if let query = request.uri.query { path += "?\(query)" }
        var headers = self.requestHeaders(request, channel: channel, fromPeer: fromPeer)
        if let host = request.head.authority { headers.insert(HTTPField(name: HTTPField.Name("Host")!, value: host), at: 0) }
        let wire = HTTP1Message.serializeRequest(method: request.method.rawValue, target: path, headerFields: headers, body: body)

        let timeout = self.configuration.requestTimeout
        let reply: ByteBuffer?
        do {
            reply = try await session.exchange(wire, timeout: timeout)
        } catch is LegacySession.TooMany {
            outcome.status = 429
            try await Self.writeError(.tooManyRequests, "too many webhooks in flight on this channel", to: writer, extraHeaders: [.retryAfter: "1"])
            return
        } catch {
            outcome.status = 503
            try await Self.writeError(.serviceUnavailable, "the channel's client went away", to: writer, extraHeaders: [.retryAfter: "5"])
            return
        }
        guard let reply else {
            outcome.status = 504
            try await Self.writeError(.gatewayTimeout, "the local app did not answer in time", to: writer)
            return
        }
        let response: HTTP1Message.Parsed
        do {
            response = try HTTP1Message.parse(reply)
        } catch {
            outcome.status = 502
            try await Self.writeError(.badGateway, "the client sent a malformed response", to: writer)
            return
        }
        outcome.status = response.status
        outcome.bytesOut = response.body.readableBytes
        var responseHeaders = response.headerFields.endToEnd
        responseHeaders[.contentLength] = "\(response.body.readableBytes)"
        var bodyWriter = try await writer.writeHead(HTTPResponse(status: .init(code: response.status), headerFields: responseHeaders))
        try await bodyWriter.write(response.body)
        try await bodyWriter.finish(nil)
    }
}
