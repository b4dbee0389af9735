import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Inspector
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import ServiceLifecycle
import Synchronization
import TunnelProtocol

/// The laptop side: holds a WebSocket to the server, replays each webhook
/// against the local app, and reconnects to the same channel after any
/// disconnect.
public struct RelayClient: Service {
    let configuration: RelayClientConfiguration
    let logger: Logger
    let console: Console
    let stats = SessionStats()
    /// The local inspector, when on: it observes every exchange and replays
    /// through this client's forwarder (docs/inspector.md).
    let inspector: Inspector?

    public init(
        configuration: RelayClientConfiguration,
        logger: Logger,
        output: @escaping @Sendable (String) -> Void,
        inspector: Inspector? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.console = Console(write: output)
        self.inspector = inspector
    }

    /// Prints `Inspect webhooks at …` once, after the start-up lines.
    private func announceInspector() async {
        if let line = await self.inspector?.startupLine() { self.console.line(line) }
    }

    public func run() async throws {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        if self.configuration.insecure { tlsConfiguration.certificateVerification = .none }
        let tls = tlsConfiguration
        var httpConfiguration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10)),
            decompression: .disabled
        )
        httpConfiguration.httpVersion = .http1Only
        httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        // A local app that is down should be a 502 now, not after the pool
        // has retried for the whole connect timeout.
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        let forwarder = LocalForwarder(
            httpClient: httpClient,
            targetURL: self.configuration.targetURL,
            timeout: self.configuration.transferRequestTimeout,
            logger: self.logger,
            observer: self.inspector?.observer
        )
        let console = self.console
        let stats = self.stats
        self.inspector?.setReplayHandler { replay in
            let started = ContinuousClock.now
            let (id, summary) = try await forwarder.replay(replay)
            console.webhook(summary, elapsed: ContinuousClock.now - started, replayOf: replay.replayOf)
            stats.webhook(status: summary.status, bytes: summary.bytes)
            return id
        }
        do {
            try await cancelWhenGracefulShutdown {
                try await self.runSessions(forwarder: forwarder, tls: tls)
            }
        } catch is CancellationError {
            // Ctrl-C or SIGTERM: a clean end.
        } catch {
            try? await httpClient.shutdown()
            self.logger.info("client stopped", metadata: ["summary": "\(self.stats.summary)"])
            throw error
        }
        try? await httpClient.shutdown()
        self.logger.info("client stopped", metadata: ["summary": "\(self.stats.summary)"])
    }

    private func runSessions(forwarder: LocalForwarder, tls: TLSConfiguration) async throws {
        var api = ServerAPI(httpClient: forwarder.httpClient, serverURL: self.configuration.serverURL, sessionToken: self.configuration.sessionToken)
        api.whenOffline = self.configuration.whenOffline
        let store = ChannelStore(directory: self.configuration.stateDirectory, serverURL: self.configuration.serverURL)
        var channel = self.configuration.newChannel ? nil : store.load()
        if channel == nil {
            channel = try await self.issueChannel(api: api, store: store)
        }
        guard var channel else { return }
        self.console.announce(channel: channel.channelID, serverURL: self.configuration.serverURL)

        let everConnected = Mutex(false)
        var attempt = 0
        while !Task.isCancelled {
            let connected = Mutex(false)
            var reason: String
            do {
                let close = try await self.connect(channel: channel, tls: tls, forwarder: forwarder) {
                    connected.withLock { $0 = true }
                    let wasConnected = everConnected.withLock { state in
                        defer { state = true }
                        return state
                    }
                    if wasConnected { self.stats.reconnected() }
                    self.console.line(wasConnected ? "Reconnected." : "A tunnel to the server has been established.")
                }
                reason = close.map { "closed by the server (\($0.closeCode)\($0.reason.map { ": \($0)" } ?? ""))" } ?? "connection closed"
            } catch is CancellationError {
                return
            } catch {
                reason = "\(error)"
            }
            try Task.checkCancellation()
            if connected.withLock({ $0 }) {
                attempt = 0
            } else {
                // The upgrade failed: ask the server why (the WebSocket client cannot tell).
                switch await api.checkChannel(channel) {
                case .refused(let status, let message):
                    self.console.line("The server refused channel \(channel.channelID) (\(status): \(message)); requesting a new channel.")
                    if let fresh = try await self.issueChannel(api: api, store: store) {
                        channel = fresh
                        self.console.announce(channel: channel.channelID, serverURL: self.configuration.serverURL)
                        continue
                    }
                    return
                case .inUse:
                    reason = "the channel is in use by another client (409)"
                case .unreachable(let why):
                    reason = "server unreachable (\(why))"
                case .acceptable:
                    break
                }
            }
            attempt += 1
            let delay = self.configuration.backoff.delay(attempt: attempt)
            let verb = everConnected.withLock { $0 } ? "Connection lost" : "Cannot connect to \(self.configuration.serverURL)"
            self.console.line("\(verb): \(reason); reconnecting in \(Console.format(delay))")
            // History and replay work while the server is away.
            await self.announceInspector()
            try await Task.sleep(for: delay)
        }
    }

    /// Gets a new channel from `/new`, retrying with backoff while the server
    /// cannot be reached, and saves it.
    private func issueChannel(api: ServerAPI, store: ChannelStore) async throws -> SavedChannel? {
        var attempt = 0
        while true {
            do {
                let channel = try await api.newChannel()
                do {
                    try store.save(channel)
                } catch {
                    self.logger.warning("could not save the channel; a restart will get a new URL", metadata: ["error": "\(error)"])
                }
                return channel
            } catch let error as LoginRequired {
                // Auth problems do not fix themselves by retrying.
                throw error
            } catch {
                attempt += 1
                let delay = self.configuration.backoff.delay(attempt: attempt)
                self.console.line("Cannot reach \(self.configuration.serverURL): \(error); retrying in \(Console.format(delay))")
                try await Task.sleep(for: delay)
            }
        }
    }

    /// One WebSocket session; returns when it closes.
    private func connect(
        channel: SavedChannel,
        tls: TLSConfiguration,
        forwarder: LocalForwarder,
        onConnected: @escaping @Sendable () -> Void
    ) async throws -> WebSocketCloseFrame? {
        var headers: HTTPFields = [.secWebSocketProtocol: "webhook-over-websocket.v2"]
        if let token = channel.token { headers[.authorization] = "Bearer \(token)" }
        headers[OfflineQueueHeaders.whenOffline] = self.configuration.whenOffline.rawValue
        let configuration = WebSocketClientConfiguration(
            maxFrameSize: 1 << 20,
            additionalHeaders: headers,
            closeTimeout: .seconds(5),
            autoPing: .enabled(timePeriod: .seconds(15))
        )
        let url = ServerAPI.webSocketURL(serverURL: self.configuration.serverURL, channelID: channel.channelID)
        let console = self.console
        let stats = self.stats
        let logger = self.logger
        return try await WebSocketClient.connect(
            url: url,
            configuration: configuration,
            tlsConfiguration: tls,
            logger: self.logger
        ) { inbound, outbound, _ in
            onConnected()
            await self.announceInspector()
            let multiplexer = StreamMultiplexer(role: .acceptor) { buffer in
                try await outbound.write(.binary(buffer))
            }
            await withDiscardingTaskGroup { group in
                do {
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        guard case .binary(let buffer) = message else { continue }
                        guard let incoming = try multiplexer.receive(buffer) else { continue }
                        group.addTask {
                            let started = ContinuousClock.now
                            let summary = await forwarder.handle(incoming)
                            let queuedID = incoming.head.headerFields[OfflineQueueHeaders.deliveryID]
                            console.webhook(summary, elapsed: ContinuousClock.now - started, queued: queuedID)
                            stats.webhook(status: summary.status, bytes: summary.bytes)
                        }
                    }
                } catch let error as TunnelProtocolError {
                    logger.warning("the server broke the protocol; reconnecting", metadata: ["error": "\(error)"])
                    try? await outbound.close(.protocolError, reason: "protocol error")
                } catch {
                    // The connection ended (or Ctrl-C): the reconnect loop reports it.
                    logger.debug("connection ended", metadata: ["error": "\(error)"])
                }
                multiplexer.shutdown(StreamResetReason(.connectionLost, "the connection to the server was lost"))
            }
        }
    }
}
