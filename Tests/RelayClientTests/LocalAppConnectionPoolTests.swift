import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing
import TunnelProtocol

@testable import RelayClient

/// The keep-alive connections to an `http://` app (``LocalAppConnectionPool``), seen through whole
/// webhooks: from a fake relay, through the client, to a ``ScriptedApp`` that counts connections.
@Suite("Keep-alive connections to the local app")
struct LocalAppConnectionPoolTests {
    /// Runs `body` with a client between a fake relay and `app`, and stops the app afterwards.
    private func run(
        _ app: ScriptedApp,
        _ body: (RelayPeer, inout AsyncStream<Reported>.Iterator) async throws -> Void
    ) async throws {
        do {
            try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(app.port)") { peer, reports, _ in
                try await body(peer, &reports)
            }
        } catch {
            await app.stop()
            throw error
        }
        await app.stop()
    }

    private func post(_ peer: RelayPeer, on id: UInt32, _ text: String = "hello") async throws -> RelayPeer.Answer {
        let head = RequestHead(method: "POST", target: "/hook", headerFields: [.contentLength: "\(text.utf8.count)"])
        try await peer.sendRequestHead(head, on: id, endStream: false)
        try await peer.sendData(ByteBuffer(string: text), on: id, endStream: true)
        return try await peer.readAnswer(on: id)
    }

    @Test("Two webhooks one after the other use one connection to the app, with Host, length and body as sent")
    func reuse() async throws {
        let app = try await ScriptedApp.start { _ in .respond(.ok, ["Content-Length": "2"], [ByteBuffer(string: "ok")]) }
        try await self.run(app) { peer, reports in
            for id: UInt32 in [1, 3] {
                let answer = try await self.post(peer, on: id)
                #expect(answer.head?.status == 200)
                #expect(String(buffer: answer.body) == "ok")
                #expect(answer.lastDataEndedStream)
                _ = await reports.next()
            }
            #expect(app.acceptedConnections == 1)
            let requests = app.requests
            #expect(requests.count == 2)
            #expect(requests.map(\.connection) == [1, 1])
            #expect(requests.first?.head.headers["Host"] == ["127.0.0.1:\(app.port)"])
            #expect(requests.first?.head.headers["Content-Length"] == ["5"])
            #expect(requests.first.map { String(buffer: $0.body) } == "hello")
        }
    }

    @Test("A connection the app closed between webhooks is replaced, and the second webhook arrives")
    func closedBetweenWebhooks() async throws {
        let app = try await ScriptedApp.start { _ in .respond(.ok, ["Content-Length": "0"]) }
        try await self.run(app) { peer, reports in
            let answer1 = try await self.post(peer, on: 1)
            #expect(answer1.head?.status == 200)
            _ = await reports.next()
            await app.closeConnections()
            let answer2 = try await self.post(peer, on: 3)
            #expect(answer2.head?.status == 200)
            #expect(app.acceptedConnections == 2)
            #expect(app.requests.count == 2)
        }
    }

    @Test("A kept-alive connection that the app drops without answering: a webhook that came whole is sent once more on a new connection")
    func retriedOnceOnANewConnection() async throws {
        let app = try await ScriptedApp.start { request in
            // The first connection's second request finds the app "restarted".
            request.connection == 1 && request.head.method == .DELETE ? .drop : .respond(.accepted, ["Content-Length": "0"])
        }
        try await self.run(app) { peer, reports in
            let first = try await self.post(peer, on: 1)
            #expect(first.head?.status == 202)
            _ = await reports.next()
            try await peer.sendRequestHead(RequestHead(method: "DELETE", target: "/hook/1", headerFields: [:]), on: 3, endStream: true)
            let second = try await peer.readAnswer(on: 3)
            #expect(second.head?.status == 202)
            #expect(second.frames == [.responseHead, .end])
            #expect(app.acceptedConnections == 2)
            #expect(app.requests.map(\.connection) == [1, 1, 2])
        }
    }

    @Test("Connection: close from the app is honoured: the next webhook opens a new connection")
    func connectionClose() async throws {
        let app = try await ScriptedApp.start { _ in .respond(.ok, ["Content-Length": "0", "Connection": "close"], close: true) }
        try await self.run(app) { peer, reports in
            let answer4 = try await self.post(peer, on: 1)
            #expect(answer4.head?.status == 200)
            _ = await reports.next()
            let answer5 = try await self.post(peer, on: 3)
            #expect(answer5.head?.status == 200)
            #expect(app.acceptedConnections == 2)
            #expect(app.requests.map(\.connection) == [1, 2])
        }
    }

    @Test("HEAD and 204 answers have no body, and the connection serves the next webhook")
    func headAnd204() async throws {
        let app = try await ScriptedApp.start { request in
            request.head.method == .HEAD ? .respond(.ok, ["Content-Length": "1234"]) : .respond(.noContent)
        }
        try await self.run(app) { peer, reports in
            try await peer.sendRequestHead(RequestHead(method: "HEAD", target: "/", headerFields: [:]), on: 1, endStream: true)
            let head = try await peer.readAnswer(on: 1)
            #expect(head.head?.status == 200)
            #expect(head.head?.headerFields[.contentLength] == "1234")
            #expect(head.body.readableBytes == 0)
            #expect(head.frames == [.responseHead, .end])
            #expect(try #require(await reports.next()).summary.bytes == 0)

            let noContent = try await self.post(peer, on: 3)
            #expect(noContent.head?.status == 204)
            #expect(noContent.body.readableBytes == 0)
            #expect(noContent.frames == [.responseHead, .end])
            _ = await reports.next()

            let answer6 = try await self.post(peer, on: 5)
            #expect(answer6.head?.status == 204)
            #expect(app.acceptedConnections == 1)
        }
    }

    @Test("A chunked answer of unknown length comes back whole, and the connection is reused")
    func chunkedAnswer() async throws {
        let chunks = (0..<5).map { ByteBuffer(repeating: UInt8(0x61 + $0), count: 10_000) }
        let app = try await ScriptedApp.start { _ in .respond(.ok, ["Content-Type": "text/plain"], chunks) }
        try await self.run(app) { peer, reports in
            for id: UInt32 in [1, 3] {
                let answer = try await self.post(peer, on: id)
                #expect(answer.head?.status == 200)
                #expect(answer.head?.headerFields[.transferEncoding] == nil)
                #expect(answer.body.readableBytes == 50_000)
                #expect(answer.body.getSlice(at: 40_000, length: 10_000) == chunks[4])
                #expect(answer.lastDataEndedStream)
                #expect(try #require(await reports.next()).summary.bytes == 50_000)
            }
            #expect(app.acceptedConnections == 1)
        }
    }
}
