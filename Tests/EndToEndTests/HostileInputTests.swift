import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Testing

/// Sends raw bytes to the server and returns what it answers, up to `limit`.
func rawExchange(port: Int, _ request: String, limit: Int = 4096, timeout: Duration = .seconds(10)) async throws -> String {
    try await withTimeout("an answer to \(request.debugDescription)", timeout) {
        try await rawExchangeUnbounded(port: port, request, limit: limit)
    }
}

private func rawExchangeUnbounded(port: Int, _ request: String, limit: Int) async throws -> String {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in
        try await outbound.write(ByteBuffer(string: request))
        var answer = ""
        for try await chunk in inbound {
            answer += String(buffer: chunk)
            if answer.utf8.count >= limit || answer.contains("\r\n\r\n") { break }
        }
        return answer
    }
}

@Suite("Hostile input")
struct HostileInputTests {
    @Test("A slowloris sender whose head never completes gets 408 and a closed connection after 10 s; others are served meanwhile")
    func slowloris() async throws {
        try await Tunnel.withServer { server in
            let started = ContinuousClock.now
            async let slow = rawExchange(
                port: server.port,
                "POST /webhook/\(UUID().uuidString.lowercased())/x HTTP/1.1\r\nHost: x\r\nX-Partial: yes",
                timeout: .seconds(20)
            )
            let health = try await rawExchange(port: server.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(health.hasPrefix("HTTP/1.1 200"))
            let answer = try await slow
            let waited = ContinuousClock.now - started
            #expect(answer.hasPrefix("HTTP/1.1 408"))
            #expect(waited >= .seconds(9) && waited < .seconds(15))
        }
    }

    @Test("Oversized request headers get 431 with a JSON error; normal requests still work")
    func oversizedHeaders() async throws {
        try await Tunnel.withServer { server in
            let huge = String(repeating: "a", count: 100 * 1024)
            let answer = try await rawExchange(
                port: server.port,
                "POST /webhook/\(UUID().uuidString.lowercased())/x HTTP/1.1\r\nHost: x\r\nX-Big: \(huge)\r\nContent-Length: 0\r\n\r\n"
            )
            #expect(answer.hasPrefix("HTTP/1.1 431"))
            #expect(answer.lowercased().contains("connection: close"))
            let health = try await rawExchange(port: server.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(health.hasPrefix("HTTP/1.1 200"))
            // A bad request line is still NIO's 400.
            let bad = try await rawExchange(port: server.port, "NOT HTTP AT ALL\r\n\r\n")
            #expect(bad.hasPrefix("HTTP/1.1 400"))
        }
    }

    @Test("Path tricks and header injection never reach another endpoint or a forged header")
    func malformedHTTP() async throws {
        try await Tunnel.withTunnel(app: inspectingApp()) { server, client in
            let before = try await channelIDs(server)
            for path in ["/webhook/../new", "/webhook/%2E%2E/new", "/webhook/abc%2Fdef/x", "/webhook/"] {
                let answer = try await Sender.send(.POST, server.url + path)
                #expect([404, 400].contains(answer.status), "\(path) → \(answer.status)")
            }
            #expect(try await channelIDs(server) == before, "no channel was issued by a path trick")

            let path = "/webhook/\(client.channelID)/x"
            let injected = try await rawExchange(
                port: server.port,
                "POST \(path) HTTP/1.1\r\nHost: x\r\nX-A: a\rX-Injected: yes\r\nContent-Length: 0\r\n\r\n"
            )
            #expect(injected.hasPrefix("HTTP/1.1 400"), "\(injected)")
            let garbage = try await rawExchange(port: server.port, "NOT A REQUEST\r\n\r\n")
            #expect(garbage.hasPrefix("HTTP/1.1 400"), "\(garbage)")
            #expect(try await Sender.send(.POST, client.webhookURL + "/still-fine").status == 201)
        }
    }

    @Test("A client sending malformed v2 frames loses only its own connection")
    func malformedFrames() async throws {
        try await Tunnel.withTunnel(app: inspectingApp()) { server, client in
            let victim = try await issueChannel(server)
            let garbage: [[UInt8]] = [
                [0x09, 0, 0, 0, 0, 1],  // unknown frame type
                [0x02, 0, 0, 0],  // truncated header
                [0x01, 0, 0, 0, 0, 1, 4, 0x50, 0x4f, 0x53, 0x54],  // a REQUEST_HEAD sent to the server
                [0x06, 0, 0, 0, 0, 1, 0, 0, 0, 0],  // zero window increment
            ]
            for bytes in garbage {
                let close = try await withTimeout("the server closing after \(bytes)") {
                    try await WebSocketClient.connect(
                        url: "ws://127.0.0.1:\(server.port)/ws/\(victim.channel_id)",
                        configuration: .init(
                            maxFrameSize: 1 << 20,
                            additionalHeaders: [.authorization: "Bearer \(victim.token)", .secWebSocketProtocol: "webhook-over-websocket.v2"]
                        ),
                        logger: Logger(label: "hostile")
                    ) { inbound, outbound, _ in
                        try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
                        // The server closes the connection: reading ends.
                        for try await _ in inbound.messages(maxSize: 1 << 20) {}
                    }
                }
                #expect(close?.closeCode == .protocolError, "\(bytes)")
            }
            // The channel is free again, and the other channel never noticed.
            #expect(try await upgradeStatus(server: server, channel: victim.channel_id, token: victim.token) == 101)
            #expect(try await Sender.send(.POST, client.webhookURL + "/ok").status == 201)
        }
    }

    @Test("A WebSocket flood of frames for streams that are not open is cut off; other channels are served meanwhile")
    func webSocketFlood() async throws {
        try await Tunnel.withTunnel(app: inspectingApp()) { server, client in
            let flooder = try await issueChannel(server)
            func connect(_ body: @escaping @Sendable (WebSocketOutboundWriter) async throws -> Void) async throws -> WebSocketCloseFrame? {
                try await WebSocketClient.connect(
                    url: "ws://127.0.0.1:\(server.port)/ws/\(flooder.channel_id)",
                    configuration: .init(
                        maxFrameSize: 2 << 20,
                        additionalHeaders: [.authorization: "Bearer \(flooder.token)", .secWebSocketProtocol: "webhook-over-websocket.v2"]
                    ),
                    logger: Logger(label: "flood")
                ) { inbound, outbound, _ in
                    try await body(outbound)
                    for try await _ in inbound.messages(maxSize: 1 << 20) {}
                }
            }
            async let flood = connect { outbound in
                // DATA frames for streams that were never opened: a few are normal (late frames of a
                // reset stream), thousands are a flood.
                do {
                    for id in 0..<5_000 {
                        var frame = ByteBuffer(bytes: [0x03, 0, 0, 0, 0, 0])
                        frame.setInteger(UInt32(2 * id + 1), at: 2)
                        frame.writeBytes([UInt8](repeating: 0x78, count: 512))
                        try await outbound.write(.binary(frame))
                    }
                } catch {
                    // The server closed the connection mid-flood.
                }
            }
            let answer = try await withTimeout("a webhook on another channel during the flood", .seconds(10)) {
                try await Sender.send(.POST, client.webhookURL + "/ok")
            }
            #expect(answer.status == 201)
            let close = try await flood
            #expect(close?.closeCode == .protocolError)

            // A message over the 1 MiB limit ends the connection with 1009.
            let oversized = try await connect { outbound in
                try await outbound.write(.binary(ByteBuffer(repeating: 0x03, count: (1 << 20) + 1)))
            }
            #expect(oversized?.closeCode == .messageTooLarge)
            #expect(try await Sender.send(.POST, client.webhookURL + "/ok").status == 201)
        }
    }
}
