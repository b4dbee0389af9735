import NIOCore
import NIOHTTP1

/// What ``HTTPConnectionGuard`` knows about its connection, and what it does about it: one
/// record of a request's and its answer's progress for the three rules the guard keeps (slow and
/// idle senders, oversized heads, foreign upgrades), with no I/O. Times come in as arguments, so
/// tests drive it with their own.
///
/// A connection is between requests (idle since some time), reading a head that has started to
/// arrive, in an exchange (a head has arrived and the answer has not ended), or closing after a
/// 431. At most one deadline applies at a time (``deadline``): the idle limit between requests,
/// the head limit while a head arrives, the linger after a 431, none in an exchange (a webhook
/// has its own `--request-timeout`). The handler keeps one timer, armed when a deadline appears,
/// and asks ``timerFired(now:)`` what is due when it fires: a request served between two firings
/// costs a clock read, not a timer.
struct HTTPConnectionGuardStateMachine {
    /// How long a started request head may take to arrive (slowloris senders get 408).
    static let headTimeout: TimeAmount = .seconds(10)
    /// How long a kept-alive connection may wait for its next request. Above common proxies' own
    /// (Traefik: 90 s), so a proxy never sends a request on a connection the server is closing.
    static let idleTimeout: TimeAmount = .seconds(120)
    /// How long the rest of an oversized head is read and dropped after the 431 (nginx lingers
    /// the same way: closing with bytes unread makes the kernel reset the connection, which can
    /// destroy the answer before the sender reads it).
    static let lingerTimeout: TimeAmount = .seconds(2)

    enum Phase: Equatable {
        case betweenRequests(since: NIODeadline)
        case readingHead(since: NIODeadline)
        case inExchange
        /// The 431 went out: everything that arrives is dropped until the sender closes or `until`.
        case closing(until: NIODeadline)
    }

    private(set) var phase: Phase
    /// An answer has started and not ended: no error answer can be written now.
    private var answering = false
    /// A foreign upgrade was taken off the request being answered.
    private var closeAfterAnswer = false

    init(now: NIODeadline) {
        self.phase = .betweenRequests(since: now)
    }

    /// When the current phase's limit runs out, if it has one.
    var deadline: NIODeadline? {
        switch self.phase {
        case .betweenRequests(let since): since + Self.idleTimeout
        case .readingHead(let since): since + Self.headTimeout
        case .inExchange: nil
        case .closing(let until): until
        }
    }

    // MARK: Reads

    enum HeadAction: Equatable {
        case forward
        /// Forward this head instead: the request's foreign upgrade taken off.
        case forwardPlain(HTTPRequestHead)
        case drop
    }

    mutating func receivedHead(_ head: HTTPRequestHead) -> HeadAction {
        if case .closing = self.phase { return .drop }
        self.phase = .inExchange
        guard let plain = ForeignUpgrade.removed(from: head) else { return .forward }
        self.closeAfterAnswer = true
        return .forwardPlain(plain)
    }

    /// Whether a body part or a request's end goes on.
    func receivedBodyOrEnd() -> Bool {
        if case .closing = self.phase { return false }
        return true
    }

    /// A read ended. Bytes that came between requests without completing a head start the head
    /// limit: returns true when that gave the connection an earlier deadline than before.
    mutating func readComplete(now: NIODeadline) -> Bool {
        guard case .betweenRequests = self.phase else { return false }
        self.phase = .readingHead(since: now)
        return true
    }

    // MARK: Writes

    enum AnswerHeadAction: Equatable {
        case write
        /// Write the head with `Connection: close`: the connection ends after this answer.
        case writeClosing
    }

    mutating func writingHead(status: HTTPResponseStatus) -> AnswerHeadAction {
        guard status.code >= 200 else { return .write }
        self.answering = true
        return self.closeAfterAnswer ? .writeClosing : .write
    }

    enum AnswerEndAction: Equatable {
        case write
        /// Close the connection once the end is written.
        case writeThenClose
    }

    mutating func writingEnd(now: NIODeadline) -> AnswerEndAction {
        self.answering = false
        if case .inExchange = self.phase { self.phase = .betweenRequests(since: now) }
        return self.closeAfterAnswer ? .writeThenClose : .write
    }

    // MARK: Errors and time

    enum ErrorAction: Equatable {
        case forward
        case swallow
        /// Answer 431, shut the output and drop what still arrives until ``deadline``.
        case answerHeadTooLarge
    }

    /// An error from the parser or the channel. Only an oversized head outside an answer is
    /// answered here (431 instead of NIO's generic 400); after a 431 every error is swallowed.
    mutating func caught(headTooLarge: Bool, now: NIODeadline) -> ErrorAction {
        if case .closing = self.phase { return .swallow }
        guard headTooLarge, !self.answering else { return .forward }
        self.phase = .closing(until: now + Self.lingerTimeout)
        return .answerHeadTooLarge
    }

    enum TimerAction: Equatable {
        /// Nothing is due and nothing needs a timer.
        case none
        /// The limit moved (a request came and went since the timer was armed): fire again then.
        case rearm(NIODeadline)
        /// The head did not arrive in time: answer 408, then close.
        case answerTimeoutAndClose
        case close
    }

    func timerFired(now: NIODeadline) -> TimerAction {
        guard let deadline = self.deadline else { return .none }
        guard deadline <= now else { return .rearm(deadline) }
        if case .readingHead = self.phase { return .answerTimeoutAndClose }
        return .close
    }
}
