import Hummingbird
public import Logging
public import ServiceLifecycle
import Synchronization

/// The client's local inspector (docs/inspector.md): a bounded history of
/// webhooks in SQLite, a live page and a JSON API, replay and
/// edit-and-replay with optional re-signing. Run it as a `Service` beside
/// the tunnel; give the forwarder its ``observer`` and register the replay
/// path with ``setReplayHandler(_:)``.
public final class Inspector: Service {
    let configuration: InspectorConfiguration
    let logger: Logger
    let output: @Sendable (String) -> Void
    let store: HistoryStore
    let writer: HistoryWriter
    let events = EventHub()
    private let replayer = ReplayHandlerBox()
    private let allowed = AllowedHosts()
    private let bound = BindOutcome()
    private let announced = Mutex(false)

    private init(
        configuration: InspectorConfiguration,
        store: HistoryStore,
        logger: Logger,
        output: @escaping @Sendable (String) -> Void
    ) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.output = output
        self.writer = HistoryWriter(store: store, events: self.events, logger: logger)
    }

    /// Opens the history (creating it in the state dir if needed).
    public static func open(
        _ configuration: InspectorConfiguration,
        logger: Logger,
        output: @escaping @Sendable (String) -> Void
    ) async throws -> Inspector {
        let store = try await HistoryStore.open(directory: configuration.stateDirectory, limits: configuration.limits, logger: logger)
        return Inspector(configuration: configuration, store: store, logger: logger, output: output)
    }

    /// What the forwarder calls for every exchange with the local app.
    public var observer: any WebhookObserver {
        CaptureObserver(writer: self.writer, captureLimit: self.configuration.limits.captureLimit)
    }

    /// How a replay reaches the local app (the client's forwarder).
    public func setReplayHandler(_ handler: @escaping ReplayHandler) {
        self.replayer.set(handler)
    }

    /// `Inspect webhooks at http://…` once the page is listening, with the
    /// port actually bound; `nil` if it could not listen, and on every call
    /// after the first (the line is printed once).
    public func startupLine() async -> String? {
        let url = await self.bound.value()
        let first = self.announced.withLock { announced in
            defer { announced = true }
            return !announced
        }
        return first ? url.map { "Inspect webhooks at \($0)" } : nil
    }

    /// Closes the history; the client calls it on the way out even when
    /// ``run()`` never ran (the group stopped first).
    public func close() async {
        await self.store.close()
    }

    public func run() async throws {
        let address = self.configuration.address
        let api = InspectorAPI(
            store: self.store,
            writer: self.writer,
            events: self.events,
            replayer: self.replayer,
            baseURL: Self.trimmed(self.configuration.targetURL),
            version: self.configuration.version
        )
        let allowed = self.allowed
        let bound = self.bound
        let app = Application(
            router: api.routes(allowed: allowed),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? address.port
                allowed.bind(host: address.host, port: port)
                bound.resolve(address.url(port: port))
            },
            logger: self.logger
        )
        let events = self.events
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.writer.run() }
            group.addTask {
                // Keeps idle event streams (and any proxy between) open.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(15))
                    events.publish(": keep-alive\n\n")
                }
            }
            do {
                try await withGracefulShutdownHandler {
                    try await app.run()
                } onGracefulShutdown: {
                    events.close()
                }
            } catch {
                if !bound.isResolved {
                    self.output("Warning: the inspector cannot listen on \(address) (\(error)); the tunnel runs without it.")
                } else if !(error is CancellationError) {
                    self.logger.warning("the inspector stopped", metadata: ["error": "\(error)"])
                }
            }
            if !bound.isResolved {
                bound.resolve(nil)
                // Keep capturing into the history until the client stops.
                try? await gracefulShutdown()
            }
            events.close()
            self.writer.finish()
            group.cancelAll()
        }
        await self.store.close()
    }

    static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}

/// The bind's outcome (the URL, or `nil` if it failed), awaited by whoever
/// prints the start-up line.
final class BindOutcome: Sendable {
    private struct State {
        var value: String??
        var waiters: [CheckedContinuation<String?, Never>] = []
    }

    private let state = Mutex(State())

    var isResolved: Bool { self.state.withLock { $0.value != nil } }

    func resolve(_ value: String?) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<String?, Never>] in
            guard state.value == nil else { return [] }
            state.value = .some(value)
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    func value() async -> String? {
        await withCheckedContinuation { continuation in
            let ready = self.state.withLock { state -> String?? in
                if let value = state.value { return .some(value) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
