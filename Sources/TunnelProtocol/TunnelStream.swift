public import NIOCore

/// One request/response exchange inside a ``StreamMultiplexer``.
///
/// A stream is a cheap handle: the multiplexer owns its state. The side that
/// reads ``events`` must be a single task; the side that writes a body uses one
/// ``BodyWriter`` at a time.
public struct TunnelStream: Sendable {
    public let id: UInt32
    /// Everything the peer sends on this stream, in order.
    public let events: AsyncStream<StreamEvent>
    let credits: AsyncStream<Int>
    let multiplexer: StreamMultiplexer

    init(id: UInt32, events: AsyncStream<StreamEvent>, credits: AsyncStream<Int>, multiplexer: StreamMultiplexer) {
        self.id = id
        self.events = events
        self.credits = credits
        self.multiplexer = multiplexer
    }

    /// Sends REQUEST_HEAD, which opens the stream at the peer.
    public func sendRequestHead(_ head: RequestHead, endStream: Bool) async throws {
        var payload = ByteBuffer()
        try head.encode(into: &payload)
        try await self.multiplexer.write(
            Frame(type: .requestHead, flags: endStream ? .endStream : [], streamID: self.id, payload: payload)
        )
    }

    /// Sends RESPONSE_HEAD.
    public func sendResponseHead(_ head: ResponseHead, endStream: Bool) async throws {
        var payload = ByteBuffer()
        try head.encode(into: &payload)
        try await self.multiplexer.write(
            Frame(type: .responseHead, flags: endStream ? .endStream : [], streamID: self.id, payload: payload)
        )
    }

    /// Abandons the stream: tells the peer (best effort) and forgets it locally.
    public func reset(_ reason: StreamResetReason) async {
        var payload = ByteBuffer()
        reason.encode(into: &payload)
        self.multiplexer.release(self.id)
        try? await self.multiplexer.write(Frame(type: .reset, streamID: self.id, payload: payload))
    }

    /// Wakes the task reading ``events`` with a local failure (a timer fired,
    /// the sender went away) without telling the peer.
    public func inject(_ reason: StreamResetReason) {
        self.multiplexer.inject(reason, into: self.id)
    }

    /// Forgets the stream once its exchange is over. Safe to call twice.
    public func release() {
        self.multiplexer.release(self.id)
    }

    /// Tells the multiplexer the consumer took `count` body bytes, and returns
    /// credit to the peer when enough has piled up.
    public func acknowledge(_ count: Int) async throws {
        let credit = self.multiplexer.acknowledge(count, on: self.id)
        guard credit > 0 else { return }
        var payload = ByteBuffer()
        payload.writeInteger(UInt32(credit))
        try await self.multiplexer.write(Frame(type: .windowUpdate, streamID: self.id, payload: payload))
    }

    /// A writer for this stream's body that respects the peer's window.
    public func makeBodyWriter() -> BodyWriter {
        BodyWriter(stream: self)
    }

    /// The peer's body on this stream, acknowledged as it is consumed. It ends
    /// at END and throws the ``StreamResetReason`` on RESET. Only for streams
    /// whose head has already been read (or that the peer opened).
    public func inboundBody() -> InboundBody {
        InboundBody(stream: self)
    }
}

extension TunnelStream {
    /// Writes a body as DATA frames no larger than the multiplexer's chunk
    /// size, waiting for WINDOW_UPDATE credit whenever the window is used up.
    public struct BodyWriter {
        let stream: TunnelStream
        var credits: AsyncStream<Int>.Iterator
        var available: Int
        /// Body bytes written so far.
        public private(set) var bytesWritten = 0

        init(stream: TunnelStream) {
            self.stream = stream
            self.credits = stream.credits.makeAsyncIterator()
            self.available = stream.multiplexer.configuration.initialWindow
        }

        public mutating func write(_ buffer: ByteBuffer) async throws {
            try await self.write(buffer, last: false)
        }

        /// Writes the body's last bytes and ends it: the final DATA frame carries END_STREAM, so no
        /// separate END goes out (an empty buffer sends a plain END).
        public mutating func finish(with last: ByteBuffer) async throws {
            guard last.readableBytes > 0 else { return try await self.finish() }
            try await self.write(last, last: true)
        }

        private mutating func write(_ buffer: ByteBuffer, last: Bool) async throws {
            var buffer = buffer
            let maxChunk = self.stream.multiplexer.configuration.maxDataChunk
            while buffer.readableBytes > 0 {
                while self.available == 0 {
                    guard let credit = await self.credits.next() else {
                        throw StreamResetReason(.cancelled, "the stream was closed by the peer")
                    }
                    self.available += credit
                }
                let size = min(buffer.readableBytes, maxChunk, self.available)
                let chunk = buffer.readSlice(length: size)!
                self.available -= size
                self.bytesWritten += size
                let flags: FrameFlags = last && buffer.readableBytes == 0 ? .endStream : []
                try await self.stream.multiplexer.write(Frame(type: .data, flags: flags, streamID: self.stream.id, payload: chunk))
            }
        }

        /// Writes all of `body` and ends it. Each chunk is held until the next
        /// arrives, so the last one goes out with END_STREAM instead of a
        /// separate END message (one WebSocket message fewer per webhook).
        /// `observe` sees every chunk as it arrives and may throw to stop.
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
            if let last = held {
                try await self.finish(with: last)
            } else {
                try await self.finish()
            }
        }

        /// Sends END.
        public func finish() async throws {
            try await self.stream.multiplexer.write(Frame(type: .end, streamID: self.stream.id))
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
