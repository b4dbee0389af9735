import Hummingbird
import Logging
import NIOCore

/// The developer's local app: an in-process Hummingbird server on a free
/// loopback port.
struct LocalApp: Sendable {
    let configure: @Sendable (Router<BasicRequestContext>) -> Void

    init(_ configure: @escaping @Sendable (Router<BasicRequestContext>) -> Void) {
        self.configure = configure
    }

    /// Runs the app for the duration of `body`, which gets its port.
    func run<T: Sendable>(_ body: @Sendable (Int) async throws -> T) async throws -> T {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let logger = {
            var logger = Logger(label: "local-app")
            logger.logLevel = .critical
            return logger
        }()
        let configure = self.configure
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
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
                try await app.runService()
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            do {
                let result = try await body(port)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }
}
