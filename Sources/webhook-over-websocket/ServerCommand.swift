import ArgumentParser
import Foundation
import GitHubAuth
import Logging
import RelayServer

struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the public relay that issues channels and receives webhooks."
    )

    @Option(name: [.short, .long], help: "HTTP port (0 picks a free one).")
    var port: Int = 8080

    @Option(help: "Bind address.")
    var host: String = "0.0.0.0"

    @Option(help: "How often unused and long-disconnected channels are swept (Go duration).")
    var cleanupDuration: GoDuration = .init(.seconds(300))

    @Option(help: "How long a webhook waits for the local app's response.")
    var requestTimeout: GoDuration = .init(.seconds(30))

    @Option(help: "Webhook bodies larger than this get 413 (e.g. 100MiB).")
    var maxBodySize: ByteSize = .init(bytes: 100 * 1024 * 1024)

    @Option(help: "Channels this replica holds at most; /new answers 503 beyond.")
    var maxChannels: Int = 10_000

    @Option(help: "Webhooks in flight on one channel at most; more get 429.")
    var maxInFlight: Int = 256

    @Option(
        name: [.customLong("jwt-signing-key"), .customLong("jwt-secret")],
        help: "HMAC key for channel tokens; the same key keeps tokens valid across restarts and replicas."
    )
    var jwtSigningKey: String?

    @Option(help: "External base URL, used in printed webhook URLs.")
    var publicURL: String?

    @Option(help: "Address peers and Traefik use to reach this replica (default: POD_IP, else detected).")
    var advertiseAddr: String?

    @Option(help: "When set, /internal/channels and /traefik-config require 'Authorization: Bearer <token>'.")
    var internalToken: String?

    @Option(help: "On SIGTERM/SIGINT, how long webhooks in flight may take to finish before clients are sent away.")
    var shutdownTimeout: GoDuration = .init(.seconds(30))

    @Option(help: "DNS name whose A/AAAA records are the peers to join (Kubernetes headless service). Empty: no clustering.")
    var peerDomain: String?

    @Option(help: "Comma-separated host[:port] peers to join, an alternative to --peer-domain.")
    var peers: String?

    @Option(help: "Gossip port, UDP and TCP (0 picks a free one).")
    var memberlistPort: Int = 7946

    @Option(help: "How often peers are looked up and joined (Go duration).")
    var memberlistSyncDuration: GoDuration = .init(.seconds(5))

    @Option(help: "How long a peer may take to answer before it is left out of a routing answer (Go duration).")
    var peerTimeout: GoDuration = .init(.seconds(1))

    @Option(name: .customLong("github-client-id"), help: "GitHub OAuth App client id; enables auth mode.")
    var githubClientID: String?

    @Option(help: "GitHub OAuth App client secret (required with the client id).")
    var githubClientSecret: String?

    @Option(help: "Only active members of this GitHub organisation may log in.")
    var githubOrg: String?

    @Option(name: .customLong("github-url"), help: "GitHub web base URL (GitHub Enterprise: https://HOST).")
    var githubURL: String = "https://github.com"

    @Option(name: .customLong("github-api-url"), help: "GitHub API base URL (GitHub Enterprise: https://HOST/api/v3).")
    var githubAPIURL: String = "https://api.github.com"

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var runtime: RuntimeOptions

    @OptionGroup(title: "Offline queue") var offlineQueue: OfflineQueueOptions

    func validate() throws {
        guard (0...65535).contains(self.port) else {
            throw ValidationError("--port must be between 0 and 65535, got \(self.port)")
        }
        guard self.cleanupDuration.duration > .zero else {
            throw ValidationError("--cleanup-duration must be greater than zero")
        }
        guard self.requestTimeout.duration > .zero else {
            throw ValidationError("--request-timeout must be greater than zero")
        }
        guard self.maxChannels > 0 else {
            throw ValidationError("--max-channels must be greater than zero")
        }
        guard self.maxInFlight > 0 else {
            throw ValidationError("--max-in-flight must be greater than zero")
        }
        guard self.maxBodySize.bytes > 0 else {
            throw ValidationError("--max-body-size must be greater than zero")
        }
        if let clientID = self.githubClientID, !clientID.isEmpty {
            guard let secret = self.githubClientSecret, !secret.isEmpty else {
                throw ValidationError("--github-client-id needs --github-client-secret")
            }
            guard let key = self.jwtSigningKey, !key.isEmpty else {
                throw ValidationError("--github-client-id needs --jwt-signing-key (auth mode signs session tokens with it)")
            }
        } else if self.githubOrg != nil || self.githubClientSecret != nil {
            throw ValidationError("--github-org and --github-client-secret need --github-client-id")
        }
        for (flag, value) in [("--github-url", self.githubURL), ("--github-api-url", self.githubAPIURL)] {
            guard let url = URL(string: value), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                throw ValidationError("\(flag) must be an http:// or https:// URL, got '\(value)'")
            }
        }
        if let publicURL, URL(string: publicURL)?.scheme == nil {
            throw ValidationError("--public-url must be an absolute URL, got '\(publicURL)'")
        }
        guard self.shutdownTimeout.duration >= .zero else {
            throw ValidationError("--shutdown-timeout must not be negative")
        }
        guard (0...65535).contains(self.memberlistPort) else {
            throw ValidationError("--memberlist-port must be between 0 and 65535, got \(self.memberlistPort)")
        }
        guard self.memberlistSyncDuration.duration > .zero else {
            throw ValidationError("--memberlist-sync-duration must be greater than zero")
        }
        for peer in self.peerList where peer.contains(" ") || peer.hasSuffix(":") {
            throw ValidationError("--peers takes host[:port] entries separated by commas, got '\(peer)'")
        }
        if let podIP = ProcessInfo.processInfo.environment["POD_IP"], !podIP.isEmpty, !Self.isIPAddress(podIP) {
            throw ValidationError("POD_IP must be an IP address, got '\(podIP)'")
        }
    }

    var peerList: [String] {
        (self.peers ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Cluster mode when peers can be found.
    var cluster: ClusterConfiguration? {
        let domain = self.peerDomain.flatMap { $0.isEmpty ? nil : $0 }
        guard domain != nil || !self.peerList.isEmpty else { return nil }
        return ClusterConfiguration(
            peerDomain: domain,
            peers: self.peerList,
            memberlistPort: self.memberlistPort,
            syncInterval: self.memberlistSyncDuration.duration,
            peerTimeout: self.peerTimeout.duration
        )
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    func run() async throws {
        try self.runtime.apply()
        let logger = self.logging.bootstrap(label: "webhook-over-websocket.server")
        var configuration = RelayServerConfiguration(
            host: self.host,
            port: self.port,
            cleanupDuration: self.cleanupDuration.duration,
            requestTimeout: self.requestTimeout.duration,
            maxBodySize: self.maxBodySize.bytes,
            jwtSigningKey: self.jwtSigningKey.flatMap { $0.isEmpty ? nil : $0 },
            publicURL: self.publicURL,
            advertiseAddress: self.advertiseAddr,
            internalToken: self.internalToken,
            maxChannels: self.maxChannels,
            maxInFlightPerChannel: self.maxInFlight,
            auth: self.githubClientID.flatMap { $0.isEmpty ? nil : $0 }.map { clientID in
                GitHubAuthConfiguration(
                    clientID: clientID,
                    clientSecret: self.githubClientSecret ?? "",
                    organization: self.githubOrg.flatMap { $0.isEmpty ? nil : $0 },
                    githubURL: self.githubURL,
                    githubAPIURL: self.githubAPIURL
                )
            },
            cluster: self.cluster,
            shutdownTimeout: self.shutdownTimeout.duration
        )
        configuration.offlineQueue = self.offlineQueue.settings
        if configuration.cluster != nil, configuration.jwtSigningKey == nil {
            logger.warning(
                "cluster mode without --jwt-signing-key: channel tokens are valid only on the replica that issued them, so a client whose replica goes away gets a new webhook URL"
            )
        }
        let server = await RelayServer(configuration: configuration, logger: logger)
        let host = self.host
        do {
            try await server.run { port in
                printLine("webhook-over-websocket server listening on http://\(host):\(port)")
            }
        } catch {
            printError("cannot run the server on \(host):\(self.port): \(error)")
            throw ExitCode.failure
        }
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data("Error: \(text)\n".utf8))
}
