public import NIOCore

/// Timeouts on one event loop for work that nearly always ends long before them: a webhook's wait
/// for its answer, on either side of the tunnel.
///
/// `EventLoop.scheduleTask` per webhook allocates a task and a promise, and cancelling it searches
/// the loop's queue of scheduled tasks: with 64 webhooks in flight, scheduling and cancelling was
/// 2.6 % of the client's event loop (docs/performance.md). Here a timeout is one small object in a
/// queue ordered by deadline, cancelling it only marks it, and the loop holds one timer for the
/// earliest deadline. Each loop has a queue per timeout length, so deadlines come in order and
/// adding and removing are O(1) however many of another length wait (a connection's 10 s head
/// limit beside its 120 s idle one, say).
///
/// Not thread-safe: use it on its event loop only, through ``schedule(in:on:_:)``.
public final class DeadlineQueue {
    private static let queues = PerLoop<Int, DeadlineQueue>()

    /// Runs `action` on `eventLoop` (the calling thread's) after `amount`, unless the returned
    /// timeout is cancelled first. The timeout goes into the loop's queue for `amount`.
    public static func schedule(in amount: TimeAmount, on eventLoop: any EventLoop, _ action: @escaping () -> Void) -> Timeout {
        Self.on(eventLoop, for: amount).schedule(in: amount, action)
    }

    /// The queue of `eventLoop` for timeouts of `length`.
    static func on(_ eventLoop: any EventLoop, for length: TimeAmount) -> DeadlineQueue {
        Self.queues.value(on: eventLoop, for: Int(max(length.nanoseconds, 1))) { DeadlineQueue(eventLoop: eventLoop) }
    }

    /// A queue of `eventLoop` that takes timeouts of any length, in deadline order (for tests).
    static func on(_ eventLoop: any EventLoop) -> DeadlineQueue {
        Self.queues.value(on: eventLoop, for: 0) { DeadlineQueue(eventLoop: eventLoop) }
    }

    /// One timeout; ``cancel()`` it when the work ends first.
    public final class Timeout {
        fileprivate let deadline: NIODeadline
        fileprivate var action: (() -> Void)?
        fileprivate let queue: DeadlineQueue

        fileprivate init(deadline: NIODeadline, action: @escaping () -> Void, queue: DeadlineQueue) {
            self.deadline = deadline
            self.action = action
            self.queue = queue
        }

        /// The work ended: the action will not run. Does nothing if it ran or was cancelled.
        public func cancel() {
            guard self.action != nil else { return }
            self.action = nil
            self.queue.cancelled()
        }
    }

    private let eventLoop: any EventLoop
    /// Earliest deadline first.
    private var timeouts = CircularBuffer<Timeout>()
    private var timer: Scheduled<Void>?
    /// When the armed timer fires.
    private var armedFor: NIODeadline?
    /// Cancelled timeouts still in `timeouts`.
    private var cancelledCount = 0

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `action` on the loop after `amount`, unless the returned timeout is cancelled first.
    func schedule(in amount: TimeAmount, _ action: @escaping () -> Void) -> Timeout {
        self.eventLoop.assertInEventLoop()
        let timeout = Timeout(deadline: self.eventLoop.now + amount, action: action, queue: self)
        // In order, from the back: in a queue of one length the new one is always the latest.
        var index = self.timeouts.endIndex
        while index > self.timeouts.startIndex, self.timeouts[self.timeouts.index(before: index)].deadline > timeout.deadline {
            index = self.timeouts.index(before: index)
        }
        if index == self.timeouts.endIndex {
            self.timeouts.append(timeout)
        } else {
            self.timeouts.insert(timeout, at: index)
        }
        self.arm()
        return timeout
    }

    /// How many timeouts are waiting, cancelled or not (for tests).
    var count: Int { self.timeouts.count }

    /// A cancelled timeout leaves the queue at once when it is the earliest (work that ends in
    /// order), else when it becomes so. Behind one long wait (an idle connection's, a slow
    /// webhook's) the cancelled pile up, so when they are more than half of a queue of some size
    /// the queue is rebuilt without them: memory stays within twice what is live.
    private func cancelled() {
        self.cancelledCount += 1
        self.dropCancelledHeads()
        guard self.cancelledCount > 64, self.cancelledCount * 2 > self.timeouts.count else { return }
        var live = CircularBuffer<Timeout>(initialCapacity: self.timeouts.count - self.cancelledCount)
        for timeout in self.timeouts where timeout.action != nil { live.append(timeout) }
        self.timeouts = live
        self.cancelledCount = 0
    }

    private func dropCancelledHeads() {
        while let first = self.timeouts.first, first.action == nil {
            self.timeouts.removeFirst()
            self.cancelledCount -= 1
        }
    }

    /// Makes sure a timer fires no later than the earliest deadline. A timer already armed for an
    /// earlier time stays: when it fires it finds nothing due and arms for the next deadline.
    private func arm() {
        guard let first = self.timeouts.first else { return }
        if let armedFor = self.armedFor, armedFor <= first.deadline { return }
        self.timer?.cancel()
        self.armedFor = first.deadline
        let queue = NIOLoopBound(self, eventLoop: self.eventLoop)
        self.timer = self.eventLoop.scheduleTask(deadline: first.deadline) { queue.value.fire() }
    }

    private func fire() {
        self.timer = nil
        self.armedFor = nil
        let now = self.eventLoop.now
        while let first = self.timeouts.first, first.deadline <= now {
            self.timeouts.removeFirst()
            guard let action = first.action else {
                self.cancelledCount -= 1
                continue
            }
            first.action = nil
            action()
        }
        self.dropCancelledHeads()
        self.arm()
    }
}
