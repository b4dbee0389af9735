import HTTPTypes
import NIOCore
import Synchronization
import Testing

@testable import TunnelProtocol

/// Two multiplexers wired back to back through in-memory queues, the way a
/// WebSocket connects them.
struct Pipe: Sendable {
    let server: StreamMultiplexer
    let client: StreamMultiplexer
    let toClient: AsyncStream<ByteBuffer>
    let toServer: AsyncStream<ByteBuffer>

    init(configuration: StreamMultiplexer.Configuration = .init()) {
        let (toClient, toClientContinuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        let (toServer, toServerContinuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        self.server = StreamMultiplexer(role: .opener, configuration: configuration) { toClientContinuation.yield($0) }
        self.client = StreamMultiplexer(role: .acceptor, configuration: configuration) { toServerContinuation.yield($0) }
        self.toClient = toClient
        self.toServer = toServer
    }
}

@Suite struct StreamMultiplexerTests {
    @Test func requestAndResponseFlowThroughWithFlowControl() async throws {
        let configuration = StreamMultiplexer.Configuration(initialWindow: 1024, maxDataChunk: 100)
        let pipe = Pipe(configuration: configuration)
        let body = ByteBuffer(repeating: 0x61, count: 10_000)

        try await withThrowingTaskGroup(of: Void.self) { group in
            // Wire: deliver frames to the other side as they are written.
            group.addTask {
                // Each incoming stream gets its own task, as in the client.
                try await withThrowingTaskGroup(of: Void.self) { handlers in
                    for await message in pipe.toClient {
                        guard let incoming = try pipe.client.receive(message) else { continue }
                        handlers.addTask {
                            let received = try await incoming.stream.inboundBody().reduce(0) { $0 + $1.readableBytes }
                            try await incoming.stream.sendResponseHead(
                                ResponseHead(status: 200, headerFields: [.contentType: "text/plain"]),
                                endStream: false
                            )
                            var writer = incoming.stream.makeBodyWriter()
                            try await writer.write(ByteBuffer(string: "got \(received)"))
                            try await writer.finish()
                        }
                    }
                }
            }
            group.addTask {
                for await message in pipe.toServer { _ = try pipe.server.receive(message) }
            }

            let stream = try pipe.server.openStream()
            try await stream.sendRequestHead(RequestHead(method: "POST", target: "/x", headerFields: [:]), endStream: false)
            var writer = stream.makeBodyWriter()
            try await writer.write(body)
            try await writer.finish()
            var events = stream.events.makeAsyncIterator()
            guard case .responseHead(let head, _) = await events.next() else {
                Issue.record("expected a response head")
                return
            }
            #expect(head.status == 200)
            var answer = ByteBuffer()
            loop: while let event = await events.next() {
                switch event {
                case .data(var chunk):
                    answer.writeBuffer(&chunk)
                    try await stream.acknowledge(chunk.readableBytes)
                case .end: break loop
                default: Issue.record("unexpected \(event)")
                }
            }
            #expect(String(buffer: answer) == "got 10000")
            group.cancelAll()
        }
    }

    @Test func aSenderNeverExceedsTheWindow() async throws {
        let configuration = StreamMultiplexer.Configuration(initialWindow: 1000, maxDataChunk: 300)
        let written = Mutex<[Frame]>([])
        let (windowFull, windowFullContinuation) = AsyncStream.makeStream(of: Void.self)
        let opener = StreamMultiplexer(role: .opener, configuration: configuration) { buffer in
            let total = written.withLock { frames in
                frames.append(try! Frame(decoding: buffer))
                return frames.reduce(0) { $0 + $1.payload.readableBytes }
            }
            if total >= 1000 { windowFullContinuation.yield() }
        }
        let stream = try opener.openStream()
        // Nobody grants credit: the writer must stop after exactly one window.
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var writer = stream.makeBodyWriter()
                try? await writer.write(ByteBuffer(repeating: 1, count: 5000))
            }
            for await _ in windowFull { break }
            // The writer now waits for credit that never comes; a reset ends it.
            opener.shutdown(StreamResetReason(.connectionLost, "gone"))
            await group.waitForAll()
        }
        let total = written.withLock { $0.reduce(0) { $0 + $1.payload.readableBytes } }
        #expect(total == 1000)
        #expect(written.withLock { $0.allSatisfy { $0.payload.readableBytes <= 300 } })
    }

    @Test func aPeerThatIgnoresTheWindowIsAProtocolError() throws {
        let configuration = StreamMultiplexer.Configuration(initialWindow: 100, maxDataChunk: 100)
        let acceptor = StreamMultiplexer(role: .acceptor, configuration: configuration) { _ in }
        var head = ByteBuffer()
        try RequestHead(method: "POST", target: "/", headerFields: [:]).encode(into: &head)
        _ = try acceptor.receive(Frame(type: .requestHead, streamID: 1, payload: head).encoded())
        _ = try acceptor.receive(Frame(type: .data, streamID: 1, payload: ByteBuffer(repeating: 0, count: 100)).encoded())
        #expect(throws: TunnelProtocolError.flowControlViolation(streamID: 1)) {
            try acceptor.receive(Frame(type: .data, streamID: 1, payload: ByteBuffer(repeating: 0, count: 1)).encoded())
        }
    }

    @Test func shutdownEndsEveryOpenStream() async throws {
        let opener = StreamMultiplexer(role: .opener) { _ in }
        let first = try opener.openStream()
        let second = try opener.openStream()
        #expect(first.id == 1 && second.id == 3)
        opener.shutdown(StreamResetReason(.connectionLost, "bye"))
        for stream in [first, second] {
            var events = stream.events.makeAsyncIterator()
            guard case .reset(let reason) = await events.next() else {
                Issue.record("expected a reset")
                continue
            }
            #expect(reason.code == .connectionLost)
        }
        #expect(throws: StreamResetReason.self) { try opener.openStream() }
    }

    @Test func streamIDsMayArriveOutOfOrderButNotTwice() throws {
        let acceptor = StreamMultiplexer(role: .acceptor) { _ in }
        var head = ByteBuffer()
        try RequestHead(method: "GET", target: "", headerFields: [:]).encode(into: &head)
        _ = try acceptor.receive(Frame(type: .requestHead, flags: .endStream, streamID: 5, payload: head).encoded())
        #expect(try acceptor.receive(Frame(type: .requestHead, streamID: 3, payload: head).encoded()) != nil)
        #expect(throws: TunnelProtocolError.invalidStreamID(5)) {
            try acceptor.receive(Frame(type: .requestHead, streamID: 5, payload: head).encoded())
        }
        #expect(throws: TunnelProtocolError.invalidStreamID(4)) {
            try acceptor.receive(Frame(type: .requestHead, streamID: 4, payload: head).encoded())
        }
    }

    @Test func aFewLateFramesAreIgnoredAFloodEndsTheConnection() throws {
        let acceptor = StreamMultiplexer(role: .acceptor) { _ in }
        let late = Frame(type: .data, streamID: 7, payload: ByteBuffer(string: "late")).encoded()
        for _ in 0..<64 { #expect(try acceptor.receive(late) == nil) }
        #expect(throws: TunnelProtocolError.unexpectedFrame("too many frames for streams that are not open")) {
            try acceptor.receive(Frame(type: .end, streamID: 9).encoded())
        }
    }

    @Test func theLastDataFrameMayEndTheBody() async throws {
        let frames = FrameLog()
        let sender = StreamMultiplexer(role: .opener) { frames.append($0) }
        let stream = try sender.openStream()
        var writer = stream.makeBodyWriter()
        try await writer.write(ByteBuffer(string: "first "))
        try await writer.finish(with: ByteBuffer(string: "last"))
        let sent = try frames.all.map { try Frame(decoding: $0) }
        #expect(sent.map(\.type) == [.data, .data])
        #expect(sent.map(\.flags) == [[], .endStream])

        let acceptor = StreamMultiplexer(role: .acceptor) { _ in }
        var head = ByteBuffer()
        try RequestHead(method: "POST", target: "", headerFields: [:]).encode(into: &head)
        let incoming = try #require(try acceptor.receive(Frame(type: .requestHead, streamID: 1, payload: head).encoded()))
        for frame in frames.all { _ = try acceptor.receive(frame) }
        var body = ""
        for try await chunk in incoming.stream.inboundBody() { body += String(buffer: chunk) }
        #expect(body == "first last")
    }
}

/// Frames a multiplexer wrote, in order.
final class FrameLog: Sendable {
    private let frames = Mutex<[ByteBuffer]>([])
    func append(_ frame: ByteBuffer) { frames.withLock { $0.append(frame) } }
    var all: [ByteBuffer] { frames.withLock { $0 } }
}
