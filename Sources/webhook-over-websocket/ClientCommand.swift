import ArgumentParser
import Foundation
import Inspector
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

    @Option(help: "Where the local inspector (page + API) listens, host:port; 'off' disables it.")
    var inspect: String = InspectorAddress.default.description

    @Option(help: "Webhooks the inspector's history keeps at most (oldest evicted first).")
    var inspectMaxWebhooks: Int = HistoryLimits().maxWebhooks

    @Option(help: "Bytes the inspector's history keeps at most (e.g. 256MiB; oldest evicted first).")
    var inspectMaxBytes: ByteSize = .init(bytes: HistoryLimits().maxBytes)

    @Option(help: "Bytes of each body the inspector keeps; a longer body keeps its first bytes, size and SHA-256.")
    var inspectCaptureLimit: ByteSize = .init(bytes: HistoryLimits().captureLimit)

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var runtime: RuntimeOptions

    /// `nil` for `--inspect off`.
    var inspectAddress: InspectorAddress? {
        self.inspect.lowercased() == "off" ? nil : InspectorAddress(parsing: self.inspect)
    }

    func validate() throws {
        if self.inspect.lowercased() != "off", self.inspectAddress == nil {
            throw ValidationError("--inspect must be host:port (e.g. 127.0.0.1:4040) or 'off', got '\(self.inspect)'")
        }
        if self.inspectMaxWebhooks < 1 { throw ValidationError("--inspect-max-webhooks must be at least 1") }
        if self.inspectMaxBytes.bytes < 1 { throw ValidationError("--inspect-max-bytes must be at least 1 byte") }
        try Self.validateHTTPURL(self.serverURL, flag: "--server-url")
        try Self.validateHTTPURL(self.targetURL, flag: "--target-url")
        if let token, token.isEmpty { throw ValidationError("--token must not be empty") }
    }

    /// The inspector, or `nil` when it is off or its history cannot be
    /// opened (one warning line; the tunnel runs regardless).
    func openInspector(logger: Logger) async -> Inspector? {
        guard let address = self.inspectAddress else { return nil }
        let configuration = InspectorConfiguration(
            address: address,
            stateDirectory: self.stateDir,
            limits: HistoryLimits(
                maxWebhooks: self.inspectMaxWebhooks,
                maxBytes: self.inspectMaxBytes.bytes,
                captureLimit: self.inspectCaptureLimit.bytes
            ),
            targetURL: self.targetURL,
            version: WebhookOverWebsocket.version
        )
        do {
            return try await Inspector.open(configuration, logger: logger, output: { ConsoleOutput.write($0) })
        } catch {
            ConsoleOutput.write(
                "Warning: the inspector's history in \(self.stateDir) cannot be opened (\(error)); the tunnel runs without the inspector."
            )
            return nil
        }
    }

    static func validateHTTPURL(_ text: String, flag: String) throws {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            throw ValidationError("\(flag) must be an http:// or https:// URL, got '\(text)'")
        }
    }

    func run() async throws {
        try self.runtime.apply()
        defer { ConsoleOutput.flush() }
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
        let inspector = await self.openInspector(logger: logger)
        let client = RelayClient(configuration: configuration, logger: logger, output: { ConsoleOutput.write($0) }, inspector: inspector)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: client, successTerminationBehavior: .gracefullyShutdownGroup)
        ]
        // The inspector's failure never stops the tunnel.
        if let inspector { services.append(.init(service: inspector, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore)) }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch let error as LoginRequired {
            await inspector?.close()
            ConsoleOutput.flush()
            printLine(error.description)
            throw ExitCode(2)
        } catch {
            await inspector?.close()
            printError("\(error)")
            throw ExitCode.failure
        }
        await inspector?.close()
    }
}

extension WhenOffline: ExpressibleByArgument {}
