import ArgumentParser
import Hummingbird
import Logging
import UnixSignals

struct EchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Serve a local app that answers every request with 200, its headers and its body."
    )

    @Option(name: [.short, .long], help: "Port to listen on (0 picks a free one).")
    var port: Int = 3000

    @Option(help: "Bind address.")
    var host: String = "127.0.0.1"

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (0...65535).contains(self.port) else {
            throw ValidationError("--port must be between 0 and 65535, got \(self.port)")
        }
    }

    func run() async throws {
        let logger = self.logging.bootstrap(label: "webhook-over-websocket.echo")
        let app = Application(
            responder: EchoResponder(),
            configuration: .init(address: .hostname(self.host, port: self.port), serverName: nil),
            onServerRunning: { [host] channel in
                printLine("echo listening on http://\(host):\(channel.localAddress?.port ?? 0)")
            },
            logger: logger
        )
        do {
            try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        } catch {
            printError("cannot run echo on \(self.host):\(self.port): \(error)")
            throw ExitCode.failure
        }
    }
}

/// Echoes each request: status 200, the request's end-to-end headers, and
/// its body streamed straight back.
struct EchoResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        var headers = HTTPFields()
        for field in request.headers {
            switch field.name {
            case .connection, .transferEncoding, .contentLength: continue
            default: headers.append(field)
            }
        }
        if let length = request.headers[.contentLength] { headers[.contentLength] = length }
        printLine("\(request.method.rawValue) \(request.uri.description)")
        return Response(status: .ok, headers: headers, body: .init(asyncSequence: request.body))
    }
}
