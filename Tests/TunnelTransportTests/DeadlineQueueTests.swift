import NIOCore
import NIOEmbedded
import Testing

@testable import TunnelTransport

@Suite("Timeouts on one event loop, in deadline order")
struct DeadlineQueueTests {
    final class Fired {
        var names: [String] = []
    }

    @Test("A timeout runs at its deadline, not before; a cancelled one never runs")
    func runsAtItsDeadline() {
        let loop = EmbeddedEventLoop()
        let queue = DeadlineQueue.on(loop)
        let fired = Fired()
        _ = queue.schedule(in: .seconds(10)) { fired.names.append("a") }
        let b = queue.schedule(in: .seconds(10)) { fired.names.append("b") }
        _ = queue.schedule(in: .seconds(11)) { fired.names.append("c") }
        b.cancel()
        loop.advanceTime(by: .seconds(9))
        #expect(fired.names.isEmpty)
        loop.advanceTime(by: .seconds(1))
        #expect(fired.names == ["a"])
        loop.advanceTime(by: .seconds(1))
        #expect(fired.names == ["a", "c"])
        #expect(queue.count == 0)
    }

    @Test("Cancelling the oldest drops it at once, so work that ends in time leaves nothing queued")
    func cancelledHeadsAreDropped() {
        let loop = EmbeddedEventLoop()
        let queue = DeadlineQueue.on(loop)
        for _ in 0..<1_000 {
            let timeout = queue.schedule(in: .seconds(30)) { Issue.record("a cancelled timeout ran") }
            loop.advanceTime(by: .milliseconds(1))
            timeout.cancel()
        }
        #expect(queue.count == 0)
        // One still waiting behind a cancelled one is kept, and runs.
        let fired = Fired()
        let first = queue.schedule(in: .seconds(1)) { Issue.record("cancelled") }
        _ = queue.schedule(in: .seconds(1)) { fired.names.append("second") }
        first.cancel()
        #expect(queue.count == 1)
        loop.advanceTime(by: .seconds(30))
        #expect(fired.names == ["second"])
    }

    @Test("A shorter timeout scheduled after a longer one runs first")
    func shorterRunsFirst() {
        let loop = EmbeddedEventLoop()
        let queue = DeadlineQueue.on(loop)
        let fired = Fired()
        _ = queue.schedule(in: .seconds(30)) { fired.names.append("long") }
        _ = queue.schedule(in: .seconds(2)) { fired.names.append("short") }
        loop.advanceTime(by: .seconds(2))
        #expect(fired.names == ["short"])
        loop.advanceTime(by: .seconds(28))
        #expect(fired.names == ["short", "long"])
    }

    @Test("Each loop has its own queue")
    func onePerLoop() {
        let first = EmbeddedEventLoop()
        let second = EmbeddedEventLoop()
        #expect(DeadlineQueue.on(first) === DeadlineQueue.on(first))
        #expect(DeadlineQueue.on(first) !== DeadlineQueue.on(second))
    }

    @Test("Behind one long wait, cancelled timeouts do not pile up; the waiting one still runs")
    func cancelledBehindALongWaitAreCompacted() {
        let loop = EmbeddedEventLoop()
        let queue = DeadlineQueue.on(loop, for: .seconds(120))
        let fired = Fired()
        // An idle connection's limit, never cancelled, at the head.
        _ = queue.schedule(in: .seconds(120)) { fired.names.append("idle") }
        // Busy connections arm and cancel the same limit for every request.
        var live: [DeadlineQueue.Timeout] = []
        for index in 0..<10_000 {
            let timeout = queue.schedule(in: .seconds(120)) { fired.names.append("busy") }
            if index % 100 == 0 { live.append(timeout) } else { timeout.cancel() }
            #expect(queue.count <= 2 * (live.count + 1) + 64 + 1)
        }
        #expect(queue.count <= 2 * (live.count + 1) + 64)
        for timeout in live { timeout.cancel() }
        loop.advanceTime(by: .seconds(120))
        #expect(fired.names == ["idle"])
        #expect(queue.count == 0)
    }

    @Test("A loop has one queue per timeout length, besides its default one")
    func onePerLength() {
        let loop = EmbeddedEventLoop()
        #expect(DeadlineQueue.on(loop, for: .seconds(10)) === DeadlineQueue.on(loop, for: .seconds(10)))
        #expect(DeadlineQueue.on(loop, for: .seconds(10)) !== DeadlineQueue.on(loop, for: .seconds(120)))
        #expect(DeadlineQueue.on(loop, for: .seconds(10)) !== DeadlineQueue.on(loop))
    }
}
