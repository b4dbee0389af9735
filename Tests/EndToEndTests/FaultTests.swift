import AsyncHTTPClient
import Foundation
import Hummingbird
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Open file descriptors of a process, from /proc.
func openDescriptors(_ pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
}

@Suite("Faults")
struct FaultTests {
    @Test("A sender that disconnects mid-body cancels the request at the local app")
    func senderDisconnects() async throws {
        let outcomes = Arrivals()
        let app = LocalApp { router in
            router.post("/upload") { request, _ -> String in
                outcomes.continuation.yield("started")
                do {
                    var total = 0
                    for try await chunk in request.body { total += chunk.readableBytes }
                    outcomes.continuation.yield("complete \(total)")
                } catch {
                    outcomes.continuation.yield("failed")
                }
                return "done"
            }
        }
        try await Tunnel.withTunnel(app: app) { server, client in
            let path = "/webhook/\(client.channelID)/upload"
            // Announce 1 MiB, send 64 KiB, hang up.
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: server.port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            try await channel.executeThenClose { _, outbound in
                try await outbound.write(ByteBuffer(string: "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"))
                try await outbound.write(ByteBuffer(repeating: 7, count: 64 * 1024))
                #expect(await outcomes.next() == "started")
            }
            let outcome = try await withTimeout("the local app to see the upload end") { await outcomes.next() }
            #expect(outcome == "failed")
            #expect(try await Sender.send(.POST, client.webhookURL + "/upload", body: ByteBuffer(string: "ok")).status == 200)
        }
    }

    @Test("A local app that resets the connection gives 502")
    func localAppResets() async throws {
        // A "local app" that accepts and closes at once.
        let resetter = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeSucceededVoidFuture().map { channel.close(promise: nil) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = resetter.localAddress?.port ?? 0
        do {
            try await Tunnel.withServer { server in
                let client = try await Tunnel.startClient(
                    server: server,
                    targetURL: "http://127.0.0.1:\(port)",
                    stateDir: try Tunnel.makeStateDirectory()
                )
                let answer = try await Sender.send(.POST, client.webhookURL, body: ByteBuffer(string: "{}"))
                #expect(answer.status == 502)
                #expect(errorMessage(answer) != nil)
                await client.process.stop()
            }
        } catch {
            try await resetter.close()
            throw error
        }
        try await resetter.close()
    }

    @Test("A client killed mid-stream frees what the server held: descriptors and in-flight count return to baseline")
    func killedClientFreesEverything() async throws {
        let arrivals = Arrivals()
        let app = LocalApp { router in
            router.post("/slow-sink") { request, _ -> String in
                arrivals.continuation.yield("reading")
                for try await _ in request.body { try await Task.sleep(for: .milliseconds(50)) }
                return "read"
            }
        }
        try await app.run { appPort in
            try await Tunnel.withServer { server in
                let target = "http://127.0.0.1:\(appPort)"
                let stateDir = try Tunnel.makeStateDirectory()
                let first = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                let baseline = openDescriptors(server.process.pid)

                var request = HTTPClientRequest(url: first.webhookURL + "/slow-sink")
                request.method = .POST
                request.body = .stream(GeneratedBody(size: 50 * 1024 * 1024), length: .known(Int64(50 * 1024 * 1024)))
                async let upload = try? Sender.client.execute(request, timeout: .seconds(60))
                _ = await arrivals.next()
                first.process.signal(SIGKILL)
                let response = await upload
                if let response { #expect(response.status == .serviceUnavailable) }

                try await waitUntil("the server's in-flight count returns to zero") {
                    try await Sender.send(.GET, "\(server.url)/metrics").text.contains("wow_webhooks_in_flight 0")
                }
                try await waitUntil("the server's descriptors return to their baseline") {
                    openDescriptors(server.process.pid) <= baseline - 1
                }
                let second = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                #expect(openDescriptors(server.process.pid) <= baseline)
                await second.process.stop()
                await first.process.stop()
            }
        }
    }
}
