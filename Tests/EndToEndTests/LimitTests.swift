import AsyncHTTPClient
import Foundation
import Hummingbird
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import Testing

@Suite("Limits")
struct LimitTests {
    @Test("--max-channels: /new answers 503 beyond the limit")
    func maxChannels() async throws {
        try await Tunnel.withServer(["--max-channels", "2"]) { server in
            #expect(try await Sender.send(.GET, "\(server.url)/new").status == 200)
            #expect(try await Sender.send(.GET, "\(server.url)/new").status == 200)
            let full = try await Sender.send(.GET, "\(server.url)/new")
            #expect(full.status == 503)
            #expect(!full.headers["Retry-After"].isEmpty)
            #expect(errorMessage(full)?.contains("maximum") == true)
        }
    }

    @Test("--max-in-flight: webhooks beyond the per-channel limit get 429; the others finish")
    func maxInFlight() async throws {
        let arrivals = Arrivals()
        let (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
        let app = LocalApp { router in
            router.post("/wait") { _, _ -> String in
                arrivals.continuation.yield("wait")
                for await _ in release { break }
                return "released"
            }
        }
        try await Tunnel.withTunnel(serverArguments: ["--max-in-flight", "2"], app: app) { _, client in
            async let first = Sender.send(.POST, client.webhookURL + "/wait", body: ByteBuffer(string: "1"))
            async let second = Sender.send(.POST, client.webhookURL + "/wait", body: ByteBuffer(string: "2"))
            _ = await arrivals.next()
            _ = await arrivals.next()
            let third = try await Sender.send(.POST, client.webhookURL + "/wait", body: ByteBuffer(string: "3"))
            #expect(third.status == 429)
            #expect(third.headers["Retry-After"] == ["1"])
            releaseContinuation.yield()
            releaseContinuation.yield()
            #expect(try await first.text == "released")
            #expect(try await second.text == "released")
        }
    }
}
