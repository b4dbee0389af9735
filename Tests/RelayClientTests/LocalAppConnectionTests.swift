import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import RelayClient

/// ``LocalAppConnection`` on an `EmbeddedChannel` with NIO's HTTP/1 client codec: what it hands its
/// delegate, when it holds reads back, and how it ends.
@Suite("A connection to the local app")
struct LocalAppConnectionTests {
    /// Records what the connection hands over; body chunks are taken when `bodies` says so.
    final class Recorder: LocalAppConnectionDelegate {
        var events: [String] = []
        var promises: [EventLoopPromise<Void>] = []
        var holdsBodies = false
        let eventLoop: any EventLoop

        init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

        func localAppConnection(didReceiveHead head: HTTPResponseHead) { self.events.append("head \(head.status.code)") }

        func localAppConnection(didReceiveBody buffer: ByteBuffer) -> EventLoopFuture<Void> {
            self.events.append("body \(String(buffer: buffer))")
            guard self.holdsBodies else { return self.eventLoop.makeSucceededVoidFuture() }
            let promise = self.eventLoop.makePromise(of: Void.self)
            self.promises.append(promise)
            return promise.futureResult
        }

        func localAppConnectionDidFinish() { self.events.append("end") }

        func localAppConnection(didFail error: any Error, reusedWithoutAnswer: Bool) {
            self.events.append("failed reused=\(reusedWithoutAnswer)")
        }
    }

    /// Counts the reads that reach the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            self.reads += 1
            context.read()
        }
    }

    private func makeChannel() throws -> (EmbeddedChannel, LocalAppConnection, ReadCounter) {
        let channel = EmbeddedChannel()
        let counter = ReadCounter()
        let connection = LocalAppConnection(eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .dropBytes)
        try channel.pipeline.syncOperations.addHandler(connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        return (channel, connection, counter)
    }

    private func sendRequest(_ method: HTTPMethod, on connection: LocalAppConnection, _ channel: EmbeddedChannel) throws -> String {
        connection.writeHead(HTTPRequestHead(version: .http1_1, method: method, uri: "/", headers: ["Host": "app", "Content-Length": "0"]))
        connection.writeEnd(promise: nil)
        connection.flush()
        var written = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { written.writeBuffer(&chunk) }
        return String(buffer: written)
    }

    @Test("Head, body and end reach the delegate, and the request goes out in one flush")
    func answer() throws {
        let (channel, connection, _) = try self.makeChannel()
        let recorder = Recorder(eventLoop: channel.eventLoop)
        connection.begin(recorder)
        let request = try self.sendRequest(.POST, on: connection, channel)
        #expect(request.hasPrefix("POST / HTTP/1.1\r\n"))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        #expect(recorder.events == ["head 200", "body ok", "end"])
        // Outside a pool, a connection done with its request closes.
        #expect(!channel.isActive)
    }

    @Test("While the delegate holds a chunk, later ones wait and no read reaches the socket")
    func backPressure() throws {
        let (channel, connection, counter) = try self.makeChannel()
        let recorder = Recorder(eventLoop: channel.eventLoop)
        recorder.holdsBodies = true
        connection.begin(recorder)
        _ = try self.sendRequest(.GET, on: connection, channel)
        // Two chunks decoded from one read: the second waits for the first to be taken.
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n"))
        #expect(recorder.events == ["head 200", "body a"])
        let reads = counter.reads
        channel.read()
        #expect(counter.reads == reads)
        recorder.promises.removeFirst().succeed()
        #expect(recorder.events == ["head 200", "body a", "body b"])
        #expect(counter.reads == reads)
        // Taken: the held read goes to the socket.
        recorder.promises.removeFirst().succeed()
        #expect(counter.reads == reads + 1)
        try channel.writeInbound(ByteBuffer(string: "0\r\n\r\n"))
        #expect(recorder.events == ["head 200", "body a", "body b", "end"])
    }

    @Test("A HEAD answer has no body, whatever its Content-Length says")
    func head() throws {
        let (channel, connection, _) = try self.makeChannel()
        let recorder = Recorder(eventLoop: channel.eventLoop)
        connection.begin(recorder)
        _ = try self.sendRequest(.HEAD, on: connection, channel)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"))
        #expect(recorder.events == ["head 200", "end"])
    }

    @Test("100 Continue is skipped; the answer that follows is handed over")
    func informational() throws {
        let (channel, connection, _) = try self.makeChannel()
        let recorder = Recorder(eventLoop: channel.eventLoop)
        connection.begin(recorder)
        _ = try self.sendRequest(.POST, on: connection, channel)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
        #expect(recorder.events == ["head 204", "end"])
    }

    @Test("The app closing mid-answer fails the exchange, not as a retryable request")
    func closedMidAnswer() throws {
        let (channel, connection, _) = try self.makeChannel()
        let recorder = Recorder(eventLoop: channel.eventLoop)
        connection.begin(recorder)
        _ = try self.sendRequest(.GET, on: connection, channel)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
        try channel.close().wait()
        #expect(recorder.events == ["head 200", "body abc", "failed reused=false"])
    }

    @Test("An abandoned request closes the connection and tells the delegate nothing more")
    func abandoned() throws {
        let (channel, connection, _) = try self.makeChannel()
        let recorder = Recorder(eventLoop: channel.eventLoop)
        connection.begin(recorder)
        _ = try self.sendRequest(.GET, on: connection, channel)
        connection.abandon()
        #expect(!channel.isActive)
        #expect(recorder.events.isEmpty)
    }
}
