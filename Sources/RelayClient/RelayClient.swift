import AsyncHTTPClient
import Foundation
import HTTPTypes
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
        // The singleton group is also the WebSocket's, so the pool can prefer the webhook's own loop.
        // The pool's own events (connections opened and closed) go to our log, at trace and debug.
        let httpClient = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: Self.httpConfiguration(tls: tls),
            backgroundActivityLogger: self.logger
        )
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

    /// The HTTP client for the local app (and the server's small JSON API): the local app's answer
    /// goes back as it is (no redirects followed, no decompression), over HTTP/1.1.
    static func httpConfiguration(tls: TLSConfiguration) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10)),
            decompression: .disabled
        )
        configuration.httpVersion = .http1Only
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        // A local app that is down should be a 502 now, not after the pool
        // has retried for the whole connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
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
                let end = try await self.connect(channel: channel, tls: tls, forwarder: forwarder) {
                    connected.withLock { $0 = true }
                    let wasConnected = everConnected.withLock { state in
                        defer { state = true }
                        return state
                    }
                    if wasConnected { self.stats.reconnected() }
                    self.console.line(wasConnected ? "Reconnected." : "A tunnel to the server has been established.")
                }
                reason = end.description
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

    /// One WebSocket session; returns how it ended. `onConnected` runs right after the 101, on the
    /// connection's loop, before any webhook arrives.
    private func connect(
        channel: SavedChannel,
        tls: TLSConfiguration,
        forwarder: LocalForwarder,
        onConnected: @escaping @Sendable () -> Void
    ) async throws -> TunnelSessionEnd {
        var headers = HTTPHeaders([("Sec-WebSocket-Protocol", "webhook-over-websocket.v2")])
        if let token = channel.token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        headers.add(name: OfflineQueueHeaders.whenOffline.rawName, value: self.configuration.whenOffline.rawValue)
        let url = ServerAPI.webSocketURL(serverURL: self.configuration.serverURL, channelID: channel.channelID)
        let connection = try TunnelClientConnection(url: url, headers: headers, tlsConfiguration: tls)
        let console = self.console
        let stats = self.stats
        let report: LocalExchange.Report = { summary, elapsed, queuedID in
            console.webhook(summary, elapsed: elapsed, queued: queuedID)
            stats.webhook(status: summary.status, bytes: summary.bytes)
        }
        let session = try await connection.open(onConnected: onConnected) { eventLoop in
            { handler, id, head, endStream in
                LocalExchange.start(
                    handler: handler,
                    id: id,
                    head: head,
                    endStream: endStream,
                    eventLoop: eventLoop,
                    forwarder: forwarder,
                    report: report
                )
            }
        }
        await self.announceInspector()
        let end = await session.run()
        if case .closedByClient(let reason) = end, !Task.isCancelled {
            // The server broke the protocol or stopped answering pings.
            self.logger.warning("ended the connection to the server; reconnecting", metadata: ["reason": "\(reason)"])
        } else {
            self.logger.debug("connection ended", metadata: ["end": "\(end)"])
        }
        return end
    }
}
