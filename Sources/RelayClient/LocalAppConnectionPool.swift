import NIOCore
import NIOHTTP1
import NIOPosix
import TunnelTransport

/// The keep-alive connections of one event loop to one `http://` local app.
///
/// AsyncHTTPClient's pool was the client's largest cost (its locks, request bags and state
/// machines, and a `write` for the head apart from the body's). Webhooks run on their tunnel
/// connection's loop (docs/architecture.md), so each loop keeps its own idle connections and hands
/// them out without a lock: at most ``maxIdle``, each closed after ``idleTimeout`` unused. A
/// connection the app closed leaves the pool as soon as the close is seen.
///
/// `@unchecked Sendable` only so that it can be captured by NIO's `@Sendable` callbacks: it is
/// used on ``eventLoop`` alone.
final class LocalAppConnectionPool: @unchecked Sendable {
    static let maxIdle = 64
    static let idleTimeout = TimeAmount.seconds(60)
    static let connectTimeout = TimeAmount.seconds(10)

    /// Where the app listens, read from an `http://host:port` origin.
    struct Target: Hashable {
        var host: String
        var port: Int
        /// The `Host` header, as AsyncHTTPClient sent it: the port only when it is not 80.
        var hostHeader: String

        /// `nil` for anything but `http://` (`https://` goes through AsyncHTTPClient).
        init?(origin: String) {
            guard origin.lowercased().hasPrefix("http://") else { return nil }
            var authority = Substring(origin.dropFirst("http://".count))
            if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
            guard !authority.isEmpty else { return nil }
            var host = authority
            var port = 80
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { return nil }
                host = authority[authority.index(after: authority.startIndex)..<close]
                let rest = authority[authority.index(after: close)...]
                if rest.hasPrefix(":") {
                    guard let number = Int(rest.dropFirst()) else { return nil }
                    port = number
                }
            } else if let colon = authority.lastIndex(of: ":") {
                guard let number = Int(authority[authority.index(after: colon)...]) else { return nil }
                host = authority[..<colon]
                port = number
            }
            self.host = String(host)
            self.port = port
            let hostPart = host.contains(":") ? "[\(host)]" : String(host)
            self.hostHeader = port == 80 ? hostPart : "\(hostPart):\(port)"
        }
    }

    let eventLoop: any EventLoop
    let target: Target
    /// Most recently used last: it is the one handed out first.
    private var idle: [LocalAppConnection] = []

    private init(eventLoop: any EventLoop, target: Target) {
        self.eventLoop = eventLoop
        self.target = target
    }

    private static let pools = PerLoop<Target, LocalAppConnectionPool>()

    /// The pool of `eventLoop` for `target`. Call on `eventLoop`.
    static func on(_ eventLoop: any EventLoop, for target: Target) -> LocalAppConnectionPool {
        Self.pools.value(on: eventLoop, for: target) { LocalAppConnectionPool(eventLoop: eventLoop, target: target) }
    }

    /// An idle connection, if there is one.
    func idleConnection() -> LocalAppConnection? {
        while let connection = self.idle.popLast() {
            if connection.isIdle { return connection }
        }
        return nil
    }

    /// A new connection to the app (callers take an ``idleConnection()`` first when they may).
    func newConnection() -> EventLoopFuture<LocalAppConnection> {
        let connection = LocalAppConnection(eventLoop: self.eventLoop)
        connection.pool = self
        return ClientBootstrap(group: self.eventLoop)
            .connectTimeout(Self.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .dropBytes)
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
            .connect(host: self.target.host, port: self.target.port)
            .map { _ in connection }
    }

    /// A connection done with its request, kept for the next one if there is room.
    func release(_ connection: LocalAppConnection) {
        guard connection.isIdle, self.idle.count < Self.maxIdle else {
            connection.close()
            return
        }
        connection.idleTimer = DeadlineQueue.schedule(in: Self.idleTimeout, on: self.eventLoop) { connection.close() }
        self.idle.append(connection)
    }

    /// A connection that closed.
    func remove(_ connection: LocalAppConnection) {
        self.idle.removeAll { $0 === connection }
    }
}
