public import NIOCore
import Synchronization

/// Carries many concurrent request/response streams over one message-based
/// connection (a WebSocket), with per-stream flow control.
///
/// The multiplexer does no I/O itself: it is handed every received message
/// through ``receive(_:)`` and sends through the `write` closure it was made
/// with. Each stream gets an `AsyncStream` of events; flow control bounds what
/// can pile up in it. A sender may have at most ``Configuration/initialWindow``
/// unacknowledged body bytes in flight per stream, and the receiver returns
/// credit (WINDOW_UPDATE) only as its consumer takes the bytes. A slow local app
/// or a slow sender therefore stalls only its own stream, and memory stays
/// bounded by `streams × window`.
///
/// The stream table is guarded by a `Mutex`: it is touched once per frame from
/// the connection's reader and from each stream's task, and the critical
/// sections are a dictionary lookup, so an actor hop per frame would cost more
/// than it protects.
public final class StreamMultiplexer: Sendable {
    public struct Configuration: Sendable {
        /// Unacknowledged body bytes a sender may have in flight on one stream.
        public var initialWindow: Int
        /// Largest DATA payload this side sends.
        public var maxDataChunk: Int
        /// Streams this side may have open at once; ``StreamMultiplexer/openStream()``
        /// refuses more, so one busy channel cannot take a server's memory.
        public var maxOpenStreams: Int

        public init(initialWindow: Int = 256 * 1024, maxDataChunk: Int = 64 * 1024, maxOpenStreams: Int = .max) {
            self.initialWindow = initialWindow
            self.maxDataChunk = maxDataChunk
            self.maxOpenStreams = maxOpenStreams
        }
    }

    /// The server opens streams (one per webhook); the client accepts them.
    public enum Role: Sendable {
        case opener
        case acceptor
    }

    public typealias Writer = @Sendable (ByteBuffer) async throws -> Void

    struct Entry {
        var events: AsyncStream<StreamEvent>.Continuation
        var credits: AsyncStream<Int>.Continuation
        /// Body bytes received and not yet credited back to the peer.
        var outstanding = 0
        /// Bytes the consumer took that have not been credited back yet.
        var consumed = 0
    }

    struct State {
        var streams: [UInt32: Entry] = [:]
        var nextStreamID: UInt32 = 1
        var closedReason: StreamResetReason?
        /// Streams opened on this connection, and frames that arrived for streams not open.
        var streamsOpened = 0
        var strayFrames = 0

        /// Counts a frame for a stream that is not open. A few are normal (frames in flight when a
        /// stream was reset: at most a window's worth of DATA and an END per stream); a peer that
        /// sends many more is flooding the connection, which would starve every other channel.
        mutating func noteStray() -> Bool {
            strayFrames += 1
            return strayFrames <= 64 + 8 * streamsOpened
        }
    }

    public let role: Role
    public let configuration: Configuration
    let writer: Writer
    let state = Mutex(State())

    public init(role: Role, configuration: Configuration = .init(), write: @escaping Writer) {
        self.role = role
        self.configuration = configuration
        self.writer = write
    }

    /// Streams currently open.
    public var openStreamCount: Int {
        self.state.withLock { $0.streams.count }
    }

    /// Opens a new stream (server side). Throws when the connection has ended.
    public func openStream() throws(StreamResetReason) -> TunnelStream {
        precondition(self.role == .opener, "only the opener side opens streams")
        let result: Result<TunnelStream, StreamResetReason> = self.state.withLock { state in
            if let reason = state.closedReason { return .failure(reason) }
            guard state.streams.count < self.configuration.maxOpenStreams else {
                return .failure(StreamResetReason(.tooManyStreams, "too many webhooks in flight on this channel"))
            }
            let id = state.nextStreamID
            state.nextStreamID &+= 2
            return .success(self.makeStream(id: id, in: &state))
        }
        return try result.get()
    }

    private func makeStream(id: UInt32, in state: inout State) -> TunnelStream {
        let (events, eventsContinuation) = AsyncStream.makeStream(of: StreamEvent.self)
        let (credits, creditsContinuation) = AsyncStream.makeStream(of: Int.self)
        state.streams[id] = Entry(events: eventsContinuation, credits: creditsContinuation)
        state.streamsOpened += 1
        return TunnelStream(id: id, events: events, credits: credits, multiplexer: self)
    }

    /// A stream the peer opened, with the request that opened it.
    public struct IncomingStream: Sendable {
        public var stream: TunnelStream
        public var head: RequestHead
        /// True when the request has no body.
        public var endStream: Bool
    }

    /// Handles one received message. Returns a new stream when the message
    /// opened one (client side). Throws on frames that break the protocol for
    /// the whole connection; the caller should then close it.
    public func receive(_ message: ByteBuffer) throws(TunnelProtocolError) -> IncomingStream? {
        let frame = try Frame(decoding: message)
        switch frame.type {
        case .requestHead:
            guard self.role == .acceptor else { throw .unexpectedFrame("REQUEST_HEAD sent to the server") }
            let head = try RequestHead(decoding: frame.payload)
            let stream: TunnelStream? = self.state.withLock { state in
                guard state.closedReason == nil else { return nil }
                // Ids are never reused, but heads of concurrent webhooks may
                // arrive out of id order: only an open id is a duplicate.
                guard frame.streamID & 1 == 1, state.streams[frame.streamID] == nil else { return nil }
                return self.makeStream(id: frame.streamID, in: &state)
            }
            guard let stream else { throw .invalidStreamID(frame.streamID) }
            return IncomingStream(stream: stream, head: head, endStream: frame.flags.contains(.endStream))

        case .responseHead:
            guard self.role == .opener else { throw .unexpectedFrame("RESPONSE_HEAD sent to the client") }
            let head = try ResponseHead(decoding: frame.payload)
            try self.deliver(.responseHead(head, endStream: frame.flags.contains(.endStream)), to: frame.streamID)

        case .data:
            let count = frame.payload.readableBytes
            let window = self.configuration.initialWindow
            let accepted: Bool = self.state.withLock { state in
                guard var entry = state.streams[frame.streamID] else { return state.noteStray() }
                entry.outstanding += count
                guard entry.outstanding <= window else { return false }
                state.streams[frame.streamID] = entry
                entry.events.yield(.data(frame.payload))
                if frame.flags.contains(.endStream) { entry.events.yield(.end) }
                return true
            }
            if !accepted {
                let stray = self.state.withLock { $0.streams[frame.streamID] == nil }
                if stray { throw .unexpectedFrame("too many frames for streams that are not open") }
                throw .flowControlViolation(streamID: frame.streamID)
            }

        case .end:
            try self.deliver(.end, to: frame.streamID)

        case .reset:
            let reason = try StreamResetReason(decoding: frame.payload)
            self.finish(frame.streamID, with: reason)

        case .windowUpdate:
            var payload = frame.payload
            guard let increment: UInt32 = payload.readInteger(), increment > 0 else {
                throw .invalidField("window increment")
            }
            let known = self.state.withLock { state in
                guard let entry = state.streams[frame.streamID] else { return state.noteStray() }
                entry.credits.yield(Int(increment))
                return true
            }
            if !known { throw .unexpectedFrame("too many frames for streams that are not open") }
        }
        return nil
    }

    /// Delivers a peer's frame to its stream; throws when a peer floods frames for streams not open.
    private func deliver(_ event: StreamEvent, to id: UInt32) throws(TunnelProtocolError) {
        let accepted = self.state.withLock { state in
            guard let entry = state.streams[id] else { return state.noteStray() }
            entry.events.yield(event)
            return true
        }
        if !accepted { throw .unexpectedFrame("too many frames for streams that are not open") }
    }

    /// Delivers a local event (an injected failure); an unknown stream is simply gone.
    private func deliverLocal(_ event: StreamEvent, to id: UInt32) {
        self.state.withLock { state in
            _ = state.streams[id]?.events.yield(event)
        }
    }

    /// Ends one stream locally with `reason`: its consumer sees `.reset(reason)`.
    func finish(_ id: UInt32, with reason: StreamResetReason) {
        let entry = self.state.withLock { $0.streams.removeValue(forKey: id) }
        guard let entry else { return }
        entry.events.yield(.reset(reason))
        entry.events.finish()
        entry.credits.finish()
    }

    /// Injects a local failure into a stream without removing it, so the task
    /// waiting on its events wakes up (body upload failed, timer fired).
    func inject(_ reason: StreamResetReason, into id: UInt32) {
        self.deliverLocal(.reset(reason), to: id)
    }

    /// Forgets a stream whose work is done. Late frames for it are ignored.
    func release(_ id: UInt32) {
        let entry = self.state.withLock { $0.streams.removeValue(forKey: id) }
        entry?.events.finish()
        entry?.credits.finish()
    }

    /// The connection ended: every open stream ends with `reason`, and no new
    /// stream can be opened.
    public func shutdown(_ reason: StreamResetReason) {
        let entries = self.state.withLock { state in
            if state.closedReason == nil { state.closedReason = reason }
            defer { state.streams.removeAll() }
            return Array(state.streams.values)
        }
        for entry in entries {
            entry.events.yield(.reset(reason))
            entry.events.finish()
            entry.credits.finish()
        }
    }

    /// Records that the consumer took `count` bytes and returns the credit to
    /// give back to the peer now: consumed bytes are batched until they reach a
    /// quarter of the window, so a WINDOW_UPDATE goes out every 64 KiB rather
    /// than once per chunk.
    func acknowledge(_ count: Int, on id: UInt32) -> Int {
        let threshold = max(1, self.configuration.initialWindow / 4)
        return self.state.withLock { state in
            guard var entry = state.streams[id] else { return 0 }
            entry.consumed += count
            var credit = 0
            if entry.consumed >= threshold {
                credit = entry.consumed
                entry.outstanding -= credit
                entry.consumed = 0
            }
            state.streams[id] = entry
            return credit
        }
    }

    /// Sends a frame. A failure of the connection underneath is reported as `connectionLost`, so every
    /// caller (body writers, credit, heads) can tell a lost peer from a failure of its own.
    func write(_ frame: Frame) async throws {
        do {
            try await self.writer(frame.encoded())
        } catch let error as StreamResetReason {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw StreamResetReason(.connectionLost, "the tunnel connection was lost")
        }
    }
}
