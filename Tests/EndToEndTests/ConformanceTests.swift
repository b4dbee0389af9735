import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Behaviours real senders, operators and JWT libraries rely on: upgrades that are not WebSockets,
/// head limits, channel id shapes, metric labels, token interop, senders that leave mid-answer.
@Suite("Conformance")
struct ConformanceTests {
    @Test("A sender that hangs up mid-response closes the local app's connection within two seconds, and the channel keeps working")
    func senderLeavesMidResponse() async throws {
        let events = Arrivals()
        let app = LocalApp { router in
            router.get("/slow") { _, _ -> Response in
                Response(
                    status: .ok,
                    headers: [.contentType: "application/octet-stream"],
                    body: ResponseBody { writer in
                        events.continuation.yield("started")
                        do {
                            // 64 KiB every 10 ms, up to 256 MiB: far longer than the test.
                            for _ in 0..<4096 {
                                try await writer.write(ByteBuffer(repeating: 1, count: 64 * 1024))
                                try await Task.sleep(for: .milliseconds(10))
                            }
                            try await writer.finish(nil)
                            events.continuation.yield("finished")
                        } catch {
                            events.continuation.yield("closed")
                            throw error
                        }
                    }
                )
            }
            router.post("/ok") { _, _ -> String in "ok" }
        }
        try await Tunnel.withTunnel(app: app) { server, client in
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: server.port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            let received = try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: "GET /webhook/\(client.channelID)/slow HTTP/1.1\r\nHost: x\r\n\r\n"))
                var received = 0
                for try await chunk in inbound {
                    received += chunk.readableBytes
                    if received > 128 * 1024 { break }
                }
                return received
            }
            #expect(received > 128 * 1024)
            #expect(await events.next() == "started")
            let hungUp = ContinuousClock.now
            let outcome = try await withTimeout("the local app's connection to close", .seconds(5)) { await events.next() }
            #expect(outcome == "closed")
            #expect(ContinuousClock.now - hungUp < .seconds(2))
            // Same tunnel, same client process: the channel still delivers.
            let answer = try await Sender.send(.POST, client.webhookURL + "/ok", body: ByteBuffer(string: "{}"))
            #expect(answer.status == 200 && answer.text == "ok")
            // ...without having had to reconnect.
            #expect(client.process.count { $0.contains("A tunnel to the server has been established.") } == 1)
        }
    }
}
