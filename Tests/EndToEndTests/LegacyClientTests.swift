import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// A client written from docs/protocol.md's legacy framing alone, as the original Go client behaves:
/// no subprotocol, no token, JSON text messages carrying whole HTTP/1.1
/// messages in base64.
@Suite("Legacy JSON framing")
struct LegacyClientTests {
    struct Envelope: Codable {
        var req_id: String
        var payload: String
    }

    @Test("A legacy client receives webhooks and answers them")
    func legacyClient() async throws {
        try await Tunnel.withServer { server in
            let channel = try await issueChannel(server)
            let (connected, connectedContinuation) = AsyncStream.makeStream(of: Void.self)
            let (requests, requestsContinuation) = AsyncStream.makeStream(of: String.self)
            let logger = Logger(label: "legacy-client")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await WebSocketClient.connect(
                        url: "ws://127.0.0.1:\(server.port)/ws/\(channel.channel_id)",
                        configuration: .init(maxFrameSize: 1 << 20),
                        logger: logger
                    ) { inbound, outbound, _ in
                        connectedContinuation.yield()
                        // Answer exactly one webhook, then hang up.
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            guard case .text(let text) = message else { continue }
                            let envelope = try JSONDecoder().decode(Envelope.self, from: Data(text.utf8))
                            let request = String(decoding: Data(base64Encoded: envelope.payload) ?? Data(), as: UTF8.self)
                            requestsContinuation.yield(request)
                            let body = "legacy says hi"
                            let response =
                                "HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\nX-Legacy: yes\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                            let answer = Envelope(req_id: envelope.req_id, payload: Data(response.utf8).base64EncodedString())
                            try await outbound.write(.text(String(decoding: try JSONEncoder().encode(answer), as: UTF8.self)))
                            return
                        }
                    }
                }
                for await _ in connected { break }
                let answer = try await Sender.send(
                    .POST,
                    "\(server.url)/webhook/\(channel.channel_id)/legacy?q=1",
                    headers: [("Content-Type", "application/json")],
                    body: ByteBuffer(string: #"{"old":"client"}"#)
                )
                #expect(answer.status == 202)
                #expect(answer.text == "legacy says hi")
                #expect(answer.headers["X-Legacy"] == ["yes"])
                var iterator = requests.makeAsyncIterator()
                let request = try #require(await iterator.next())
                #expect(request.hasPrefix("POST /webhook/\(channel.channel_id)/legacy?q=1 HTTP/1.1\r\n"))
                #expect(request.contains("Content-Type: application/json\r\n"))
                #expect(request.hasSuffix("\r\n\r\n{\"old\":\"client\"}"))
                try await group.waitForAll()
            }
        }
    }
}
