import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// What the local app saw of one request.
struct Seen: ResponseCodable {
    var method: String
    var path: String
    var query: String?
    var contentType: String?
    /// The Host the app saw (HTTP types keep it as the authority).
    var host: String?
    var headers: [[String]]
    var bodySHA256: String
    var bodyCount: Int
}

func sha256Hex(_ buffer: ByteBuffer) -> String {
    SHA256.hash(data: Array(buffer.readableBytesView)).map { String(format: "%02x", $0) }.joined()
}

/// A local app that reports what it received.
func inspectingApp() -> LocalApp {
    LocalApp { router in
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 64 * 1024 * 1024)
            let seen = Seen(
                method: request.method.rawValue,
                path: request.uri.path,
                query: request.uri.query,
                contentType: request.headers[.contentType],
                host: request.head.authority,
                headers: request.headers.map { [$0.name.rawName, $0.value] },
                bodySHA256: sha256Hex(body),
                bodyCount: body.readableBytes
            )
            let data = try JSONEncoder().encode(seen)
            return Response(
                status: .created,
                headers: [.contentType: "application/json", HTTPField.Name("X-App")!: "seen"],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }
        router.on("/**", method: .get, use: handler)
        router.on("/**", method: .post, use: handler)
        router.on("/**", method: .put, use: handler)
        router.on("/**", method: .patch, use: handler)
        router.on("/**", method: .delete, use: handler)
        router.on("/**", method: .head, use: handler)
        router.on("/", method: .get, use: handler)
        router.on("/", method: .post, use: handler)
    }
}

func decodeSeen(_ answer: Sender.Answer) throws -> Seen {
    try JSONDecoder().decode(Seen.self, from: Data(answer.body.readableBytesView))
}

@Suite("Delivery through the real server, client and local app")
struct DeliveryTests {
    @Test("POST JSON: method, body and content type arrive; status, custom header and body come back")
    func postJSON() async throws {
        try await Tunnel.withTunnel(app: inspectingApp()) { _, client in
            let json = #"{"action":"opened","number":42}"#
            let answer = try await Sender.send(
                .POST,
                client.webhookURL + "/github",
                headers: [("Content-Type", "application/json")],
                body: ByteBuffer(string: json)
            )
            #expect(answer.status == 201)
            #expect(answer.headers["X-App"] == ["seen"])
            let seen = try decodeSeen(answer)
            #expect(seen.method == "POST")
            #expect(seen.path == "/github")
            #expect(seen.contentType == "application/json")
            #expect(seen.bodySHA256 == sha256Hex(ByteBuffer(string: json)))
        }
    }

    @Test("Path suffix and query reach the app, also under a target base path")
    func pathAndQuery() async throws {
        try await Tunnel.withTunnel(app: inspectingApp()) { _, client in
            let nested = try decodeSeen(try await Sender.send(.POST, client.webhookURL + "/github/push?x=1&y=two"))
            #expect(nested.path == "/github/push")
            #expect(nested.query == "x=1&y=two")
            let bare = try decodeSeen(try await Sender.send(.POST, client.webhookURL + "?a=b"))
            #expect(bare.path == "/")
            #expect(bare.query == "a=b")
        }
        try await Tunnel.withTunnel(targetPath: "/api", app: inspectingApp()) { _, client in
            let nested = try decodeSeen(try await Sender.send(.POST, client.webhookURL + "/github?x=1"))
            #expect(nested.path == "/api/github")
            #expect(nested.query == "x=1")
            let bare = try decodeSeen(try await Sender.send(.POST, client.webhookURL + "?a=b"))
            #expect(bare.path == "/api")
            #expect(bare.query == "a=b")
        }
    }

    @Test("GET, PUT, PATCH, DELETE and HEAD are tunnelled")
    func methods() async throws {
        try await Tunnel.withTunnel(app: inspectingApp()) { _, client in
            for method in [HTTPMethod.GET, .PUT, .PATCH, .DELETE] {
                let answer = try await Sender.send(method, client.webhookURL + "/m", body: method == .GET ? nil : ByteBuffer(string: "x"))
                #expect(answer.status == 201)
                #expect(try decodeSeen(answer).method == method.rawValue)
            }
            let head = try await Sender.send(.HEAD, client.webhookURL + "/m")
            #expect(head.status == 201)
            #expect(head.headers["X-App"] == ["seen"])
            #expect(head.body.readableBytes == 0)
        }
    }

    @Test("1 MiB binary bodies both ways are byte-exact; form bodies and HMAC signatures survive")
    func byteExact() async throws {
        let secret = SymmetricKey(data: Array("webhook-secret".utf8))
        let app = LocalApp { router in
            // Echoes the body back, and checks the GitHub-style signature.
            router.post("/echo") { request, _ -> Response in
                var request = request
                let body = try await request.collectBody(upTo: 8 * 1024 * 1024)
                var headers: HTTPFields = [.contentType: request.headers[.contentType] ?? "application/octet-stream"]
                if let signature = request.headers[HTTPField.Name("X-Hub-Signature-256")!] {
                    let mac = HMAC<SHA256>.authenticationCode(for: Array(body.readableBytesView), using: secret)
                    let expected = "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
                    headers[HTTPField.Name("X-Signature-Valid")!] = signature == expected ? "yes" : "no"
                }
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
            }
        }
        try await Tunnel.withTunnel(app: app) { _, client in
            var random = ByteBuffer()
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<(1024 * 1024 / 8) { random.writeInteger(generator.next() as UInt64) }
            let mac = HMAC<SHA256>.authenticationCode(for: Array(random.readableBytesView), using: secret)
            let signature = "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
            let answer = try await Sender.send(
                .POST,
                client.webhookURL + "/echo",
                headers: [("Content-Type", "application/octet-stream"), ("X-Hub-Signature-256", signature)],
                body: random
            )
            #expect(answer.status == 200)
            #expect(answer.body.readableBytes == 1024 * 1024)
            #expect(sha256Hex(answer.body) == sha256Hex(random))
            #expect(answer.headers["X-Signature-Valid"] == ["yes"])

            let form = "payload=%7B%22text%22%3A%22hi+there%22%7D&token=abc%2F%2B"
            let formAnswer = try await Sender.send(
                .POST,
                client.webhookURL + "/echo",
                headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: ByteBuffer(string: form)
            )
            #expect(formAnswer.text == form)
            #expect(formAnswer.headers["Content-Type"] == ["application/x-www-form-urlencoded"])
        }
    }

    @Test("Repeated headers keep their order; hop-by-hop headers are dropped; X-Forwarded-* are added")
    func headers() async throws {
        try await Tunnel.withTunnel(app: inspectingApp()) { server, client in
            let answer = try await Sender.send(
                .POST,
                client.webhookURL + "/h",
                headers: [
                    ("X-Multi", "one"),
                    ("X-Other", "between"),
                    ("X-Multi", "two"),
                    ("X-Multi", "three"),
                    ("Connection", "keep-alive, X-Drop-Me"),
                    ("X-Drop-Me", "secret"),
                    ("Keep-Alive", "timeout=5"),
                    ("Proxy-Authorization", "Basic abc"),
                    ("X-Forwarded-For", "203.0.113.7"),
                ],
                body: ByteBuffer(string: "{}")
            )
            let seen = try decodeSeen(answer)
            let names = seen.headers.map { $0[0].lowercased() }
            let multi = seen.headers.filter { $0[0].lowercased() == "x-multi" }.map { $0[1] }
            #expect(multi == ["one", "two", "three"])
            let firstMulti = try #require(names.firstIndex(of: "x-multi"))
            let other = try #require(names.firstIndex(of: "x-other"))
            #expect(firstMulti < other)
            #expect(!names.contains("x-drop-me"))
            #expect(!names.contains("keep-alive"))
            #expect(!names.contains("proxy-authorization"))
            let forwardedFor = seen.headers.first { $0[0].lowercased() == "x-forwarded-for" }?[1]
            #expect(forwardedFor == "203.0.113.7, 127.0.0.1")
            #expect(seen.headers.contains { $0[0].lowercased() == "x-forwarded-proto" && $0[1] == "http" })
            #expect(seen.headers.contains { $0[0].lowercased() == "x-forwarded-host" && $0[1] == "127.0.0.1:\(server.port)" })
            #expect(seen.host?.hasPrefix("127.0.0.1:") == true)
            #expect(seen.host != "127.0.0.1:\(server.port)")
        }
    }
}
