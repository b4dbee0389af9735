import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import RelayServer

@Suite("The connection guard: foreign upgrades, head limits, slow and idle senders")
struct HTTPConnectionGuardTests {
    static func head(_ uri: String, _ headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test("Only Upgrade: websocket on /ws/ is the upgrade this server does")
    func recognisesTheWebSocketUpgrade() {
        #expect(ForeignUpgrade.isWebSocketUpgrade(Self.head("/ws/x", [("Upgrade", "WebSocket")])))
        #expect(ForeignUpgrade.isWebSocketUpgrade(Self.head("/ws/x", [("Upgrade", "h2c, websocket")])))
        #expect(!ForeignUpgrade.isWebSocketUpgrade(Self.head("/webhook/x", [("Upgrade", "websocket")])))
        #expect(!ForeignUpgrade.isWebSocketUpgrade(Self.head("/ws/x", [("Upgrade", "h2c")])))
        #expect(ForeignUpgrade.removed(from: Self.head("/ws/x", [("Connection", "Upgrade"), ("Upgrade", "websocket")])) == nil)
        #expect(ForeignUpgrade.removed(from: Self.head("/healthz", [("Connection", "keep-alive")])) == nil)
    }

    @Test("A foreign upgrade loses Upgrade, HTTP2-Settings and their Connection tokens; the rest is kept in order")
    func stripsAForeignUpgrade() throws {
        let head = Self.head(
            "/webhook/x",
            [("Host", "a"), ("Connection", "Upgrade, HTTP2-Settings, X-Hop"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMA"), ("X-Kept", "1")]
        )
        let plain = try #require(ForeignUpgrade.removed(from: head))
        #expect(plain.headers.map(\.name) == ["Host", "X-Kept", "Connection"])
        #expect(plain.headers["Connection"] == ["X-Hop"])
        #expect(plain.uri == "/webhook/x" && plain.method == .GET)
    }

    @Test("Through the handler: the app sees no upgrade, the answer says Connection: close and the connection closes after it")
    func closesAfterTheAnswer() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPConnectionGuard())
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
        try channel.pipeline.syncOperations.addHandler(HTTPConnectionGuard())
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

    /// NIO's decoder with the server's limits, then the guard, as `RelayChannel` builds them.
    static func limitedChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPResponseEncoder())
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: RelayChannel.headLimits))
        )
        try channel.pipeline.syncOperations.addHandler(HTTPConnectionGuard())
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
        // The guard answers the parser's overflow error and keeps it from NIO's generic 400.
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

    // MARK: Slow and idle senders, through the handler on a virtual clock

    @Test("A head that has started but not finished after 10 s gets 408 and a closed connection")
    func answersASlowHead() throws {
        let channel = try Self.limitedChannel()
        try channel.writeInbound(ByteBuffer(string: "POST /webhook/x HTTP/1.1\r\nHost: a\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        var answer = ""
        while let chunk = try channel.readOutbound(as: ByteBuffer.self) { answer += String(buffer: chunk) }
        #expect(answer.hasPrefix("HTTP/1.1 408"))
        #expect(!channel.isActive)
    }

    @Test("The idle limit counts from the end of the last answer, and closes without an answer")
    func closesAnIdleConnection() throws {
        let channel = try Self.limitedChannel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(100))
        try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self) != nil)
        // An exchange has no limit here: the first idle deadline passes while it runs.
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(channel.isActive)
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "0"])))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        while try channel.readOutbound(as: ByteBuffer.self) != nil {}
        channel.embeddedEventLoop.advanceTime(by: .seconds(119))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(!channel.isActive)
    }

    // MARK: The state machine

    typealias Machine = HTTPConnectionGuardStateMachine

    static func at(_ seconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(seconds) * 1_000_000_000) }

    @Test("Between requests the idle limit applies, while a head arrives the head limit, in an exchange none")
    func deadlinesFollowTheRequest() {
        var machine = Machine(now: Self.at(0))
        #expect(machine.deadline == Self.at(120))
        let headStarted = machine.readComplete(now: Self.at(5))
        #expect(headStarted)
        #expect(machine.deadline == Self.at(15))
        let headAction = machine.receivedHead(Self.head("/webhook/x", []))
        #expect(headAction == .forward)
        #expect(machine.deadline == nil)
        let headStarted2 = machine.readComplete(now: Self.at(6))
        #expect(!headStarted2)
        let answerHeadAction = machine.writingHead(status: .ok)
        #expect(answerHeadAction == .write)
        let answerEndAction = machine.writingEnd(now: Self.at(7))
        #expect(answerEndAction == .write)
        #expect(machine.deadline == Self.at(127))
    }

    @Test("A timer that fires early is re-armed for the moved limit; one that fires late acts by phase")
    func timerFirings() {
        var machine = Machine(now: Self.at(0))
        _ = machine.receivedHead(Self.head("/", []))
        #expect(machine.timerFired(now: Self.at(120)) == .none)
        _ = machine.writingEnd(now: Self.at(100))
        #expect(machine.timerFired(now: Self.at(120)) == .rearm(Self.at(220)))
        #expect(machine.timerFired(now: Self.at(220)) == .close)
        let headStarted = machine.readComplete(now: Self.at(221))
        #expect(headStarted)
        #expect(machine.timerFired(now: Self.at(231)) == .answerTimeoutAndClose)
    }

    @Test("An oversized head is answered only outside an answer; after the 431 everything is dropped")
    func headTooLarge() {
        var answering = Machine(now: Self.at(0))
        _ = answering.receivedHead(Self.head("/", []))
        _ = answering.writingHead(status: .ok)
        let errorAction = answering.caught(headTooLarge: true, now: Self.at(1))
        #expect(errorAction == .forward)

        var machine = Machine(now: Self.at(0))
        let errorAction2 = machine.caught(headTooLarge: false, now: Self.at(1))
        #expect(errorAction2 == .forward)
        let errorAction3 = machine.caught(headTooLarge: true, now: Self.at(1))
        #expect(errorAction3 == .answerHeadTooLarge)
        #expect(machine.deadline == Self.at(3))
        let errorAction4 = machine.caught(headTooLarge: false, now: Self.at(2))
        #expect(errorAction4 == .swallow)
        let headAction = machine.receivedHead(Self.head("/", []))
        #expect(headAction == .drop)
        #expect(!machine.receivedBodyOrEnd())
        #expect(machine.timerFired(now: Self.at(3)) == .close)
    }

    @Test("A foreign upgrade is taken off the head, and its answer closes the connection; an informational head does not start the answer")
    func foreignUpgradeClosesAfterTheAnswer() {
        var machine = Machine(now: Self.at(0))
        let head = Self.head("/webhook/x", [("Connection", "Upgrade"), ("Upgrade", "h2c")])
        let headAction = machine.receivedHead(head) == .forwardPlain(ForeignUpgrade.removed(from: head)!)
        #expect(headAction)
        let answerHeadAction = machine.writingHead(status: .continue)
        #expect(answerHeadAction == .write)
        let errorAction = machine.caught(headTooLarge: true, now: Self.at(1))
        #expect(errorAction == .answerHeadTooLarge)
        var answered = Machine(now: Self.at(0))
        _ = answered.receivedHead(head)
        let answerHeadAction2 = answered.writingHead(status: .ok)
        #expect(answerHeadAction2 == .writeClosing)
        let answerEndAction = answered.writingEnd(now: Self.at(1))
        #expect(answerEndAction == .writeThenClose)
    }
}
