import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// Tells a test that the local app has a request in hand.
final class Arrivals: Sendable {
    let stream: AsyncStream<String>
    let continuation: AsyncStream<String>.Continuation

    init() {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: String.self)
    }

    func next() async -> String? {
        var iterator = self.stream.makeAsyncIterator()
        return await iterator.next()
    }
}

@Suite("Reconnects, restarts and crashes")
struct ResilienceTests {
    @Test("Client killed with SIGKILL mid-request: the sender gets an error, the server stays healthy, a new client works")
    func clientKilled() async throws {
        let arrivals = Arrivals()
        let app = LocalApp { router in
            router.post("/hang") { _, _ -> String in
                arrivals.continuation.yield("hang")
                try await Task.sleep(for: .seconds(3600))
                return "never"
            }
            router.post("/ok") { _, _ -> String in "ok" }
        }
        try await app.run { appPort in
            try await Tunnel.withServer { server in
                let stateDir = try Tunnel.makeStateDirectory()
                let target = "http://127.0.0.1:\(appPort)"
                let first = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                async let pending = Sender.send(.POST, first.webhookURL + "/hang", body: ByteBuffer(string: "x"))
                _ = await arrivals.next()
                first.process.signal(SIGKILL)
                let answer = try await pending
                #expect(answer.status == 503)
                #expect(!answer.headers["Retry-After"].isEmpty)
                #expect(errorMessage(answer) != nil)
                #expect(try await Sender.send(.GET, "\(server.url)/healthz").text.contains("OK"))

                let second = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                #expect(second.channelID == first.channelID)
                let again = try await Sender.send(.POST, second.webhookURL + "/ok", body: ByteBuffer(string: "y"))
                #expect(again.status == 200)
                #expect(again.text == "ok")
                await first.process.stop()
                await second.process.stop()
            }
        }
    }

    @Test("Server restarted with the same key: the client reconnects to its channel; a webhook sent meanwhile is delivered")
    func serverRestarted() async throws {
        let app = LocalApp { router in
            router.post("/ok") { request, _ -> String in
                var request = request
                return "got " + String(buffer: try await request.collectBody(upTo: 1024))
            }
        }
        try await app.run { appPort in
            let key = ["--jwt-signing-key", "test-signing-key-\(UUID().uuidString)"]
            let first = try await Tunnel.startServer(key)
            let client: ClientHandle
            do {
                client = try await Tunnel.startClient(
                    server: first,
                    targetURL: "http://127.0.0.1:\(appPort)",
                    stateDir: try Tunnel.makeStateDirectory()
                )
            } catch {
                await first.process.stop()
                throw error
            }
            do {
                first.process.signal(SIGTERM)
                #expect(await first.process.waitForExit() == 0)
                _ = try await client.process.waitForLine(containing: "Connection lost")

                let second = try await Tunnel.startServer(key, port: first.port)
                do {
                    // Sent before the client is back: held, then delivered.
                    let answer = try await Sender.send(.POST, client.webhookURL + "/ok", body: ByteBuffer(string: "while away"))
                    #expect(answer.status == 200)
                    #expect(answer.text == "got while away")
                    _ = try await client.process.waitForLine(containing: "Reconnected.")
                    #expect(client.process.count { $0.hasPrefix("Issued Channel ID:") } == 1)
                } catch {
                    await second.process.stop()
                    throw error
                }
                await second.process.stop()
            } catch {
                await client.process.stop()
                await first.process.stop()
                throw error
            }
            await client.process.stop()
        }
    }

    @Test("SIGTERM drains: a webhook in flight finishes while /healthz says draining, then clients are sent away and the server exits 0")
    func gracefulShutdownDrains() async throws {
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
        let app = LocalApp { router in
            router.post("/slow") { _, _ -> String in
                startedContinuation.yield()
                for await _ in release { break }
                return "finished"
            }
        }
        try await app.run { appPort in
            try await Tunnel.withServer { server in
                let client = try await Tunnel.startClient(
                    server: server,
                    targetURL: "http://127.0.0.1:\(appPort)",
                    stateDir: try Tunnel.makeStateDirectory()
                )
                defer { client.process.signal(SIGKILL) }
                async let answer = Sender.send(.POST, client.webhookURL + "/slow", body: ByteBuffer(string: "x"))
                for await _ in started { break }

                server.process.signal(SIGTERM)
                try await waitUntil("/healthz says draining") {
                    let health = try await Sender.send(.GET, "\(server.url)/healthz")
                    return health.status == 503 && health.text.contains("draining")
                }
                releaseContinuation.yield()
                let finished = try await answer
                #expect(finished.status == 200)
                #expect(finished.text == "finished")
                #expect(await server.process.waitForExit() == 0)
                let lost = try await client.process.waitForLine(containing: "Connection lost")
                #expect(lost.contains("1001") || lost.lowercased().contains("going away") || lost.contains("shutting down"))
            }
        }
    }

    @Test("Client restarted (Ctrl-C, exit 0): the same webhook URL keeps working")
    func clientRestarted() async throws {
        try await inspectingApp().run { appPort in
            try await Tunnel.withServer { server in
                let stateDir = try Tunnel.makeStateDirectory()
                let target = "http://127.0.0.1:\(appPort)"
                let first = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                #expect(try await Sender.send(.POST, first.webhookURL + "/a").status == 201)
                first.process.signal(SIGINT)
                #expect(await first.process.waitForExit() == 0)

                let second = try await Tunnel.startClient(server: server, targetURL: target, stateDir: stateDir)
                #expect(second.webhookURL == first.webhookURL)
                let answer = try await Sender.send(.POST, first.webhookURL + "/b")
                #expect(answer.status == 201)
                #expect(try decodeSeen(answer).path == "/b")
                await second.process.stop()
            }
        }
    }
}
