import ArgumentParser
import AsyncHTTPClient
import Hummingbird
import JWTKit
import NIOPosix
import PostgresNIO
import Prometheus
import SQLiteNIO

#if canImport(Glibc)
import Glibc
#endif

/// The libraries the server links, each set up once as a server does at start: arguments parsed,
/// an HMAC key, a metrics registry, an SQLite file opened and written, a PostgreSQL client
/// configured (not connected), an HTTP client, and a Hummingbird server with one route.
struct Options: ParsableCommand {
    @Option(help: "A directory for the SQLite file.")
    var dataDir: String
}

let options = try Options.parse()
let keys = JWTKeyCollection()
await keys.add(hmac: HMACKey(from: String(repeating: "k", count: 32)), digestAlgorithm: .sha256)
let registry = PrometheusCollectorRegistry()
registry.makeCounter(
    descriptor: .init(namespace: "probe", metricName: "started", unitName: "total", helpText: "Starts")
).increment()
let database: SQLiteConnection = try await SQLiteConnection.open(
    storage: .file(path: options.dataDir + "/start-rss.sqlite"),
    threadPool: .singleton,
    on: MultiThreadedEventLoopGroup.singleton.any()
)
try await database.query("CREATE TABLE IF NOT EXISTS t (a INTEGER)", []) { _ in }.get()
let postgres = PostgresClient(
    configuration: .init(host: "127.0.0.1", port: 5432, username: "u", password: nil, database: "d", tls: .disable)
)
let http = HTTPClient(eventLoopGroupProvider: .singleton)
let router = Router()
router.get("/") { _, _ in "hello" }
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: 0)),
    onServerRunning: { channel in
        // Written straight to the descriptor: stdout is a pipe, and the script waits for this line.
        let line = "listening on \(channel.localAddress!)\n"
        _ = line.withCString { write(1, $0, strlen($0)) }
    }
)
_ = postgres
try await app.runService()
