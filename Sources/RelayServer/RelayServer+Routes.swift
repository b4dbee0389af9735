import Foundation
import GitHubAuth
import HTTPTypes
import Hummingbird
import Membership
import NIOCore
import OfflineQueue
import Prometheus

extension RelayServer {
    struct NewChannel: ResponseEncodable {
        var channel_id: String
        var token: String
    }

    struct InternalChannels: ResponseEncodable {
        var ws_channels: [String]
        var webhook_channels: [String]
        var server_url: String
    }

    struct ClusterMember: ResponseEncodable {
        var name: String
        var address: String
        var url: String
        var status: String
    }

    struct Health: ResponseEncodable {
        var status: String
    }

    func makeRouter(
        gate: ChannelGate,
        oauth: OAuthFlow?,
        boundPort: BoundPort,
        directory: ClusterDirectory?,
        drain: ShutdownDrain
    ) -> Router<BasicRequestContext> {
        let router = Router()
        let registry = self.registry
        let tokens = self.tokens
        let internalToken = self.configuration.internalToken

        router.get("/healthz") { _, _ -> Response in
            // Draining: tell load balancers and Kubernetes to send nothing new here.
            var response = try Self.json(Health(status: drain.isDraining ? "draining" : "OK"))
            if drain.isDraining { response.status = .serviceUnavailable }
            return response
        }

        let metrics = self.metrics
        router.get("/metrics") { _, _ -> Response in
            let connected = await registry.snapshot().connected.count
            metrics.channelsConnected.set(Double(connected))
            if let directory { metrics.clusterMembers.set(Double(await directory.members().count)) }
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render()))
            )
        }

        let channelTokenLifetime = self.configuration.channelTokenLifetime
        let maxChannels = self.configuration.maxChannels
        router.get("/new") { request, _ -> Response in
            if oauth != nil {
                guard let session = ChannelGate.bearerToken(request.headers), !session.isEmpty else {
                    return Self.loginRequired("this server needs a session token: log in at /auth/login")
                }
                do {
                    try await tokens.verify(session, as: .session)
                } catch {
                    return Self.loginRequired("the session token is invalid or expired: log in again at /auth/login")
                }
            }
            let mode: OfflineMode?
            do throws(OfflineDelivery.ModeError) {
                mode = try OfflineDelivery.parseMode(request.headers)
            } catch {
                return Self.errorResponse(.badRequest, error.message)
            }
            let id = UUID().uuidString.lowercased()
            guard await registry.issue(id) else {
                var response = Self.errorResponse(.serviceUnavailable, "this server holds its maximum of \(maxChannels) channels")
                response.headers[.retryAfter] = "60"
                return response
            }
            metrics.channelsIssued.increment()
            // Kept with the channel (and, with PostgreSQL, seen by every replica): docs/offline-queue.md.
            await gate.offline?.record(mode ?? .queue, for: id)
            let token = try await tokens.issue(.channel, subject: id, lifetime: channelTokenLifetime)
            return try Self.json(NewChannel(channel_id: id, token: token))
        }
        if let oauth {
            self.addAuthRoutes(to: router, oauth: oauth)
        }

        // A plain GET of the WebSocket endpoint answers what the upgrade
        // would: the refusal, or 426 when it would be accepted.
        router.get("/ws/{id}") { request, context -> Response in
            let id = try context.parameters.require("id")
            guard ChannelID.isCanonical(id) else { return Self.errorResponse(.notFound, ChannelGate.notAChannelID) }
            if let refusal = await gate.check(id, token: ChannelGate.bearerToken(request.headers)) {
                return Self.errorResponse(refusal.status, refusal.message)
            }
            var response = Self.errorResponse(.upgradeRequired, "this endpoint needs a WebSocket upgrade")
            response.headers[.upgrade] = "websocket"
            return response
        }

        router.get("/internal/channels") { request, _ -> Response in
            if let denied = Self.checkInternalToken(request, expected: internalToken) { return denied }
            let snapshot = await registry.snapshot()
            let body = InternalChannels(
                ws_channels: snapshot.all,
                webhook_channels: snapshot.connected,
                server_url: self.serverURL(port: boundPort.get())
            )
            return try Self.json(body)
        }

        router.get("/internal/members") { request, _ -> Response in
            if let denied = Self.checkInternalToken(request, expected: internalToken) { return denied }
            let members = await directory?.members() ?? []
            return try Self.json(
                members.map {
                    ClusterMember(name: $0.name, address: "\($0.address)", url: $0.metaString, status: $0.status == .alive ? "alive" : "suspect")
                }
            )
        }

        router.get("/traefik-config") { request, _ -> Response in
            if let denied = Self.checkInternalToken(request, expected: internalToken) { return denied }
            let snapshot = await registry.snapshot()
            var replicas = [
                TraefikConfig.Replica(serverURL: self.serverURL(port: boundPort.get()), channels: snapshot.all, connected: snapshot.connected)
            ]
            // Every live peer that answers in time; a dead or slow one is left out, never waited for.
            for peer in await directory?.replicas(maxAge: .zero) ?? [] {
                replicas.append(.init(serverURL: peer.url, channels: peer.known.sorted(), connected: peer.connected.sorted()))
            }
            let config = TraefikConfig.build(replicas: replicas)
            return try Self.rawJSON(config)
        }
        return router
    }

    static func loginRequired(_ message: String) -> Response {
        var response = Self.errorResponse(.unauthorized, message)
        response.headers[.wwwAuthenticate] = "Bearer"
        return response
    }

    static func checkInternalToken(_ request: Request, expected: String?) -> Response? {
        guard let expected, !expected.isEmpty else { return nil }
        guard ChannelGate.bearerToken(request.headers) == expected else {
            return Self.errorResponse(.unauthorized, "this endpoint needs the internal token")
        }
        return nil
    }

    static func errorResponse(_ status: HTTPResponse.Status, _ message: String) -> Response {
        let body = ErrorBody.json(message)
        return Response(
            status: status,
            headers: [.contentType: "application/json", .contentLength: "\(body.readableBytes)"],
            body: .init(byteBuffer: body)
        )
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Self.bytes(try encoder.encode(value))
    }

    static func rawJSON(_ object: Any) throws -> Response {
        Self.bytes(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    private static func bytes(_ data: Data) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json", .contentLength: "\(data.count)"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
