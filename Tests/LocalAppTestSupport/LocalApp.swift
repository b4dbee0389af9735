public import Hummingbird
import Logging
import NIOCore

/// The developer's local app in tests: an in-process Hummingbird server on a free loopback port,
/// with the routes a test sets up. Shared by the client's and the end-to-end tests.
public struct LocalApp: Sendable {
    let configure: @Sendable (Router<BasicRequestContext>) -> Void

    public init(_ configure: @escaping @Sendable (Router<BasicRequestContext>) -> Void) {
        self.configure = configure
    }

    /// Runs the app for the duration of `body`, which gets its port; the app stops afterwards,
    /// whatever `body` did.
    public func run<T: Sendable>(_ body: @Sendable (Int) async throws -> T) async throws -> T {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "local-app")
        logger.logLevel = .critical
        let configure = self.configure
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { [logger] in
                let router = Router()
                configure(router)
                let app = Application(
                    router: router,
                    configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
                    onServerRunning: { channel in
                        portContinuation.yield(channel.localAddress?.port ?? 0)
                        portContinuation.finish()
                    },
                    logger: logger
                )
                try await app.runService(gracefulShutdownSignals: [])
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            defer { group.cancelAll() }
            return try await body(port)
        }
    }
}
