public import NIOCore

/// The stream table of one tunnel connection, as a state machine: it is told what arrived and what
/// this side wants to send, and answers with what to do. It does no I/O and keeps no callbacks, so
/// it is tested and fuzzed on its own; `TunnelHandler` (module TunnelTransport) performs its actions
/// on the connection's event loop, which is the only place it is touched from.
///
/// A stream ends in exactly one of three ways, and each removes it from the table here:
/// - both halves closed (the last END or END_STREAM sent or received): ``SendOutcome/sendClosing``
///   or a `closesStream` delivery;
/// - a reset, by either side or by a stream-level protocol error: ``resetStream(_:)`` or
///   ``ReceiveAction/resetByPeer(_:_:)`` / ``ReceiveAction/resetStream(_:_:)``;
/// - the connection ending: ``closeConnection(_:)``.
/// The obligations that go with each (send RESET, tell the stream's owner) are spelled out in the
/// actions. The rules are in docs/architecture.md, "Who owns a stream's state".
public struct MultiplexerStateMachine: Sendable {
    /// The server opens streams (one per webhook); the client accepts them.
    public enum Role: Sendable {
        case opener
        case acceptor
    }

    public let role: Role
    public let configuration: TunnelConfiguration
    private var streams: [UInt32: StreamStateMachine] = [:]
    private var nextStreamID: UInt32 = 1
    private var closedReason: StreamResetReason?
    /// Streams opened on this connection, and frames that arrived for streams not open.
    private var streamsOpened = 0
    private var strayFrames = 0
    /// Streams this side reset while the peer may still be sending: each may have a window of DATA in flight.
    private var streamsReset = 0

    public init(role: Role, configuration: TunnelConfiguration = .init()) {
        self.role = role
        self.configuration = configuration
    }

    /// Streams currently open.
    public var openStreamCount: Int { self.streams.count }

    /// Whether `id` is open.
    public func isOpen(_ id: UInt32) -> Bool { self.streams[id] != nil }

    /// Body bytes this side may send on `id` now (0 for a stream that is not open).
    public func sendWindow(_ id: UInt32) -> Int { self.streams[id]?.sendWindow ?? 0 }

    // MARK: Opening

    /// Opens a new stream (opener only). Fails when the connection has ended or too many are open.
    public mutating func openStream() throws(StreamResetReason) -> UInt32 {
        precondition(self.role == .opener, "only the opener side opens streams")
        if let reason = self.closedReason { throw reason }
        guard self.streams.count < self.configuration.maxOpenStreams else {
            throw StreamResetReason(.tooManyStreams, "too many webhooks in flight on this channel")
        }
        let id = self.nextStreamID
        self.nextStreamID &+= 2
        self.streams[id] = .opened(window: self.configuration.initialWindow)
        self.streamsOpened += 1
        return id
    }

    // MARK: Receiving

    /// What to do with one received frame.
    public enum ReceiveAction: Sendable {
        /// The peer opened a stream (acceptor): hand the request to a new owner.
        case open(UInt32, RequestHead, endStream: Bool)
        /// Deliver an event to the stream's owner; when `closesStream`, the stream is over after it.
        case deliver(UInt32, StreamPart, closesStream: Bool)
        /// The peer granted more window: the stream's writer may send more.
        case credit(UInt32)
        /// The peer reset the stream: tell its owner; it is gone.
        case resetByPeer(UInt32, StreamResetReason)
        /// The frame broke this stream's rules: send RESET with the reason and tell the owner; it is gone.
        case resetStream(UInt32, StreamResetReason)
        /// Nothing to do: a frame for a stream that ended a moment ago.
        case ignore
    }

    /// Decides what a received frame means. Throws on frames that break the protocol for the whole
    /// connection; the handler then closes it.
    public mutating func receive(_ frame: Frame) throws(TunnelProtocolError) -> ReceiveAction {
        let id = frame.streamID
        let endStream = frame.flags.contains(.endStream)
        switch frame.type {
        case .requestHead:
            guard self.role == .acceptor else { throw .unexpectedFrame("REQUEST_HEAD sent to the server") }
            let head = try RequestHead(decoding: frame.payload)
            // Ids are never reused, but heads of concurrent webhooks may arrive out of id order:
            // only an open id is a duplicate.
            guard id & 1 == 1, self.streams[id] == nil else { throw .invalidStreamID(id) }
            guard self.closedReason == nil else { return .ignore }
            self.streams[id] = .accepted(window: self.configuration.initialWindow, endStream: endStream)
            self.streamsOpened += 1
            return .open(id, head, endStream: endStream)

        case .responseHead:
            guard self.role == .opener else { throw .unexpectedFrame("RESPONSE_HEAD sent to the client") }
            let head = try ResponseHead(decoding: frame.payload)
            guard var stream = self.streams[id] else { return try self.stray() }
            let decision = stream.receiveHead(endStream: endStream)
            return try self.apply(decision, to: stream, id: id, event: .responseHead(head, endStream: endStream))

        case .data:
            guard var stream = self.streams[id] else { return try self.stray() }
            let decision = stream.receiveData(
                count: frame.payload.readableBytes,
                endStream: endStream,
                window: self.configuration.initialWindow
            )
            return try self.apply(decision, to: stream, id: id, event: .data(frame.payload, endStream: endStream))

        case .end:
            guard var stream = self.streams[id] else { return try self.stray() }
            let decision = stream.receiveEnd()
            return try self.apply(decision, to: stream, id: id, event: .end)

        case .reset:
            let reason = try StreamResetReason(decoding: frame.payload)
            guard self.streams.removeValue(forKey: id) != nil else { return try self.stray() }
            return .resetByPeer(id, reason)

        case .windowUpdate:
            var payload = frame.payload
            guard let increment: UInt32 = payload.readInteger(), increment > 0 else {
                throw .invalidField("window increment")
            }
            guard var stream = self.streams[id] else { return try self.stray() }
            let useful = stream.receiveCredit(Int(increment))
            self.streams[id] = stream
            return useful ? .credit(id) : .ignore
        }
    }

    private mutating func apply(
        _ decision: StreamStateMachine.ReceiveDecision,
        to stream: StreamStateMachine,
        id: UInt32,
        event: StreamPart
    ) throws(TunnelProtocolError) -> ReceiveAction {
        switch decision {
        case .deliver(let closes):
            if closes {
                self.streams[id] = nil
            } else {
                self.streams[id] = stream
            }
            return .deliver(id, event, closesStream: closes)
        case .streamError(let message):
            self.streams[id] = nil
            self.streamsReset += 1
            return .resetStream(id, StreamResetReason(.protocolError, message))
        case .flowControlViolation:
            throw .flowControlViolation(streamID: id)
        }
    }

    /// A frame for a stream that is not open. A few are normal (frames in flight when a stream was
    /// reset: at most a window's worth of DATA and an END per stream); a peer that sends many more is
    /// flooding the connection, which would starve every other channel.
    private mutating func stray() throws(TunnelProtocolError) -> ReceiveAction {
        self.strayFrames += 1
        // A window in flight may come in small frames; 512 bytes is the smallest a sane peer sends.
        let inFlightPerReset = max(1, max(self.configuration.initialWindow, self.configuration.widenedWindow) / 512)
        guard self.strayFrames <= 64 + 8 * self.streamsOpened + inFlightPerReset * self.streamsReset else {
            throw .unexpectedFrame("too many frames for streams that are not open")
        }
        return .ignore
    }

    // MARK: Sending

    /// Whether a frame this side wants to send may go.
    public enum SendOutcome: Sendable, Equatable {
        /// Send it; the stream stays open.
        case send
        /// Send it; it was the stream's last frame, so the stream is over: tell its owner.
        case sendClosing
        /// Drop it: the stream already ended (reset by the peer, or the connection closed) and its
        /// owner has been, or is being, told.
        case drop
    }

    /// REQUEST_HEAD (opener) or RESPONSE_HEAD (acceptor).
    public mutating func sendHead(on id: UInt32, endStream: Bool) -> SendOutcome {
        self.send(on: id) { $0.sendHead(endStream: endStream) }
    }

    /// A DATA frame of `count` bytes, which must be at most ``sendWindow(_:)``.
    public mutating func sendData(on id: UInt32, count: Int, endStream: Bool) -> SendOutcome {
        self.send(on: id) { $0.sendData(count: count, endStream: endStream) }
    }

    /// END.
    public mutating func sendEnd(on id: UInt32) -> SendOutcome {
        self.send(on: id) { $0.sendEnd() }
    }

    private mutating func send(
        on id: UInt32,
        _ transition: (inout StreamStateMachine) -> StreamStateMachine.SendDecision
    ) -> SendOutcome {
        guard var stream = self.streams[id] else { return .drop }
        switch transition(&stream) {
        case .send(let closes):
            if closes {
                self.streams[id] = nil
                return .sendClosing
            }
            self.streams[id] = stream
            return .send
        case .invalid:
            // A bug of the stream's owner (a second head, body after its end). It must not take the
            // connection's other streams down in production; tests catch it.
            assertionFailure("stream \(id): a frame out of order for this side (\(stream))")
            return .drop
        }
    }

    /// The consumer took `count` received body bytes on `id`. Returns the WINDOW_UPDATE increment to
    /// send now, if any (credit is batched; see ``StreamStateMachine``).
    public mutating func consume(_ count: Int, on id: UInt32) -> UInt32? {
        guard var stream = self.streams[id] else { return nil }
        let credit = stream.consume(count, threshold: max(1, self.configuration.initialWindow / 4))
        self.streams[id] = stream
        return credit > 0 ? UInt32(credit) : nil
    }

    /// Lets the peer send up to ``TunnelConfiguration/widenedWindow`` unacknowledged bytes on `id`
    /// instead of the initial window, for a body known or likely to be large: one window per round
    /// trip of credit bounded a 100 MiB upload at about 500 MB/s on loopback (docs/performance.md).
    /// Returns the WINDOW_UPDATE increment to send now, if any. A peer of any version honours it:
    /// it is ordinary credit.
    public mutating func widenReceiveWindow(on id: UInt32) -> UInt32? {
        guard var stream = self.streams[id] else { return nil }
        let increment = stream.widenReceiveWindow(to: self.configuration.widenedWindow, initial: self.configuration.initialWindow)
        self.streams[id] = stream
        return increment > 0 ? UInt32(increment) : nil
    }

    /// This side abandons `id`. Returns true when a RESET must go to the peer (the stream was open);
    /// false when it had already ended, in which case there is nothing to do.
    public mutating func resetStream(_ id: UInt32) -> Bool {
        guard self.streams.removeValue(forKey: id) != nil else { return false }
        self.streamsReset += 1
        return true
    }

    /// The connection ended: every open stream ends with `reason` and no new one can be opened.
    /// Returns the streams whose owners must be told.
    public mutating func closeConnection(_ reason: StreamResetReason) -> [UInt32] {
        if self.closedReason == nil { self.closedReason = reason }
        defer { self.streams.removeAll() }
        return self.streams.keys.sorted()
    }

    /// Why the connection ended, once it has.
    public var connectionClosedReason: StreamResetReason? { self.closedReason }
}

/// Limits of one tunnel connection.
public struct TunnelConfiguration: Sendable {
    /// Unacknowledged body bytes a sender may have in flight on one stream.
    public var initialWindow: Int
    /// Largest DATA payload this side sends.
    public var maxDataChunk: Int
    /// Streams this side may have open at once; ``MultiplexerStateMachine/openStream()`` refuses
    /// more, so one busy channel cannot take a server's memory.
    public var maxOpenStreams: Int
    /// The window a receiver grants a stream whose body is large (``MultiplexerStateMachine/widenReceiveWindow(on:)``).
    public var widenedWindow: Int

    public init(initialWindow: Int = 256 * 1024, maxDataChunk: Int = 64 * 1024, maxOpenStreams: Int = .max, widenedWindow: Int = 1024 * 1024) {
        self.initialWindow = initialWindow
        self.maxDataChunk = maxDataChunk
        self.maxOpenStreams = maxOpenStreams
        self.widenedWindow = widenedWindow
    }
}
