import Testing

@testable import Membership

/// The SWIM rules, driven with synthetic time: no sockets, no sleeps.
struct SWIMStateMachineTests {
    static let start = ContinuousClock.now
    static func at(_ offset: Duration) -> ContinuousClock.Instant { start + offset }

    static func address(_ last: UInt8) -> NodeAddress { NodeAddress(ip: [127, 0, 0, last], port: 7946) }

    static func alive(_ name: String, _ last: UInt8, incarnation: UInt32 = 1, meta: String = "") -> Alive {
        Alive(addr: [127, 0, 0, last], incarnation: incarnation, meta: Array(meta.utf8), node: name, port: 7946)
    }

    /// Node `a` that already knows `b` (and `c`, `d` when asked).
    static func machine(peers: [(String, UInt8)] = [("b", 3)]) -> SWIMStateMachine {
        let local = Member(name: "a", address: address(2), meta: Array("http://127.0.0.2:8080".utf8), incarnation: 1, status: .alive)
        var machine = SWIMStateMachine(local: local, configuration: .lan, now: at(.zero))
        for (name, last) in peers { _ = machine.apply(alive(name, last), now: at(.zero)) }
        return machine
    }

    static func sends(_ actions: [SWIMStateMachine.Action]) -> [(messages: [WireMessage], to: NodeAddress)] {
        actions.compactMap {
            if case .send(let messages, let to, _) = $0 { return (messages, to) }
            return nil
        }
    }

    @Test func anAliveForAnUnknownNodeIsAJoinAndIsGossiped() {
        var machine = Self.machine(peers: [])
        let actions = machine.apply(Self.alive("b", 3, meta: "http://127.0.0.3:8080"), now: Self.at(.zero))
        guard case .event(.joined(let member)) = actions.first else {
            Issue.record("expected a join event, got \(actions)")
            return
        }
        #expect(member.name == "b" && member.metaString == "http://127.0.0.3:8080" && member.address == Self.address(3))
        #expect(machine.liveMembers.map(\.name) == ["a", "b"])
        // Incarnation 0 never joins, as in Go.
        #expect(machine.apply(Self.alive("z", 9, incarnation: 0), now: Self.at(.zero)).isEmpty)
        #expect(!machine.liveMembers.map(\.name).contains("z"))
    }

    @Test func aPingIsAnsweredWithAnAckToItsSourceAddress() {
        var machine = Self.machine()
        let ping = Ping(node: "a", seqNo: 42, sourceAddr: [127, 0, 0, 3], sourceNode: "b", sourcePort: 7000)
        let sent = Self.sends(machine.receive([.ping(ping)], from: Self.address(99), now: Self.at(.zero)))
        #expect(sent.count == 1)
        #expect(sent.first?.to == NodeAddress(ip: [127, 0, 0, 3], port: 7000))
        #expect(sent.first?.messages.first == .ack(Ack(seqNo: 42)))
        // A ping for another node name is ignored.
        #expect(machine.receive([.ping(Ping(node: "someone-else", seqNo: 1))], from: Self.address(3), now: Self.at(.zero)).isEmpty)
    }

    @Test func anUnansweredProbeGoesIndirectThenSuspectThenDead() {
        var machine = Self.machine(peers: [("b", 3), ("c", 4), ("d", 5)])
        // Run the timers until a probe goes out, and find its target.
        var probeTarget: String?
        var sequence: UInt32 = 0
        var now = Self.at(.zero)
        while probeTarget == nil, now < Self.at(.seconds(3)) {
            now += .milliseconds(50)
            for (messages, _) in Self.sends(machine.tick(now: now)) {
                if case .ping(let ping) = messages.first {
                    probeTarget = ping.node
                    sequence = ping.seqNo
                }
            }
        }
        let target = try! #require(probeTarget)
        // No ack: after the probe timeout, indirect pings go to the other two members.
        now += .milliseconds(500)
        let indirect = Self.sends(machine.tick(now: now)).compactMap { sent -> IndirectPing? in
            if case .indirectPing(let request) = sent.messages.first { return request }
            return nil
        }
        #expect(indirect.count == 2)
        #expect(indirect.allSatisfy { $0.node == target && $0.seqNo == sequence && $0.nack })
        // Still nothing by the end of the probe interval: suspect.
        now += .milliseconds(500)
        _ = machine.tick(now: now)
        #expect(machine.members[target]?.status == .suspect)
        // Not refuted within the suspicion timeout (4 s on a LAN at this size): dead, and a leave event.
        var left: Member?
        var deadline = now
        while left == nil, deadline < now + .seconds(30) {
            deadline += .milliseconds(100)
            for case .event(.left(let member)) in machine.tick(now: deadline) { left = member }
        }
        #expect(left?.name == target)
        #expect(left?.status == .dead)
        let elapsed = deadline - now
        #expect(elapsed >= .seconds(4) && elapsed < .seconds(25))
    }

    @Test func anAckInTimeKeepsTheTargetAlive() {
        var machine = Self.machine()
        var now = Self.at(.zero)
        var sequence: UInt32?
        while sequence == nil {
            now += .milliseconds(50)
            for (messages, _) in Self.sends(machine.tick(now: now)) {
                if case .ping(let ping) = messages.first { sequence = ping.seqNo }
            }
        }
        _ = machine.receive([.ack(Ack(seqNo: sequence!))], from: Self.address(3), now: now + .milliseconds(10))
        // Up to the end of this probe's interval (the next probe, unanswered, would start a new story).
        for step in 1...18 { _ = machine.tick(now: now + .milliseconds(50 * step)) }
        #expect(machine.members["b"]?.status == .alive)
    }

    @Test func suspicionOrDeathAboutOurselvesIsRefutedWithAHigherIncarnation() {
        var machine = Self.machine()
        _ = machine.apply(Suspect(from: "b", incarnation: 1, node: "a"), now: Self.at(.zero))
        #expect(machine.local.incarnation == 2)
        _ = machine.apply(Dead(from: "b", incarnation: 5, node: "a"), now: Self.at(.zero))
        #expect(machine.local.incarnation == 6)
        #expect(machine.local.status == .alive)
        // The refutation is gossiped: the next packet to anyone carries our alive at incarnation 6.
        let ping = Ping(node: "a", seqNo: 1, sourceAddr: [127, 0, 0, 3], sourceNode: "b", sourcePort: 7946)
        let messages = Self.sends(machine.receive([.ping(ping)], from: Self.address(3), now: Self.at(.zero))).flatMap(\.messages)
        #expect(messages.contains(.alive(machine.localAlive)))
        #expect(machine.localAlive.incarnation == 6)
    }

    @Test func aSuspectThatRefutesStaysAlive() {
        var machine = Self.machine()
        _ = machine.apply(Suspect(from: "c", incarnation: 1, node: "b"), now: Self.at(.zero))
        #expect(machine.members["b"]?.status == .suspect)
        _ = machine.apply(Self.alive("b", 3, incarnation: 2), now: Self.at(.seconds(1)))
        #expect(machine.members["b"]?.status == .alive)
        // The old suspicion timer no longer fires (b answers every probe from now on).
        var events: [MemberEvent] = []
        for step in 1...300 {
            let now = Self.at(.milliseconds(100 * step))
            for action in machine.tick(now: now) {
                if case .event(let event) = action { events.append(event) }
                if case .send(let messages, _, _) = action, case .ping(let ping) = messages.first {
                    _ = machine.receive([.ack(Ack(seqNo: ping.seqNo))], from: Self.address(3), now: now)
                }
            }
        }
        #expect(machine.members["b"]?.status == .alive)
        #expect(!events.contains { if case .left = $0 { return true } else { return false } })
    }

    @Test func aGracefulLeaveIsLeftNotDead() {
        var machine = Self.machine()
        let actions = machine.apply(Dead(from: "b", incarnation: 1, node: "b"), now: Self.at(.zero))
        #expect(actions.contains(.event(.left(Member(name: "b", address: Self.address(3), meta: [], incarnation: 1, status: .left)))))
        #expect(machine.liveMembers.map(\.name) == ["a"])
    }

    @Test func leavingAnnouncesOurDeathFromOurselvesToEveryLiveMember() {
        var machine = Self.machine(peers: [("b", 3), ("c", 4)])
        let sent = Self.sends(machine.leave(now: Self.at(.zero)))
        #expect(Set(sent.map(\.to)) == [Self.address(3), Self.address(4)])
        #expect(sent.allSatisfy { $0.messages.contains(.dead(Dead(from: "a", incarnation: 1, node: "a"))) })
        #expect(machine.leaving)
        // While leaving, claims about us are not refuted.
        _ = machine.apply(Suspect(from: "b", incarnation: 1, node: "a"), now: Self.at(.zero))
        #expect(machine.local.incarnation == 1)
    }

    @Test func pushPullMergeTakesAliveAsAliveAndDeadOnlyAsSuspicion() {
        var machine = Self.machine()
        let remote = PushPull(
            join: true,
            nodes: [
                PushNodeState(addr: [127, 0, 0, 4], incarnation: 3, meta: [], name: "c", port: 7946, state: .alive),
                PushNodeState(addr: [127, 0, 0, 3], incarnation: 1, meta: [], name: "b", port: 7946, state: .dead),
                PushNodeState(addr: [127, 0, 0, 5], incarnation: 1, meta: [], name: "e", port: 7946, state: .left),
            ]
        )
        _ = machine.merge(remote, now: Self.at(.zero))
        #expect(machine.members["c"]?.status == .alive)
        #expect(machine.members["b"]?.status == .suspect)
        #expect(machine.members["e"] == nil)
        let state = machine.localState(join: false)
        #expect(state.nodes.map(\.name) == ["a", "b", "c"])
        #expect(state.nodes.first { $0.name == "a" }?.vsn == ProtocolVersion.default)
    }

    @Test func aLiveNodeCannotMoveToAnotherAddress() {
        var machine = Self.machine()
        _ = machine.apply(Self.alive("b", 9, incarnation: 5), now: Self.at(.zero))
        #expect(machine.members["b"]?.address == Self.address(3))
    }

    @Test func broadcastsAreSentALimitedNumberOfTimesNewestNewsFirst() {
        var queue = BroadcastQueue()
        queue.enqueue(.suspect(Suspect(from: "a", incarnation: 1, node: "b")), about: "b")
        queue.enqueue(.alive(Self.alive("b", 3, incarnation: 2)), about: "b")
        #expect(queue.count == 1)
        queue.enqueue(.dead(Dead(from: "a", incarnation: 1, node: "c")), about: "c")
        var sent = 0
        while !queue.isEmpty {
            sent += queue.take(budget: 1400, overhead: 2, transmitLimit: 3).count
        }
        #expect(sent == 6)
    }
}
