import Hummingbird

#if canImport(Glibc)
import Glibc
#endif

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
try await app.runService()
