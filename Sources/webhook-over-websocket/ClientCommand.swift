import ArgumentParser
import Foundation
import Logging
import RelayClient
import ServiceLifecycle
import UnixSignals

struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Hold a tunnel to the server and replay webhooks against a local app."
    )

    @Option(help: "The server's base URL (http or https).")
    var serverURL: String

    @Option(help: "Where webhooks are replayed.")
    var targetURL: String = "http://localhost:3000"

    @Option(help: "Session JWT (auth mode).")
    var token: String?

    @Flag(help: "Skip TLS certificate verification.")
    var insecure = false

    @Option(help: "Time the local app has to answer one webhook (0 disables).")
    var transferRequestTimeout: GoDuration = .init(.seconds(10))

    @Flag(help: "Do not reuse the saved channel.")
    var newChannel = false

    @Option(help: "Where the channel id and token are kept per server URL.")
    var stateDir: String = RelayClientConfiguration.defaultStateDirectory

    @Option(
        help: "What the server does with webhooks while this client is away: queue (store, answer 202, deliver on return) or reject (503)."
    )
    var whenOffline: WhenOffline = .queue

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        try Self.validateHTTPURL(self.serverURL, flag: "--server-url")
        try Self.validateHTTPURL(self.targetURL, flag: "--target-url")
        if let token, token.isEmpty { throw ValidationError("--token must not be empty") }
    }

    static func validateHTTPURL(_ text: String, flag: String) throws {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            throw ValidationError("\(flag) must be an http:// or https:// URL, got '\(text)'")
        }
    }

    func run() async throws {
        let logger = self.logging.bootstrap(label: "webhook-over-websocket.client")
        var configuration = RelayClientConfiguration(
            serverURL: self.serverURL,
            targetURL: self.targetURL,
            sessionToken: self.token,
            insecure: self.insecure,
            transferRequestTimeout: self.transferRequestTimeout.duration == .zero ? nil : self.transferRequestTimeout.duration,
            newChannel: self.newChannel,
            stateDirectory: self.stateDir
        )
        configuration.whenOffline = self.whenOffline
        let client = RelayClient(configuration: configuration, logger: logger, output: { printLine($0) })
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: client, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch let error as LoginRequired {
            printLine(error.description)
            throw ExitCode(2)
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }
}

extension WhenOffline: ExpressibleByArgument {}
