import AsyncHTTPClient
import Foundation
import GitHubAuth
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TunnelProtocol
import UnixSignals
import WSCore

/// The public relay: issues channels, holds client WebSockets and tunnels
/// webhooks through them.
public struct RelayServer: Sendable {
    let configuration: RelayServerConfiguration
    let logger: Logger
    let registry: ChannelRegistry
    let tokens: TokenAuthority
    let metrics = RelayMetrics()

    public init(configuration: RelayServerConfiguration, logger: Logger) async {
        self.configuration = configuration
        self.logger = logger
        self.registry = ChannelRegistry(
            ttl: configuration.cleanupDuration,
            hold: configuration.reconnectHold,
            // Without a key no token from before this start can be valid, so
            // there is nothing to wait for.
            startupGrace: configuration.jwtSigningKey == nil ? .zero : configuration.startupGrace,
            maxChannels: configuration.maxChannels
        )
        self.tokens = await TokenAuthority(signingKey: configuration.jwtSigningKey)
    }

    /// Runs until SIGTERM or SIGINT. `onListening` gets the bound port (useful
    /// with port 0) once the server accepts connections.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        // First, so a store that cannot be opened stops the start before anything else runs.
        let offline: OfflineDelivery?
        if let settings = self.configuration.offlineQueue {
            offline = try await self.makeOfflineDelivery(settings)
        } else {
            offline = nil
        }
        var gate = ChannelGate(
            registry: self.registry,
            tokens: self.tokens,
            multiplexing: .init(maxOpenStreams: self.configuration.maxInFlightPerChannel),
            requireToken: self.configuration.auth != nil,
            logger: self.logger
        )
        // Only auth mode talks to GitHub; without it no client is made, and its code is never touched
        // (part of the server's memory just after start, docs/performance.md).
        var githubClient: HTTPClient?
        var oauth: OAuthFlow?
        if let auth = self.configuration.auth {
            let client = Self.makeGitHubHTTPClient()
            githubClient = client
            oauth = OAuthFlow(configuration: auth, tokens: self.tokens, httpClient: client)
        }
        if let key = self.configuration.jwtSigningKey, key.utf8.count < TokenAuthority.minimumKeyBytes {
            self.logger.warning(
                "--jwt-signing-key is \(key.utf8.count) bytes, shorter than the \(TokenAuthority.minimumKeyBytes) HS256 asks for: a short secret is easier to guess; use e.g. `openssl rand -hex 32`"
            )
        }
        if self.configuration.auth != nil && (self.configuration.internalToken ?? "").isEmpty {
            self.logger.warning(
                "auth mode without --internal-token: /internal/channels and /traefik-config are open to anyone who can reach this server"
            )
        }
        let drain = ShutdownDrain(registry: self.registry, timeout: self.configuration.shutdownTimeout, logger: self.logger)
        var forwarder = WebhookForwarder(
            registry: self.registry,
            configuration: self.configuration,
            metrics: self.metrics,
            logger: self.logger,
            drain: drain
        )
        let boundPort = BoundPort()
        let (boundPorts, boundPortsContinuation) = AsyncStream.makeStream(of: Int.self)
        var cluster: (service: ClusterService, directory: ClusterDirectory, client: HTTPClient)?
        if let clusterConfiguration = self.configuration.cluster {
            let client = Self.makePeerHTTPClient()
            let directory = ClusterDirectory(
                httpClient: client,
                internalToken: self.configuration.internalToken,
                timeout: clusterConfiguration.peerTimeout,
                logger: self.logger
            )
            let service = ClusterService(
                configuration: clusterConfiguration,
                directory: directory,
                bindHost: self.configuration.host,
                advertiseHost: self.advertisedHost(),
                boundPorts: boundPorts,
                serverURL: { [self] port in self.serverURL(port: port) },
                logger: self.logger
            )
            cluster = (service, directory, client)
            gate.directory = directory
            forwarder.cluster = (directory, client)
        }
        gate.offline = offline
        forwarder.offline = offline
        let router = self.makeRouter(gate: gate, oauth: oauth, boundPort: boundPort, directory: cluster?.directory, drain: drain)
        let (finalGate, finalForwarder) = (gate, forwarder)
        let webhookRoute = WebhookRoute(
            registry: self.registry,
            configuration: self.configuration,
            metrics: self.metrics,
            drain: drain,
            logger: self.logger
        )
        let server = HTTPServerBuilder { responder in
            RelayChannel(
                responder: { request, writer, channel in
                    if let target = WebhookForwarder.parseTarget(path: request.uri.path, query: request.uri.query) {
                        try await finalForwarder.respond(to: request, target: target, writer: writer, channel: channel)
                    } else {
                        try await responder(request, writer, channel)
                    }
                },
                maxFrameSize: ChannelGate.maxMessageSize,
                autoPing: .enabled(timePeriod: .seconds(15)),
                webhookRoute: webhookRoute,
                decide: { request, _, _ in await finalGate.decide(request) }
            )
        }
        var app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(self.configuration.host, port: self.configuration.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                boundPort.set(port)
                boundPortsContinuation.yield(port)
                boundPortsContinuation.finish()
                await onListening(port)
            },
            logger: self.logger
        )
        app.addServices(ChannelSweeper(registry: self.registry, period: self.configuration.cleanupDuration, logger: self.logger, offline: offline))
        if let offline { app.addServices(offline) }
        if let cluster { app.addServices(cluster.service) }
        do {
            // The drain runs after the application in one group, so on SIGTERM it is shut down first
            // and the application (HTTP server, WebSockets, then the cluster membership) only after it.
            let group = ServiceGroup(
                configuration: .init(services: [app, drain], gracefulShutdownSignals: [.sigterm, .sigint], logger: self.logger)
            )
            try await group.run()
        } catch {
            try? await githubClient?.shutdown()
            try? await cluster?.client.shutdown()
            await offline?.close()
            throw error
        }
        try? await githubClient?.shutdown()
        try? await cluster?.client.shutdown()
        await offline?.close()
    }

    /// The client for calls to peer replicas: a dead peer should fail fast, and a peer's redirects
    /// and encodings belong to the webhook's sender, so they are passed through untouched.
    static func makePeerHTTPClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(2), read: nil),
            decompression: .disabled
        )
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The client for GitHub's API: a GitHub that cannot be reached should
    /// be a 502 at once, not after the pool retried for its connect timeout.
    static func makeGitHubHTTPClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: .seconds(10)))
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// `http://IP:PORT` of this replica, as peers and Traefik reach it.
    func serverURL(port: Int) -> String {
        let address = self.advertisedHost()
        let host = address.contains(":") ? "[\(address)]" : address
        return "http://\(host):\(port)"
    }

    /// `--advertise-addr`, else `POD_IP`, else the detected address.
    func advertisedHost() -> String {
        self.configuration.advertiseAddress
            ?? ProcessInfo.processInfo.environment["POD_IP"].flatMap { $0.isEmpty ? nil : $0 }
            ?? Self.detectAddress(bindHost: self.configuration.host)
    }

    /// The bind address when it is a real one, else the first non-loopback
    /// IPv4 address of the machine (loopback when there is none).
    static func detectAddress(bindHost: String) -> String {
        if bindHost != "0.0.0.0" && bindHost != "::" { return bindHost }
        let devices = (try? System.enumerateDevices()) ?? []
        for device in devices {
            if let address = device.address, case .v4 = address, let ip = address.ipAddress, !ip.hasPrefix("127.") {
                return ip
            }
        }
        return "127.0.0.1"
    }
}

/// The port the server bound, known once it runs.
final class BoundPort: Sendable {
    private let value = Mutex(0)
    func set(_ port: Int) { self.value.withLock { $0 = port } }
    func get() -> Int { self.value.withLock { $0 } }
}
