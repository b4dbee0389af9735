public import NIOCore
public import TunnelProtocol

/// One stream of a tunnel, for async code: the server's rarer paths (a webhook that waited for its
/// client, a queued delivery) and tests. The hot paths own their streams on the event loop instead
/// (``TunnelStreamDelegate``); this adapter is such an owner that turns what arrives into an
/// `AsyncStream` and hops every write onto the loop.
///
/// The side that reads ``events`` must be a single task; the side that writes a body uses one
/// ``BodyWriter`` at a time.
public struct TunnelStream: Sendable {
    public let id: UInt32
    let owner: Owner
    let connection: TunnelConnection

    /// Everything the peer sends on this stream, in order; a reset ends it with `.reset`.
    public var events: AsyncStream<StreamEvent> { self.owner.events }

    init(id: UInt32, owner: Owner, connection: TunnelConnection) {
        self.id = id
        self.owner = owner
        self.connection = connection
    }

    /// The stream's owner on the loop: forwards parts into ``events`` and credit into a signal.
    final class Owner: TunnelStreamDelegate, Sendable {
        let events: AsyncStream<StreamEvent>
        let eventsContinuation: AsyncStream<StreamEvent>.Continuation
        /// One buffered signal is enough: a writer that wakes re-checks the window by writing.
        let credits: AsyncStream<Void>
        let creditsContinuation: AsyncStream<Void>.Continuation

        init() {
            (self.events, self.eventsContinuation) = AsyncStream.makeStream(of: StreamEvent.self)
            (self.credits, self.creditsContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        }

        func tunnelStream(_ id: UInt32, didReceive part: StreamPart) {
            switch part {
            case .responseHead(let head, let endStream):
                self.eventsContinuation.yield(.responseHead(head, endStream: endStream))
            case .data(let buffer, let endStream):
                self.eventsContinuation.yield(.data(buffer))
                if endStream { self.eventsContinuation.yield(.end) }
            case .end:
                self.eventsContinuation.yield(.end)
            }
        }

        func tunnelStreamDidGainCredit(_ id: UInt32) {
            self.creditsContinuation.yield()
        }

        func tunnelStream(_ id: UInt32, didCloseWith reason: StreamResetReason?) {
            if let reason { self.eventsContinuation.yield(.reset(reason)) }
            self.eventsContinuation.finish()
            self.creditsContinuation.finish()
        }
    }

    static let gone = StreamResetReason(.connectionLost, "the stream ended before this was sent")

    /// Sends REQUEST_HEAD, which opens the stream at the peer.
    public func sendRequestHead(_ head: RequestHead, endStream: Bool) async throws {
        let id = self.id
        guard try await self.connection.submit({ $0.writeHead(head, endStream: endStream, on: id) }) else { throw Self.gone }
    }

    /// Sends RESPONSE_HEAD.
    public func sendResponseHead(_ head: ResponseHead, endStream: Bool) async throws {
        let id = self.id
        guard try await self.connection.submit({ $0.writeHead(head, endStream: endStream, on: id) }) else { throw Self.gone }
    }

    /// Abandons the stream: RESET to the peer if it was still open. Safe to call twice.
    public func reset(_ reason: StreamResetReason) async {
        let id = self.id
        self.connection.withHandler { $0.reset(id, reason) }
    }

    /// Wakes the task reading ``events`` with a local failure (a timer fired, the upload failed)
    /// without telling the peer; the caller then resets or releases the stream.
    public func inject(_ reason: StreamResetReason) {
        self.owner.eventsContinuation.yield(.reset(reason))
    }

    /// Ends the caller's interest in the stream. A stream that finished both ways is already gone
    /// and nothing happens; one still open (an upload the app did not wait for) is reset, so the
    /// peer stops sending and waiting (docs/architecture.md, "Who owns a stream's state").
    public func release() {
        let id = self.id
        self.connection.withHandler { $0.reset(id, StreamResetReason(.cancelled, "the other side is done with this webhook")) }
    }

    /// Tells the tunnel the consumer took `count` body bytes; credit goes back as it piles up.
    public func acknowledge(_ count: Int) async throws {
        let id = self.id
        self.connection.withHandler { $0.consume(count, on: id) }
    }

    /// A writer for this stream's body that respects the peer's window.
    public func makeBodyWriter() -> BodyWriter {
        BodyWriter(stream: self)
    }

    /// The peer's body on this stream, acknowledged as it is consumed. It ends at END and throws the
    /// ``StreamResetReason`` on RESET. Only for streams whose head has already been read (or that
    /// the peer opened).
    public func inboundBody() -> InboundBody {
        InboundBody(stream: self)
    }
}

extension TunnelStream {
    /// Writes a body through the tunnel handler, which splits it into DATA frames and holds what
    /// exceeds the peer's window; the writer waits for credit whenever bytes are held.
    public struct BodyWriter {
        let stream: TunnelStream
        var credits: AsyncStream<Void>.Iterator
        /// Body bytes written so far.
        public private(set) var bytesWritten = 0

        init(stream: TunnelStream) {
            self.stream = stream
            self.credits = stream.owner.credits.makeAsyncIterator()
        }

        public mutating func write(_ buffer: ByteBuffer) async throws {
            try await self.write(buffer, last: false)
        }

        /// Writes the body's last bytes and ends it: the final DATA frame carries END_STREAM, so no
        /// separate END goes out (an empty buffer sends a plain END).
        public mutating func finish(with last: ByteBuffer) async throws {
            try await self.write(last, last: true)
        }

        private mutating func write(_ buffer: ByteBuffer, last: Bool) async throws {
            let id = self.stream.id
            let mayContinue: Bool? = try await self.stream.connection.submit { handler in
                guard handler.isOpen(id) else { return nil }
                return handler.writeBody(buffer, endStream: last, on: id)
            }
            guard let mayContinue else { throw StreamResetReason(.cancelled, "the stream was closed") }
            self.bytesWritten += buffer.readableBytes
            if !mayContinue && !last {
                guard await self.credits.next() != nil else {
                    throw StreamResetReason(.cancelled, "the stream was closed by the peer")
                }
            }
        }

        /// Writes all of `body` and ends it. Each chunk is held until the next arrives, so the last
        /// one goes out with END_STREAM instead of a separate END message (one WebSocket message fewer
        /// per webhook). `observe` sees every chunk as it arrives and may throw to stop.
        public mutating func writeAll<Body: AsyncSequence>(
            _ body: Body,
            observe: (ByteBuffer) throws -> Void = { _ in }
        ) async throws where Body.Element == ByteBuffer {
            var held: ByteBuffer?
            for try await chunk in body {
                try observe(chunk)
                if let previous = held { try await self.write(previous) }
                held = chunk
            }
            try await self.finish(with: held ?? ByteBuffer())
        }

        /// Sends END.
        public mutating func finish() async throws {
            try await self.write(ByteBuffer(), last: true)
        }
    }

    /// See ``TunnelStream/inboundBody()``.
    public struct InboundBody: AsyncSequence, Sendable {
        public typealias Element = ByteBuffer
        let stream: TunnelStream

        public struct AsyncIterator: AsyncIteratorProtocol {
            let stream: TunnelStream
            var events: AsyncStream<StreamEvent>.Iterator
            var finished = false

            public mutating func next() async throws -> ByteBuffer? {
                guard !self.finished else { return nil }
                switch await self.events.next() {
                case .data(let buffer):
                    try await self.stream.acknowledge(buffer.readableBytes)
                    return buffer
                case .end:
                    self.finished = true
                    return nil
                case .reset(let reason):
                    self.finished = true
                    throw reason
                case .responseHead:
                    self.finished = true
                    throw StreamResetReason(.protocolError, "unexpected second response head")
                case nil:
                    self.finished = true
                    throw StreamResetReason(.cancelled, "the stream was closed")
                }
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(stream: self.stream, events: self.stream.events.makeAsyncIterator())
        }
    }
}
