/// The state of one stream: each direction's half and both flow-control windows.
///
/// A stream carries one request one way and its answer the other. Each direction ("half") goes
/// `idle` (no head yet) → `open` (head sent, body may follow) → `closed` (END or END_STREAM), and
/// the stream is over when both halves are closed or either side resets it. The machine only
/// decides; ``MultiplexerStateMachine`` owns the table of streams and turns decisions into actions.
/// docs/architecture.md, "Who owns a stream's state", has the rules in prose.
struct StreamStateMachine: Sendable {
    enum Half: Sendable, Equatable {
        /// No head yet in this direction.
        case idle
        /// Head sent or received; body bytes may follow.
        case open
        /// END_STREAM or END: nothing more in this direction.
        case closed
    }

    /// What this side sends: the request for the opener, the answer for the acceptor.
    private(set) var sending: Half
    /// What the peer sends.
    private(set) var receiving: Half
    /// Body bytes this side may still send before the peer's next WINDOW_UPDATE.
    private(set) var sendWindow: Int
    /// Body bytes received and not yet credited back: at most the window, or the peer broke the rules.
    private(set) var receivedOutstanding = 0
    /// Bytes the consumer took that are not yet credited back (credit goes out in batches).
    private(set) var consumedUncredited = 0
    /// Window this side granted beyond the protocol's initial one (``widenReceiveWindow(to:initial:)``).
    private(set) var receiveWindowExtra = 0

    /// A stream this side opened: nothing sent or received yet.
    static func opened(window: Int) -> Self {
        Self(sending: .idle, receiving: .idle, sendWindow: window)
    }

    /// A stream the peer opened with its head (`endStream`: the head had no body).
    static func accepted(window: Int, endStream: Bool) -> Self {
        Self(sending: .idle, receiving: endStream ? .closed : .open, sendWindow: window)
    }

    var isClosed: Bool { self.sending == .closed && self.receiving == .closed }

    // MARK: Sending

    enum SendDecision: Equatable {
        /// Send it; `closesStream` when this frame completes both directions.
        case send(closesStream: Bool)
        /// Not allowed in this state (a head twice, body before head or after END): a bug of the caller.
        case invalid
    }

    mutating func sendHead(endStream: Bool) -> SendDecision {
        guard self.sending == .idle else { return .invalid }
        self.sending = endStream ? .closed : .open
        return .send(closesStream: self.isClosed)
    }

    /// A DATA frame of `count` bytes; the caller sends no more than ``sendWindow``.
    mutating func sendData(count: Int, endStream: Bool) -> SendDecision {
        guard self.sending == .open, count <= self.sendWindow else { return .invalid }
        self.sendWindow -= count
        if endStream { self.sending = .closed }
        return .send(closesStream: self.isClosed)
    }

    mutating func sendEnd() -> SendDecision {
        guard self.sending == .open else { return .invalid }
        self.sending = .closed
        return .send(closesStream: self.isClosed)
    }

    // MARK: Receiving

    enum ReceiveDecision: Equatable {
        /// Deliver it; `closesStream` when it completes both directions.
        case deliver(closesStream: Bool)
        /// The frame breaks this stream's rules (body before head, a second head, body after END): reset the stream.
        case streamError(String)
        /// More body than the window allows: the peer broke the connection's rules.
        case flowControlViolation
    }

    mutating func receiveHead(endStream: Bool) -> ReceiveDecision {
        guard self.receiving == .idle else { return .streamError("a second head on one stream") }
        self.receiving = endStream ? .closed : .open
        return .deliver(closesStream: self.isClosed)
    }

    mutating func receiveData(count: Int, endStream: Bool, window: Int) -> ReceiveDecision {
        switch self.receiving {
        case .idle: return .streamError("body before head")
        case .closed: return .streamError("body after the end")
        case .open: break
        }
        self.receivedOutstanding += count
        guard self.receivedOutstanding <= window + self.receiveWindowExtra else { return .flowControlViolation }
        if endStream { self.receiving = .closed }
        return .deliver(closesStream: self.isClosed)
    }

    mutating func receiveEnd() -> ReceiveDecision {
        switch self.receiving {
        case .idle: return .streamError("end before head")
        case .closed: return .streamError("a second end")
        case .open: break
        }
        self.receiving = .closed
        return .deliver(closesStream: self.isClosed)
    }

    /// Grants the peer a receive window of `size` in all, beyond the protocol's `initial` one, for a
    /// body known or likely to be large. Returns the WINDOW_UPDATE increment to send (0: nothing,
    /// the body is over or the window is already that large).
    mutating func widenReceiveWindow(to size: Int, initial: Int) -> Int {
        guard self.receiving == .open, initial + self.receiveWindowExtra < size else { return 0 }
        let increment = size - initial - self.receiveWindowExtra
        self.receiveWindowExtra += increment
        return increment
    }

    /// The peer's WINDOW_UPDATE. Credit for a direction that is over is harmless and ignored.
    mutating func receiveCredit(_ increment: Int) -> Bool {
        guard self.sending != .closed else { return false }
        // Never let a confused peer wrap the window; anything above 2^31 is as good as infinite.
        self.sendWindow = min(self.sendWindow + increment, Int(Int32.max))
        return true
    }

    // MARK: Credit back to the peer

    /// The consumer took `count` received bytes. Returns the credit to send now: consumed bytes are
    /// batched until they reach `threshold` (a quarter of the window), so a WINDOW_UPDATE goes out per
    /// 64 KiB rather than per chunk; none once the peer has sent its END, since nothing more comes.
    mutating func consume(_ count: Int, threshold: Int) -> Int {
        guard self.receiving == .open else { return 0 }
        self.consumedUncredited += count
        guard self.consumedUncredited >= threshold else { return 0 }
        let credit = self.consumedUncredited
        self.receivedOutstanding -= credit
        self.consumedUncredited = 0
        return credit
    }
}
