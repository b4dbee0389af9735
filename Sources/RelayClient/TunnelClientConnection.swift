import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import TunnelProtocol
import TunnelTransport

/// The client's WebSocket to the server, made with NIO directly: TCP (and TLS for `wss://`), the
/// HTTP/1.1 upgrade, then NIO's frame codec, ``NIOWebSocketFrameAggregator`` and the tunnel's
/// ``TunnelHandler``, which runs the whole connection on its event loop. Webhooks are then served
/// by ``LocalExchange``s on that loop; no task runs per connection or per webhook (issue #10).
struct TunnelClientConnection: Sendable {
    /// Where the WebSocket goes, read from a `ws://` or `wss://` URL.
    struct Endpoint: Sendable, Equatable {
        var host: String
        var port: Int
        /// Path and query of the upgrade request.
        var target: String
        var usesTLS: Bool

        init(host: String, port: Int, target: String, usesTLS: Bool) {
            self.host = host
            self.port = port
            self.target = target
            self.usesTLS = usesTLS
        }

        init(url: String) throws {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
                let host = components.host, !host.isEmpty
            else { throw InvalidServerURL(url: url) }
            switch scheme {
            case "ws", "http": self.usesTLS = false
            case "wss", "https": self.usesTLS = true
            default: throw InvalidServerURL(url: url)
            }
            // URLComponents keeps an IPv6 literal's brackets on some platforms only.
            self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            self.port = components.port ?? (self.usesTLS ? 443 : 80)
            let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
            self.target = path + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
        }

        /// The `Host` header: the port only when it is not the scheme's default.
        var hostHeader: String {
            let host = self.host.contains(":") ? "[\(self.host)]" : self.host
            return self.port == (self.usesTLS ? 443 : 80) ? host : "\(host):\(self.port)"
        }

        /// SNI carries host names only; an IP address is not sent (NIOSSL refuses it).
        var serverNameIndication: String? {
            (try? SocketAddress(ipAddress: self.host, port: 0)) == nil ? self.host : nil
        }
    }

    struct InvalidServerURL: Error, CustomStringConvertible {
        var url: String
        var description: String { "not a WebSocket URL: \(self.url)" }
    }

    /// The server answered the upgrade request with something other than 101.
    struct UpgradeRefused: Error, CustomStringConvertible {
        var description: String { "the server did not upgrade the connection to a WebSocket" }
    }

    /// The server accepted the connection but did not answer the upgrade in time.
    struct UpgradeTimedOut: Error, CustomStringConvertible {
        var description: String { "the server did not answer the WebSocket upgrade in time" }
    }

    let endpoint: Endpoint
    /// Sent with the upgrade request besides the WebSocket's own (`Sec-WebSocket-Protocol`, auth, …).
    let headers: HTTPHeaders
    /// For `wss://` only.
    let tlsConfiguration: TLSConfiguration
    /// Largest WebSocket message accepted from the server (the tunnel's frames are far smaller).
    var maxFrameSize = 1 << 20
    var connectTimeout = TimeAmount.seconds(10)
    var upgradeTimeout = TimeAmount.seconds(30)
    var tunnelSettings = TunnelHandler.Settings(pingInterval: .seconds(15), masksFrames: true)

    init(url: String, headers: HTTPHeaders, tlsConfiguration: TLSConfiguration) throws {
        self.endpoint = try Endpoint(url: url)
        self.headers = headers
        self.tlsConfiguration = tlsConfiguration
    }

    /// What the upgrade handler hands back: the running tunnel, or a refusal.
    private enum Upgrade: Sendable {
        case upgraded(TunnelClientSession)
        case refused
    }

    /// Connects and upgrades. `onConnected` runs on the connection's loop right after the 101,
    /// before any frame is read (so it comes before anything a webhook prints); `acceptor` makes the
    /// owner of each stream the server opens, on that loop.
    func open(
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onConnected: @escaping @Sendable () -> Void,
        acceptor: @escaping @Sendable (any EventLoop) -> TunnelHandler.Acceptor
    ) async throws -> TunnelClientSession {
        let sslContext = try self.endpoint.usesTLS ? NIOSSLContext(configuration: self.tlsConfiguration) : nil
        let (channel, upgrade) = try await ClientBootstrap(group: group)
            .connectTimeout(self.connectTimeout)
            .connect(host: self.endpoint.host, port: self.endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let tls = try NIOSSLClientHandler(context: sslContext, serverHostname: self.endpoint.serverNameIndication)
                        try channel.pipeline.syncOperations.addHandler(tls)
                    }
                    let upgrade = try self.configureUpgrade(channel: channel, onConnected: onConnected, acceptor: acceptor)
                    return (channel, upgrade)
                }
            }
        let timeout = channel.eventLoop.scheduleTask(in: self.upgradeTimeout) { channel.close(promise: nil) }
        let result: Upgrade
        do {
            // Ctrl-C while the server is slow to answer: hang up rather than wait for the timeout.
            result = try await withTaskCancellationHandler {
                try await upgrade.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch {
            timeout.cancel()
            channel.close(promise: nil)
            // The timer's future succeeds only when it ran, i.e. when it is what closed the channel.
            if (try? await timeout.futureResult.get()) != nil { throw UpgradeTimedOut() }
            throw error
        }
        timeout.cancel()
        switch result {
        case .upgraded(let session):
            return session
        case .refused:
            channel.close(promise: nil)
            throw UpgradeRefused()
        }
    }

    /// The HTTP/1.1 client pipeline with the WebSocket upgrader; on 101 the tunnel's handlers
    /// replace it.
    private func configureUpgrade(
        channel: any Channel,
        onConnected: @escaping @Sendable () -> Void,
        acceptor: @escaping @Sendable (any EventLoop) -> TunnelHandler.Acceptor
    ) throws -> EventLoopFuture<Upgrade> {
        let settings = self.tunnelSettings
        let maxFrameSize = self.maxFrameSize
        let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(maxFrameSize: maxFrameSize) { channel, _ in
            channel.eventLoop.makeCompletedFuture {
                onConnected()
                let ended = channel.eventLoop.makePromise(of: TunnelSessionEnd.self)
                let recorder = TunnelSessionEndRecorder(ended: ended)
                let tunnel = TunnelHandler(
                    role: .acceptor,
                    settings: settings,
                    acceptor: acceptor(channel.eventLoop),
                    onClose: { recorder.tunnelClosed($0) }
                )
                // The tunnel's messages are single frames well under the limit; the aggregator only
                // matters for a peer that fragments, and caps what it may pile up.
                let aggregator = NIOWebSocketFrameAggregator(
                    minNonFinalFragmentSize: 0,
                    maxAccumulatedFrameCount: 1 << 10,
                    maxAccumulatedFrameSize: maxFrameSize
                )
                try channel.pipeline.syncOperations.addHandlers([aggregator, recorder, tunnel])
                let connection = TunnelConnection(handler: tunnel, eventLoop: channel.eventLoop)
                return .upgraded(TunnelClientSession(channel: channel, connection: connection, ended: ended.futureResult))
            }
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: self.endpoint.hostHeader)
        headers.add(contentsOf: self.headers)
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: self.endpoint.target, headers: headers)
        let upgradeConfiguration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
            upgradeRequestHead: head,
            upgraders: [upgrader],
            notUpgradingCompletionHandler: { channel in channel.eventLoop.makeSucceededFuture(.refused) }
        )
        var configuration = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: upgradeConfiguration)
        // Frames the server sent right behind its 101 are in the same read: hand them to the codec.
        configuration.leftOverBytesStrategy = .forwardBytes
        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: configuration)
    }
}

/// A connected tunnel: ``run()`` waits for it to end, and closes it when the waiting task is
/// cancelled (Ctrl-C, graceful shutdown).
struct TunnelClientSession: Sendable {
    let channel: any Channel
    let connection: TunnelConnection
    let ended: EventLoopFuture<TunnelSessionEnd>

    /// Returns once the connection has closed. On cancellation it starts the close handshake (the
    /// handler hangs up after its close timeout if the server does not answer) and still waits, so
    /// the session is over when this returns.
    func run() async -> TunnelSessionEnd {
        await withTaskCancellationHandler {
            (try? await self.ended.get()) ?? .dropped
        } onCancel: {
            self.connection.close(code: .goingAway, reason: "client shutting down")
        }
    }
}
