import AsyncHTTPClient
import Foundation
import LocalAppTestSupport
import NIOCore
import NIOHTTP1

/// A running server process and what it printed at start.
struct ServerHandle: Sendable {
    let process: ToolProcess
    let port: Int
    var host = "127.0.0.1"
    var url: String { "http://\(self.host):\(self.port)" }
}

/// A running client process and its channel.
struct ClientHandle: Sendable {
    let process: ToolProcess
    let channelID: String
    let webhookURL: String
    let stateDir: String
    /// The inspector's URL (`http://127.0.0.1:PORT`) when the test asked for one.
    var inspectorURL: String? = nil
}

enum Tunnel {
    static func startServer(_ extraArguments: [String] = [], port: Int = 0, host: String = "127.0.0.1") async throws -> ServerHandle {
        var extraArguments = extraArguments
        // A queue of its own, so servers of tests that run in parallel never share one.
        if !extraArguments.contains("--data-dir") { extraArguments += ["--data-dir", try Tunnel.makeStateDirectory()] }
        let process = try ToolProcess(["server", "--host", host, "--port", "\(port)"] + extraArguments)
        do {
            let line = try await process.waitForLine(containing: "listening on http://")
            guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
                throw ToolProcess.Timeout(waitingFor: "a port in '\(line)'", output: process.output)
            }
            return ServerHandle(process: process, port: port, host: host)
        } catch {
            await process.stop()
            throw error
        }
    }

    /// Starts a client and waits until its tunnel is up. The inspector is off
    /// unless `extraArguments` has `--inspect` (then its URL is returned), so
    /// tests running in parallel never fight for port 4040.
    static func startClient(server: ServerHandle, targetURL: String, stateDir: String, extraArguments: [String] = []) async throws -> ClientHandle {
        let inspectIndex = extraArguments.firstIndex(of: "--inspect")
        let wantsInspector = inspectIndex.map { extraArguments.indices.contains($0 + 1) && extraArguments[$0 + 1] != "off" } ?? false
        let process = try ToolProcess(
            ["client", "--server-url", server.url, "--target-url", targetURL, "--state-dir", stateDir]
                + (inspectIndex == nil ? ["--inspect", "off"] : []) + extraArguments
        )
        do {
            let idLine = try await process.waitForLine(containing: "Issued Channel ID: ")
            let id = String(idLine.split(separator: " ").last ?? "")
            let urlLine = try await process.waitForLine(containing: "Please set the webhook destination as follows: ")
            _ = try await process.waitForLine(containing: "A tunnel to the server has been established.")
            var handle = ClientHandle(
                process: process,
                channelID: id,
                webhookURL: String(urlLine.split(separator: " ").last ?? ""),
                stateDir: stateDir
            )
            if wantsInspector {
                let line = try await process.waitForLine(containing: "Inspect webhooks at http://")
                handle.inspectorURL = String(line[line.range(of: "http://")!.lowerBound...]).trimmingCharacters(in: .whitespaces)
            }
            return handle
        } catch {
            await process.stop()
            throw error
        }
    }

    /// A fresh, empty state directory.
    static func makeStateDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wow-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Server + local app + client, all stopped when `body` returns.
    static func withTunnel<T: Sendable>(
        serverArguments: [String] = [],
        clientArguments: [String] = [],
        targetPath: String = "",
        app: LocalApp,
        _ body: @Sendable (ServerHandle, ClientHandle) async throws -> T
    ) async throws -> T {
        try await app.run { appPort in
            let server = try await Tunnel.startServer(serverArguments)
            let client: ClientHandle
            do {
                client = try await Tunnel.startClient(
                    server: server,
                    targetURL: "http://127.0.0.1:\(appPort)\(targetPath)",
                    stateDir: try Tunnel.makeStateDirectory(),
                    extraArguments: clientArguments
                )
            } catch {
                await server.process.stop()
                throw error
            }
            do {
                let result = try await body(server, client)
                await client.process.stop()
                await server.process.stop()
                return result
            } catch {
                await client.process.stop()
                await server.process.stop()
                throw error
            }
        }
    }
}

/// Sends webhooks the way GitHub or Stripe would.
enum Sender {
    static let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: .init(redirectConfiguration: .disallow, decompression: .disabled)
    )

    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
        var text: String { String(buffer: self.body) }
    }

    static func send(
        _ method: HTTPMethod = .POST,
        _ url: String,
        headers: [(String, String)] = [],
        body: ByteBuffer? = nil,
        timeout: TimeAmount = .seconds(60)
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        let response = try await Self.client.execute(request, timeout: timeout)
        let collected = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return Answer(status: Int(response.status.code), headers: response.headers, body: collected)
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out: \(self.what)" }
}

/// Runs `operation`, failing with ``TimedOut`` after `timeout`, so a test
/// that waits for the server to react fails instead of hanging.
func withTimeout<T: Sendable>(
    _ what: String,
    _ timeout: Duration = .seconds(10),
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TimedOut(what: what)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

extension Tunnel {
    /// A started server for the duration of `body`, stopped afterwards even on failure.
    static func withServer<T: Sendable>(
        _ arguments: [String] = [],
        port: Int = 0,
        _ body: @Sendable (ServerHandle) async throws -> T
    ) async throws -> T {
        let server = try await Tunnel.startServer(arguments, port: port)
        do {
            let result = try await body(server)
            await server.process.stop()
            return result
        } catch {
            await server.process.stop()
            throw error
        }
    }
}
