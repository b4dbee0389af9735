import Foundation
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import OfflineQueue
import Prometheus
import TunnelProtocol

/// Webhooks for a channel whose client is away, in `queue` mode: held for
/// `--offline-hold`, then stored and answered 202 (docs/offline-queue.md).
extension WebhookForwarder {
    enum OfflineRoute {
        /// Deliver as before: live, at a peer, or the reject-mode answers (404, 503).
        case route(Route)
        /// The client stayed away for the offline hold: store the webhook.
        case queue
    }

    /// Routes the webhook, but in `queue` mode gives up waiting for the
    /// client after `--offline-hold` instead of the reconnect hold.
    func routeOrQueue(_ id: String, fromPeer: Bool) async -> OfflineRoute {
        guard let offline = self.offline else { return .route(await self.route(id, fromPeer: fromPeer)) }
        if let session = await self.registry.currentSession(id) { return .route(.here(.connected(session))) }
        let mode = await offline.mode(for: id)
        if mode == .reject { return .route(await self.route(id, fromPeer: fromPeer)) }
        let deadline = ContinuousClock.now + offline.settings.hold
        // Cancelled (the sender left): nil, so the ingest that follows finds the sender gone.
        let routed = (try? await result(before: deadline) { await self.route(id, fromPeer: fromPeer) }) ?? nil
        switch routed {
        case nil, .here(.unavailable):
            return .queue
        case .here(.unknown):
            // Unknown to this replica and its peers, but the store remembers the
            // channel (a restart, or a replica that died): hold, then queue.
            guard mode != nil else { return .route(.here(.unknown)) }
            let registry = self.registry
            let found = (try? await result(before: deadline) { await registry.session(for: id, holdUnknown: true) }) ?? nil
            if case .connected(let session) = found { return .route(.here(.connected(session))) }
            return .queue
        case let route?:
            return .route(route)
        }
    }

    /// Streams the webhook into the store and answers 202 once it is durable,
    /// or 503 / 413 when a limit refuses it. Nothing is stored for a sender
    /// that leaves mid-upload.
    func queue(
        _ request: Request,
        target: Target,
        writer: consuming ResponseWriter,
        channel: any Channel,
        outcome: inout Outcome,
        fromPeer: Bool
    ) async throws {
        guard let offline = self.offline else { return }
        let head = QueuedRequestHead(
            method: request.method.rawValue,
            target: target.suffix,
            headerFields: self.requestHeaders(request, channel: channel, fromPeer: fromPeer)
        )
        let declared = request.headers[.contentLength].flatMap(Int64.init)
        let ingest: any OfflineQueueIngest
        do {
            ingest = try await offline.store.beginIngest(channelID: target.channelID, head: head, declaredLength: declared)
        } catch {
            outcome.status = try await self.refuseQueueing(error, to: writer, close: true)
            return
        }
        var body = request.body.makeAsyncIterator()
        while true {
            let chunk: ByteBuffer?
            do {
                chunk = try await body.next()
            } catch {
                // The sender went away mid-upload: nothing is kept, nobody to answer.
                await ingest.abort()
                throw error
            }
            guard let chunk else { break }
            outcome.bytesIn += chunk.readableBytes
            guard outcome.bytesIn <= self.configuration.maxBodySize else {
                await ingest.abort()
                offline.metrics.rejected(.bodyTooLarge)
                outcome.status = 413
                try await Self.writeError(.contentTooLarge, "the body is larger than the server's limit", to: writer, close: true)
                return
            }
            do {
                try await ingest.append(chunk)
            } catch {
                await ingest.abort()
                outcome.status = try await self.refuseQueueing(error, to: writer, close: true)
                return
            }
        }
        let queued: QueuedWebhook
        do {
            queued = try await ingest.commit()
        } catch {
            await ingest.abort()
            outcome.status = try await self.refuseQueueing(error, to: writer, close: false)
            return
        }
        offline.metrics.stored.increment()
        // A sweep may have run while the body was stored; the channel must stay reserved now.
        await self.registry.reserve(queued.channelID)
        outcome.status = 202
        let answer = ByteBuffer(string: #"{"id":"\#(queued.id)","queued":true}"# + "\n")
        let headers: HTTPFields = [
            .contentType: "application/json",
            .contentLength: "\(answer.readableBytes)",
            OfflineQueueHeaders.deliveryID: queued.id,
        ]
        var bodyWriter = try await writer.writeHead(HTTPResponse(status: .accepted, headerFields: headers))
        try await bodyWriter.write(answer)
        try await bodyWriter.finish(nil)
    }

    /// Answers a webhook the queue did not take; returns the status sent.
    /// `close`: the sender's body may not have been read to its end.
    private func refuseQueueing(_ error: any Error, to writer: consuming ResponseWriter, close: Bool) async throws -> Int {
        let retryAfter: HTTPFields = [.retryAfter: "60"]
        guard let refusal = error as? OfflineQueueRefusal else {
            self.offline?.metrics.rejected(.storeError)
            self.logger.error("could not queue a webhook", metadata: ["error": "\(error)"])
            try await Self.writeError(
                .serviceUnavailable,
                "the channel's client is away and the webhook could not be queued",
                to: writer,
                extraHeaders: retryAfter,
                close: close
            )
            return 503
        }
        self.offline?.metrics.rejected(QueueMetrics.Reason(refusal))
        switch refusal {
        case .bodyTooLarge:
            try await Self.writeError(.contentTooLarge, "the body is larger than a channel may queue", to: writer, close: true)
            return 413
        case .channelCountLimit:
            try await Self.writeError(
                .serviceUnavailable,
                "the channel's client is away and its queue is full",
                to: writer,
                extraHeaders: retryAfter,
                close: close
            )
        case .channelBytesLimit:
            try await Self.writeError(
                .serviceUnavailable,
                "the channel's client is away and its queue holds its limit of bytes",
                to: writer,
                extraHeaders: retryAfter,
                close: close
            )
        case .serverBytesLimit:
            try await Self.writeError(
                .serviceUnavailable,
                "the channel's client is away and the server's queue is full",
                to: writer,
                extraHeaders: retryAfter,
                close: close
            )
        }
        return 503
    }
}
