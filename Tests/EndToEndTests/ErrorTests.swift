import AsyncHTTPClient
import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// Runs `body` with a loopback port that refuses connections for as long as `body` runs.
///
/// The port is held by a socket that is bound but never listens: connecting to it is refused, and no
/// other test running in parallel can take the port over (binding and closing a socket would leave the
/// port free for the next test's server to pick up, and the "closed" port would answer 404).
func withClosedPort<T>(_ body: (Int) async throws -> T) async throws -> T {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    defer { Glibc.close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            Glibc.bind(socket, pointer, length) == 0 && getsockname(socket, pointer, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    return try await body(Int(UInt16(bigEndian: address.sin_port)))
}

func errorMessage(_ answer: Sender.Answer) -> String? {
    (try? JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [String: String])?["error"]
}

/// Sends a WebSocket upgrade by hand, to see the status a refusal gets.
func upgradeStatus(server: ServerHandle, channel: String, token: String?) async throws -> Int {
    var headers: [(String, String)] = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
    if let token { headers.append(("Authorization", "Bearer \(token)")) }
    // A fresh connection: servers look for upgrades on a connection's first request only.
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    var request = HTTPClientRequest(url: "\(server.url)/ws/\(channel)")
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    do {
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 64 * 1024)
        try await client.shutdown()
        return Int(response.status.code)
    } catch {
        try await client.shutdown()
        throw error
    }
}

struct IssuedChannel: Decodable {
    var channel_id: String
    var token: String
}

func issueChannel(_ server: ServerHandle) async throws -> IssuedChannel {
    let answer = try await Sender.send(.GET, "\(server.url)/new")
    return try JSONDecoder().decode(IssuedChannel.self, from: Data(answer.body.readableBytesView))
}

@Suite("Error answers")
struct ErrorTests {
    @Test("Unknown channel: 404 at once, with a JSON body")
    func unknownChannel() async throws {
        try await Tunnel.withServer { server in
            let answer = try await Sender.send(.POST, "\(server.url)/webhook/\(UUID().uuidString.lowercased())/x")
            #expect(answer.status == 404)
            #expect(errorMessage(answer) != nil)
        }
    }

    @Test("Local app down: 502")
    func localAppDown() async throws {
        try await withClosedPort { port in try await localAppDown(port: port) }
    }

    private func localAppDown(port: Int) async throws {
        try await Tunnel.withServer { server in
            let client = try await Tunnel.startClient(
                server: server,
                targetURL: "http://127.0.0.1:\(port)",
                stateDir: try Tunnel.makeStateDirectory()
            )
            let answer = try await Sender.send(.POST, client.webhookURL, body: ByteBuffer(string: "{}"))
            #expect(answer.status == 502)
            #expect(errorMessage(answer)?.contains("unreachable") == true)
            await client.process.stop()
        }
    }

    @Test("An answer before the whole body was read (local app down, 1 MiB body) frees the stream at once")
    func earlyAnswerToALargeBody() async throws {
        try await withClosedPort { port in
            try await Tunnel.withServer { server in
                let client = try await Tunnel.startClient(
                    server: server,
                    targetURL: "http://127.0.0.1:\(port)",
                    stateDir: try Tunnel.makeStateDirectory()
                )
                defer { client.process.signal(SIGKILL) }
                let body = ByteBuffer(repeating: 0x61, count: 1024 * 1024)
                for _ in 0..<3 {
                    // Larger than the 256 KiB window: the client answers 502 before taking it all.
                    let answer = try await withTimeout("an answer to a 1 MiB webhook", .seconds(10)) {
                        try await Sender.send(.POST, client.webhookURL, body: body)
                    }
                    #expect(answer.status == 502)
                }
                try await waitUntil("no webhook left in flight", timeout: .seconds(5)) {
                    try await Sender.send(.GET, "\(server.url)/metrics").text.contains("wow_webhooks_in_flight 0")
                }
            }
        }
    }

    @Test("Local app slower than --request-timeout: 504")
    func tooSlow() async throws {
        let app = LocalApp { router in
            router.post("/slow") { _, _ -> String in
                try await Task.sleep(for: .seconds(5))
                return "late"
            }
        }
        try await Tunnel.withTunnel(serverArguments: ["--request-timeout", "1s"], app: app) { _, client in
            let started = ContinuousClock.now
            let answer = try await Sender.send(.POST, client.webhookURL + "/slow", body: ByteBuffer(string: "x"))
            #expect(answer.status == 504)
            #expect(errorMessage(answer) != nil)
            #expect(ContinuousClock.now - started < .seconds(4))
        }
    }

    @Test("Body over --max-body-size: 413, with and without Content-Length")
    func tooLarge() async throws {
        let app = LocalApp { router in
            router.post("/sink") { request, _ -> String in
                var total = 0
                for try await chunk in request.body { total += chunk.readableBytes }
                return "\(total)"
            }
        }
        try await Tunnel.withTunnel(serverArguments: ["--max-body-size", "64KiB"], app: app) { _, client in
            let declared = try await Sender.send(.POST, client.webhookURL + "/sink", body: ByteBuffer(repeating: 1, count: 65 * 1024))
            #expect(declared.status == 413)
            #expect(errorMessage(declared) != nil)

            var request = HTTPClientRequest(url: client.webhookURL + "/sink")
            request.method = .POST
            let chunks = (0..<20).map { _ in ByteBuffer(repeating: 2, count: 16 * 1024) }
            request.body = .stream(chunks.async, length: .unknown)
            let response = try await Sender.client.execute(request, timeout: .seconds(30))
            #expect(response.status == .payloadTooLarge)

            let fits = try await Sender.send(.POST, client.webhookURL + "/sink", body: ByteBuffer(repeating: 1, count: 64 * 1024))
            #expect(fits.status == 200)
            #expect(fits.text == "\(64 * 1024)")
        }
    }

    @Test("WebSocket refusals: 409 when connected, 401 for another channel's token, 403 for an unknown channel")
    func refusals() async throws {
        try await Tunnel.withTunnel(app: inspectingApp()) { server, client in
            let stateFile = try #require(
                try FileManager.default.contentsOfDirectory(atPath: client.stateDir).first { $0.hasSuffix(".json") }
            )
            let saved = try JSONDecoder().decode(IssuedChannel.self, from: Data(contentsOf: URL(fileURLWithPath: client.stateDir + "/" + stateFile)))
            #expect(saved.channel_id == client.channelID)
            #expect(try await upgradeStatus(server: server, channel: client.channelID, token: saved.token) == 409)

            let other = try await issueChannel(server)
            let wrongToken = try await upgradeStatus(server: server, channel: client.channelID, token: other.token)
            #expect(wrongToken == 401)
            #expect(try await upgradeStatus(server: server, channel: other.channel_id, token: "not-a-jwt") == 401)
            #expect(try await upgradeStatus(server: server, channel: UUID().uuidString.lowercased(), token: nil) == 403)

            // A plain GET tells a client why, without upgrading.
            let plain = try await Sender.send(.GET, "\(server.url)/ws/\(other.channel_id)", headers: [("Authorization", "Bearer \(saved.token)")])
            #expect(plain.status == 401)
            #expect(errorMessage(plain)?.contains("another channel") == true)
            let acceptable = try await Sender.send(
                .GET,
                "\(server.url)/ws/\(other.channel_id)",
                headers: [("Authorization", "Bearer \(other.token)")]
            )
            #expect(acceptable.status == 426)
        }
    }
}

extension Array where Element: Sendable {
    /// The elements as an async sequence (for streamed request bodies).
    var async: AsyncStream<Element> {
        AsyncStream { continuation in
            for element in self { continuation.yield(element) }
            continuation.finish()
        }
    }
}
