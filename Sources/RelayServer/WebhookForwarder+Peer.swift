import AsyncHTTPClient
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import TunnelProtocol

/// Cluster mode: webhooks for channels whose client is connected to another replica.
extension WebhookForwarder {
    enum Route {
        /// Deliver on this replica (possibly after holding, possibly to find nothing).
        case here(ChannelRegistry.Lookup)
        /// The channel's client is connected to the replica at this URL, reached with this client.
        /// The client travels with the route, so forwarding can never find it missing and leave the
        /// sender without an answer.
        case peer(String, via: HTTPClient)
    }

    /// How fresh the peers' channel lists must be for routing a webhook.
    static let routingMaxAge: Duration = .milliseconds(250)

    /// Finds where a webhook goes: here, a peer, or (after the reconnect hold) nowhere.
    func route(_ id: String, fromPeer: Bool) async -> Route {
        guard let (directory, client) = self.cluster, !fromPeer else {
            return .here(await self.registry.session(for: id))
        }
        if let session = await self.registry.currentSession(id) { return .here(.connected(session)) }
        let peers = await directory.locate(id, maxAge: Self.routingMaxAge)
        if let url = peers.connectedAt { return .peer(url, via: client) }
        let knownHere = await self.registry.mayKnow(id)
        guard peers.known || knownHere else { return .here(.unknown) }
        return await self.hold(id, directory: directory, client: client)
    }

    /// Holds the webhook while the channel's client reconnects, here or at any peer.
    private func hold(_ id: String, directory: ClusterDirectory, client: HTTPClient) async -> Route {
        let registry = self.registry
        let deadline = ContinuousClock.now + self.configuration.reconnectHold
        return await withTaskGroup(of: Route?.self) { group in
            group.addTask {
                switch await registry.session(for: id, holdUnknown: true) {
                case .connected(let session): return .here(.connected(session))
                case .unknown, .unavailable: return nil
                }
            }
            group.addTask {
                while ContinuousClock.now < deadline {
                    do {
                        try await Task.sleep(for: .milliseconds(500))
                    } catch {
                        return nil
                    }
                    if let url = await directory.locate(id, maxAge: Self.routingMaxAge).connectedAt { return .peer(url, via: client) }
                }
                return nil
            }
            defer { group.cancelAll() }
            for await route in group {
                if let route { return route }
            }
            return .here(.unavailable)
        }
    }

    /// Proxies the webhook to the replica holding its channel, streaming both bodies.
    func forwardToPeer(
        _ request: Request,
        peerURL: String,
        client: HTTPClient,
        writer: consuming ResponseWriter,
        channel: any Channel,
        outcome: inout Outcome
    ) async throws {
        var outgoing = HTTPClientRequest(url: peerURL + request.uri.description)
        outgoing.method = HTTPMethod(rawValue: request.method.rawValue)
        // The client sets the framing headers from the body it streams; `Expect` is between the
        // sender and us.
        for field in self.requestHeaders(request, channel: channel, fromPeer: false)
        where field.name != .contentLength && field.name != .transferEncoding && field.name != .expect {
            outgoing.headers.add(name: field.name.rawName, value: field.value)
        }
        outgoing.headers.replaceOrAdd(name: PeerHop.header.rawName, value: PeerHop.value(internalToken: self.configuration.internalToken))
        if Self.hasBody(request) {
            let length = request.headers[.contentLength].flatMap(Int64.init)
            outgoing.body = .stream(request.body, length: length.map { .known($0) } ?? .unknown)
            outcome.bytesIn = length.map(Int.init) ?? 0
        }
        let response: HTTPClientResponse
        do {
            // The replica holding the channel enforces the request timeout; this only bounds a peer that hangs.
            response = try await client.execute(outgoing, timeout: TimeAmount(self.configuration.requestTimeout + Duration.seconds(3600)))
        } catch {
            self.logger.warning("forwarding to a peer failed", metadata: ["peer": "\(peerURL)", "error": "\(error)"])
            outcome.status = 503
            try await Self.writeError(
                .serviceUnavailable,
                "the replica holding the channel did not answer",
                to: writer,
                extraHeaders: [.retryAfter: "5"]
            )
            return
        }
        outcome.status = Int(response.status.code)
        var fields = HTTPFields()
        for header in response.headers {
            if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
        }
        var body = try await writer.writeHead(HTTPResponse(status: .init(code: outcome.status), headerFields: fields.endToEnd))
        for try await chunk in response.body {
            outcome.bytesOut += chunk.readableBytes
            try await body.write(chunk)
        }
        try await body.finish(nil)
    }
}
