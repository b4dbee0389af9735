import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import RelayServer

@Suite("Foreign upgrades and head limits, in process")
struct ForeignUpgradeFilterTests {
    static func head(_ uri: String, _ headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test("Only Upgrade: websocket on /ws/ is the upgrade this server does")
    func recognisesTheWebSocketUpgrade() {
        #expect(ForeignUpgradeFilter.isWebSocketUpgrade(Self.head("/ws/x", [("Upgrade", "WebSocket")])))
        #expect(ForeignUpgradeFilter.isWebSocketUpgrade(Self.head("/ws/x", [("Upgrade", "h2c, websocket")])))
        #expect(!ForeignUpgradeFilter.isWebSocketUpgrade(Self.head("/webhook/x", [("Upgrade", "websocket")])))
        #expect(!ForeignUpgradeFilter.isWebSocketUpgrade(Self.head("/ws/x", [("Upgrade", "h2c")])))
        #expect(ForeignUpgradeFilter.withoutForeignUpgrade(Self.head("/ws/x", [("Connection", "Upgrade"), ("Upgrade", "websocket")])) == nil)
        #expect(ForeignUpgradeFilter.withoutForeignUpgrade(Self.head("/healthz", [("Connection", "keep-alive")])) == nil)
    }

    @Test("A foreign upgrade loses Upgrade, HTTP2-Settings and their Connection tokens; the rest is kept in order")
    func stripsAForeignUpgrade() throws {
        let head = Self.head(
            "/webhook/x",
            [("Host", "a"), ("Connection", "Upgrade, HTTP2-Settings, X-Hop"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMA"), ("X-Kept", "1")]
        )
        let plain = try #require(ForeignUpgradeFilter.withoutForeignUpgrade(head))
        #expect(plain.headers.map(\.name) == ["Host", "X-Kept", "Connection"])
        #expect(plain.headers["Connection"] == ["X-Hop"])
        #expect(plain.uri == "/webhook/x" && plain.method == .GET)
    }

    @Test("Through the handler: the app sees no upgrade, the answer says Connection: close and the connection closes after it")
    func closesAfterTheAnswer() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ForeignUpgradeFilter())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(
            HTTPServerRequestPart.head(Self.head("/healthz", [("Connection", "Upgrade"), ("Upgrade", "example/1")]))
        )
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let seen) = try channel.readInbound(as: HTTPServerRequestPart.self) else {
            Issue.record("no head")
            return
        }
        #expect(!seen.headers.contains(name: "Upgrade") && !seen.headers.contains(name: "Connection"))

        let response = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "0"])
        try channel.writeOutbound(HTTPServerResponsePart.head(response))
        guard case .head(let sent) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no response head")
            return
        }
        #expect(sent.headers["Connection"] == ["close"])
        #expect(channel.isActive)
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test("Without a foreign upgrade the handler changes nothing and keeps the connection")
    func passesPlainRequests() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ForeignUpgradeFilter())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let head = Self.head("/healthz", [("Host", "a"), ("Connection", "keep-alive")])
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) == .head(head))
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        guard case .head(let sent) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no response head")
            return
        }
        #expect(sent.headers["Connection"].isEmpty)
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        channel.embeddedEventLoop.run()
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    /// NIO's decoder with the server's limits, then the 431 responder, as `RelayChannel` builds them.
    static func limitedChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPResponseEncoder())
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: RelayChannel.headLimits))
        )
        try channel.pipeline.syncOperations.addHandler(HeaderOverflowResponder())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    @Test("100 fields parse; the 101st gets 431 with the limits in a JSON error, and the connection closes")
    func limitsTheFieldCount() throws {
        func request(_ fields: Int) -> ByteBuffer {
            ByteBuffer(string: "GET / HTTP/1.1\r\n" + (0..<fields).map { "X-F\($0): v\r\n" }.joined() + "\r\n")
        }
        let fits = try Self.limitedChannel()
        try fits.writeInbound(request(100))
        guard case .head(let head) = try fits.readInbound(as: HTTPServerRequestPart.self) else {
            Issue.record("100 fields did not parse")
            return
        }
        #expect(head.headers.count == 100)
        #expect(fits.isActive)

        let over = try Self.limitedChannel()
        // The responder answers the parser's overflow error and keeps it from NIO's generic 400.
        try over.writeInbound(request(101))
        #expect(try over.readInbound(as: HTTPServerRequestPart.self) == nil)
        var answer = ""
        while let chunk = try over.readOutbound(as: ByteBuffer.self) { answer += String(buffer: chunk) }
        #expect(answer.hasPrefix("HTTP/1.1 431"))
        #expect(answer.contains("Connection: close"))
        #expect(answer.contains("at most 100 fields and 80 KiB"))
        over.embeddedEventLoop.run()
        #expect(!over.isActive)
    }
}
