import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
import OfflineQueue
import TunnelProtocol
import TunnelTransport

/// How one delivery of a queued webhook went.
enum DeliveryResult: Sendable, Equatable {
    /// The local app answered with this status (below 500): the webhook is done.
    case answered(Int)
    /// A 5xx from the app, or the tunnel's 502/504 for it: retried with backoff.
    case failed(Int, String)
    /// The client's connection ended first.
    case clientGone(String)
}

extension OfflineDelivery {
    /// The request head a queued webhook is delivered with: the stored head
    /// plus the delivery id, when it was queued and the attempt number.
    static func deliveryHead(_ webhook: QueuedWebhook) -> RequestHead {
        var head = webhook.head
        head.headerFields[OfflineQueueHeaders.deliveryID] = webhook.id
        head.headerFields[OfflineQueueHeaders.queuedAt] = Self.rfc3339(webhook.queuedAt)
        head.headerFields[OfflineQueueHeaders.deliveryAttempt] = "\(webhook.attempts + 1)"
        return head
    }

    /// `2026-12-01T21:51:34.250Z`: RFC 3339 in UTC, with milliseconds.
    static func rfc3339(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// Delivers one webhook through the client, exactly as a live one goes
    /// (the same stream multiplexer or legacy session), streaming its body
    /// from the store.
    func deliver(_ webhook: QueuedWebhook, over session: ClientSession) async -> DeliveryResult {
        switch session {
        case .multiplexed(let tunnel):
            return await self.deliver(webhook, over: tunnel)
        case .legacy(let session):
            return await self.deliver(webhook, over: session)
        }
    }

    private func deliver(_ webhook: QueuedWebhook, over tunnel: TunnelConnection) async -> DeliveryResult {
        let stream: TunnelStream
        do {
            stream = try await tunnel.openStream()
        } catch {
            return .clientGone(error.message)
        }
        defer { stream.release() }
        let hasBody = webhook.bodyLength > 0
        do {
            try await stream.sendRequestHead(Self.deliveryHead(webhook), endStream: !hasBody)
        } catch {
            return .clientGone("the client's connection broke")
        }
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(self.requestTimeout)) {
            stream.inject(StreamResetReason(.timeout, "the local app did not answer in time"))
        }
        defer { timer.cancel() }
        let body = self.store.body(of: webhook.id)
        async let uploaded: Void = hasBody ? Self.upload(body, to: stream) : ()

        let result: DeliveryResult
        var events = stream.events.makeAsyncIterator()
        switch await events.next() {
        case .responseHead(let response, let endStream):
            timer.cancel()
            // The answer's body is nobody's to read: it is taken and acknowledged,
            // so the client's writer never waits for credit.
            if !endStream {
                loop: while true {
                    switch await events.next() {
                    case .data(let buffer): try? await stream.acknowledge(buffer.readableBytes)
                    case .end, .reset, .responseHead, nil: break loop
                    }
                }
            }
            result = response.status < 500 ? .answered(response.status) : .failed(response.status, "the local app answered \(response.status)")
        case .reset(let reason):
            switch reason.code {
            case .connectionLost: result = .clientGone(reason.message)
            case .timeout: result = .failed(504, reason.message)
            default: result = .failed(502, reason.message)
            }
            await stream.reset(reason)
        case .data, .end, nil:
            await stream.reset(StreamResetReason(.protocolError, "body before head"))
            result = .failed(502, "the client answered out of order")
        }
        // An upload still running (answered before the whole body was read) ends with the stream.
        stream.release()
        await uploaded
        return result
    }

    /// Streams a stored body to the client. Failures wake the waiting reader.
    private static func upload(_ body: AsyncThrowingStream<ByteBuffer, any Error>, to stream: TunnelStream) async {
        var writer = stream.makeBodyWriter()
        do {
            try await writer.writeAll(body)
        } catch is CancellationError {
            // The exchange is over.
        } catch let reason as StreamResetReason {
            stream.inject(reason)
        } catch {
            let reason = StreamResetReason(.cancelled, "the queued body could not be read: \(error)")
            stream.inject(reason)
            await stream.reset(reason)
        }
    }

    /// The original JSON framing carries whole messages, so the stored body
    /// is collected (it is at most `--max-body-size`, as for a live webhook).
    private func deliver(_ webhook: QueuedWebhook, over session: LegacySession) async -> DeliveryResult {
        var body = ByteBuffer()
        do {
            for try await chunk in self.store.body(of: webhook.id) {
                var chunk = chunk
                body.writeBuffer(&chunk)
                guard body.readableBytes <= self.maxBodySize else { return .failed(413, "the queued body is larger than the server's limit") }
            }
        } catch {
            return .failed(502, "the queued body could not be read: \(error)")
        }
        let head = Self.deliveryHead(webhook)
        var fields = head.headerFields
        if let host = fields[.xForwardedHost] { fields.insert(HTTPField(name: HTTPField.Name("Host")!, value: host), at: 0) }
        // The original client forwards the whole path, `/webhook/<id>` included.
        let wire = HTTP1Message.serializeRequest(
            method: head.method,
            target: "/webhook/\(webhook.channelID)\(head.target)",
            headerFields: fields,
            body: body
        )
        let timeout = self.requestTimeout
        let reply: ByteBuffer?
        do {
            reply = try await session.exchange(wire, timeout: timeout)
        } catch {
            return .clientGone("the client's connection broke")
        }
        guard let reply else { return .failed(504, "the local app did not answer in time") }
        guard let response = try? HTTP1Message.parse(reply) else { return .failed(502, "the client sent a malformed response") }
        return response.status < 500 ? .answered(response.status) : .failed(response.status, "the local app answered \(response.status)")
    }
}

extension HTTPField.Name {
    fileprivate static let xForwardedHost = HTTPField.Name("X-Forwarded-Host")!
}
