/// The SWIM failure detector and membership list of one node, as HashiCorp memberlist runs it.
///
/// Pure state: no sockets, no clocks, no tasks. The node feeds it what arrives and the current time,
/// and performs the ``Action``s it returns. This keeps every protocol rule (probe, indirect probe,
/// suspicion, refutation, gossip) testable without a network, and keeps the I/O in one place.
struct SWIMStateMachine {
    /// Something the node must do.
    enum Action: Equatable {
        /// Send one UDP packet: the messages in order (a compound when more than one).
        case send([WireMessage], to: NodeAddress, crc: Bool)
        /// Run a push/pull state exchange with this node over TCP (periodic anti-entropy).
        case pushPull(with: NodeAddress)
        /// Membership changed.
        case event(MemberEvent)
    }

    let configuration: SWIMConfiguration
    private(set) var local: Member
    private(set) var members: [String: Member] = [:]
    private var stateChanged: [String: ContinuousClock.Instant] = [:]
    private var suspicions: [String: Suspicion] = [:]
    private var broadcasts = BroadcastQueue()
    private var sequence: UInt32 = 0
    private(set) var leaving = false

    /// The probe in progress, if any.
    private var probe: Probe?
    private var probeOrder: [String] = []
    private var nextProbe: ContinuousClock.Instant
    private var nextGossip: ContinuousClock.Instant
    private var nextPushPull: ContinuousClock.Instant
    /// Probes we run on behalf of another node's indirect ping, by our sequence number.
    private var relays: [UInt32: Relay] = [:]

    private struct Probe {
        var sequence: UInt32
        var target: String
        var indirectAt: ContinuousClock.Instant
        var indirectSent = false
        var endsAt: ContinuousClock.Instant
    }

    private struct Relay {
        var requesterSequence: UInt32
        var requester: NodeAddress
        var wantsNack: Bool
        var deadline: ContinuousClock.Instant
    }

    init(local: Member, configuration: SWIMConfiguration, now: ContinuousClock.Instant) {
        self.configuration = configuration
        self.local = local
        self.members[local.name] = local
        // Like Go, the periodic tasks start after a random part of their interval, so nodes started
        // together do not probe and gossip in lockstep.
        self.nextProbe = now + configuration.probeInterval * Double.random(in: 0...1)
        self.nextGossip = now + configuration.gossipInterval * Double.random(in: 0...1)
        self.nextPushPull = now + configuration.pushPullInterval * Double.random(in: 0.5...1)
    }

    /// Members that are not dead or gone, this node included.
    var liveMembers: [Member] { members.values.filter { !$0.status.isDeadOrLeft }.sorted { $0.name < $1.name } }

    /// True while our own leave announcement still waits to be sent out.
    var leaveIsPending: Bool { broadcasts.contains(node: local.name) }

    // MARK: - Packets

    /// Handles one received packet, already split into messages; `source` is the UDP sender.
    mutating func receive(_ messages: [WireMessage], from source: NodeAddress, now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for message in messages {
            switch message {
            case .ping(let ping):
                actions += handle(ping, from: source)
            case .indirectPing(let request):
                actions += handle(request, from: source, now: now)
            case .ack(let ack):
                actions += handle(ack)
            case .nack:
                // Nacks only tell a prober its helpers work; without health scoring there is nothing to do.
                break
            case .alive(let alive):
                actions += apply(alive, now: now)
            case .suspect(let suspect):
                actions += apply(suspect, now: now)
            case .dead(let dead):
                actions += apply(dead, now: now)
            case .user:
                break
            }
        }
        return actions
    }

    private mutating func handle(_ ping: Ping, from source: NodeAddress) -> [Action] {
        guard ping.node.isEmpty || ping.node == local.name else { return [] }
        var destination = source
        if let ip = ping.sourceAddr, !ip.isEmpty, let port = ping.sourcePort, port != 0 {
            destination = NodeAddress(ip: ip, port: port)
        }
        return [send([.ack(Ack(seqNo: ping.seqNo))], to: destination, crc: crcFor(name: ping.sourceNode))]
    }

    /// Another node asks us to probe `target` for it.
    private mutating func handle(_ request: IndirectPing, from source: NodeAddress, now: ContinuousClock.Instant) -> [Action] {
        var requester = source
        if let ip = request.sourceAddr, !ip.isEmpty, let port = request.sourcePort, port != 0 {
            requester = NodeAddress(ip: ip, port: port)
        }
        let sequence = nextSequence()
        relays[sequence] = Relay(
            requesterSequence: request.seqNo,
            requester: requester,
            wantsNack: request.nack,
            deadline: now + configuration.probeTimeout
        )
        let target = NodeAddress(ip: request.target, port: request.port == 0 ? local.address.port : request.port)
        return [send([.ping(ping(node: request.node, sequence: sequence))], to: target, crc: false)]
    }

    private mutating func handle(_ ack: Ack) -> [Action] {
        if let relay = relays.removeValue(forKey: ack.seqNo) {
            return [send([.ack(Ack(seqNo: relay.requesterSequence))], to: relay.requester, crc: false)]
        }
        if probe?.sequence == ack.seqNo { probe = nil }
        return []
    }

    // MARK: - Timers

    /// Runs whatever is due: probes, indirect probes, suspicion timeouts, gossip and push/pull.
    mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        actions += expireRelays(now: now)
        actions += advanceProbe(now: now)
        actions += expireSuspicions(now: now)
        if now >= nextGossip {
            nextGossip = now + configuration.gossipInterval
            actions += gossip(now: now)
        }
        if now >= nextPushPull {
            nextPushPull = now + configuration.pushPullInterval
            if let peer = liveMembers.filter({ $0.name != local.name && $0.status == .alive }).randomElement() {
                actions.append(.pushPull(with: peer.address))
            }
        }
        return actions
    }

    private mutating func expireRelays(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (sequence, relay) in relays where relay.deadline <= now {
            relays[sequence] = nil
            if relay.wantsNack {
                actions.append(send([.nack(Nack(seqNo: relay.requesterSequence))], to: relay.requester, crc: false))
            }
        }
        return actions
    }

    private mutating func advanceProbe(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        if var current = probe {
            if now >= current.endsAt {
                // Neither we nor any helper heard from the target within the probe interval.
                probe = nil
                if let target = members[current.target], !target.status.isDeadOrLeft {
                    actions += apply(Suspect(from: local.name, incarnation: target.incarnation, node: target.name), now: now)
                }
            } else if !current.indirectSent, now >= current.indirectAt {
                current.indirectSent = true
                probe = current
                actions += indirectProbe(current)
            }
        }
        guard probe == nil, now >= nextProbe, !leaving else { return actions }
        nextProbe = now + configuration.probeInterval
        guard let target = nextProbeTarget() else { return actions }
        let sequence = nextSequence()
        probe = Probe(
            sequence: sequence,
            target: target.name,
            indirectAt: now + configuration.probeTimeout,
            endsAt: now + configuration.probeInterval
        )
        var messages: [WireMessage] = [.ping(ping(node: target.name, sequence: sequence))]
        if target.status == .suspect {
            // Tell the suspect what we think, so it can refute at once.
            messages.append(.suspect(Suspect(from: local.name, incarnation: target.incarnation, node: target.name)))
        }
        actions.append(send(messages, to: target.address, crc: target.status == .suspect && target.protocolMax >= 5))
        return actions
    }

    /// Round-robin over a shuffled list of the other live members, reshuffled after each pass.
    private mutating func nextProbeTarget() -> Member? {
        for _ in 0..<2 {
            while let name = probeOrder.popLast() {
                if let member = members[name], !member.status.isDeadOrLeft, name != local.name { return member }
            }
            probeOrder = members.values.filter { !$0.status.isDeadOrLeft && $0.name != local.name }.map(\.name).shuffled()
            if probeOrder.isEmpty { return nil }
        }
        return nil
    }

    private mutating func indirectProbe(_ probe: Probe) -> [Action] {
        guard let target = members[probe.target] else { return [] }
        let helpers = members.values.filter { $0.status == .alive && $0.name != local.name && $0.name != target.name }
            .shuffled().prefix(configuration.indirectChecks)
        return helpers.map { helper in
            let request = IndirectPing(
                nack: helper.protocolMax >= 4,
                node: target.name,
                port: target.address.port,
                seqNo: probe.sequence,
                sourceAddr: local.address.ip,
                sourceNode: local.name,
                sourcePort: local.address.port,
                target: target.address.ip
            )
            return send([.indirectPing(request)], to: helper.address, crc: false)
        }
    }

    private mutating func expireSuspicions(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (name, suspicion) in suspicions where suspicion.deadline <= now {
            suspicions[name] = nil
            guard let member = members[name], member.status == .suspect else { continue }
            actions += apply(Dead(from: local.name, incarnation: member.incarnation, node: name), now: now)
        }
        // Forget the dead once there is no point gossiping to them any more.
        for (name, member) in members where member.status.isDeadOrLeft && name != local.name {
            if let since = stateChanged[name], now - since > configuration.gossipToTheDeadTime {
                members[name] = nil
                stateChanged[name] = nil
            }
        }
        return actions
    }

    private mutating func gossip(now: ContinuousClock.Instant) -> [Action] {
        guard !broadcasts.isEmpty else { return [] }
        let targets = members.values.filter { member in
            guard member.name != local.name else { return false }
            if !member.status.isDeadOrLeft { return true }
            return stateChanged[member.name].map { now - $0 < configuration.gossipToTheDeadTime } ?? false
        }
        .shuffled().prefix(configuration.gossipNodes)
        var actions: [Action] = []
        for target in targets {
            let messages = takeBroadcasts(budget: configuration.udpBufferSize - 5)
            guard !messages.isEmpty else { break }
            actions.append(.send(messages, to: target.address, crc: target.protocolMax >= 5))
        }
        return actions
    }

    // MARK: - Membership rules (docs/memberlist-wire.md §8, "alive processing", and §9)

    /// Applies an `alive` claim: a join, an update, a refutation, or nothing.
    mutating func apply(_ alive: Alive, now: ContinuousClock.Instant) -> [Action] {
        let address = NodeAddress(ip: alive.addr, port: alive.port)
        if alive.node == local.name {
            // Someone speaks about us: if it is not exactly what we say, refute with a newer incarnation.
            guard alive.incarnation >= local.incarnation, !leaving else { return [] }
            if alive.incarnation == local.incarnation, alive.meta == local.meta, alive.vsn == local.vsn, address == local.address {
                return []
            }
            return refute(above: alive.incarnation)
        }
        guard alive.vsn.isEmpty || Self.isValid(vsn: alive.vsn) else { return [] }
        let existing = members[alive.node]
        // Go records an unknown node at incarnation 0 and needs a greater one, so incarnation 0 never joins.
        if existing == nil, alive.incarnation == 0 { return [] }
        if let existing, existing.address != address, !existing.status.isDeadOrLeft {
            // Go ignores a live node's name moving to another address; so do we, to agree with it.
            return []
        }
        if let existing, alive.incarnation <= existing.incarnation, existing.address == address { return [] }
        let member = Member(
            name: alive.node,
            address: address,
            meta: alive.meta,
            incarnation: alive.incarnation,
            status: .alive,
            vsn: alive.vsn.isEmpty ? ProtocolVersion.default : alive.vsn
        )
        members[alive.node] = member
        suspicions[alive.node] = nil
        if existing?.status != .alive { stateChanged[alive.node] = now }
        broadcasts.enqueue(.alive(alive), about: alive.node)
        guard let existing, !existing.status.isDeadOrLeft else { return [.event(.joined(member))] }
        return existing.meta == member.meta ? [] : [.event(.updated(member))]
    }

    /// Applies a `suspect` claim: starts or confirms a suspicion, or refutes one about us.
    mutating func apply(_ suspect: Suspect, now: ContinuousClock.Instant) -> [Action] {
        guard let member = members[suspect.node], suspect.incarnation >= member.incarnation else { return [] }
        if suspect.node == local.name {
            return leaving ? [] : refute(above: suspect.incarnation)
        }
        switch member.status {
        case .dead, .left:
            return []
        case .suspect:
            if suspicions[suspect.node]?.confirm(from: suspect.from) == true {
                broadcasts.enqueue(.suspect(suspect), about: suspect.node)
            }
            return []
        case .alive:
            var suspected = member
            suspected.status = .suspect
            suspected.incarnation = suspect.incarnation
            members[suspect.node] = suspected
            stateChanged[suspect.node] = now
            broadcasts.enqueue(.suspect(suspect), about: suspect.node)
            let count = members.count
            let bounds = configuration.suspicionBounds(nodeCount: count)
            let wanted = configuration.suspicionMultiplier - 2
            suspicions[suspect.node] = Suspicion(
                from: suspect.from,
                start: now,
                minimum: bounds.min,
                maximum: bounds.max,
                expected: count - 2 < wanted ? 0 : wanted
            )
            return []
        }
    }

    /// Applies a `dead` claim; `from == node` is a graceful leave.
    mutating func apply(_ dead: Dead, now: ContinuousClock.Instant) -> [Action] {
        guard let member = members[dead.node], dead.incarnation >= member.incarnation, !member.status.isDeadOrLeft else {
            return []
        }
        if dead.node == local.name, !leaving {
            return refute(above: dead.incarnation)
        }
        var gone = member
        gone.status = dead.from == dead.node ? .left : .dead
        gone.incarnation = dead.incarnation
        members[dead.node] = gone
        stateChanged[dead.node] = now
        suspicions[dead.node] = nil
        broadcasts.enqueue(.dead(dead), about: dead.node)
        return dead.node == local.name ? [] : [.event(.left(gone))]
    }

    /// Go ignores alive messages whose version range is impossible; a shorter `Vsn` even crashes 0.2.2.
    private static func isValid(vsn: [UInt8]) -> Bool {
        vsn.count >= 3 && vsn[0] != 0 && vsn[1] != 0 && vsn[0] <= vsn[1]
    }

    private mutating func refute(above incarnation: UInt32) -> [Action] {
        local.incarnation = max(local.incarnation, incarnation) &+ 1
        members[local.name] = local
        broadcasts.enqueue(.alive(localAlive), about: local.name)
        return []
    }

    // MARK: - Push/pull (join and anti-entropy)

    /// Our whole view, as sent in a push/pull exchange.
    func localState(join: Bool) -> PushPull {
        let nodes = members.values.sorted { $0.name < $1.name }.map { member in
            PushNodeState(
                addr: member.address.ip,
                incarnation: member.incarnation,
                meta: member.meta,
                name: member.name,
                port: member.address.port,
                state: member.status.wire,
                vsn: member.vsn
            )
        }
        return PushPull(join: join, nodes: nodes)
    }

    /// Merges a peer's view: alive as alive, left as a leave, suspect or dead only as our suspicion.
    mutating func merge(_ remote: PushPull, now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for node in remote.nodes {
            switch node.state {
            case .alive:
                let alive = Alive(
                    addr: node.addr,
                    incarnation: node.incarnation,
                    meta: node.meta,
                    node: node.name,
                    port: node.port,
                    vsn: node.vsn
                )
                actions += apply(alive, now: now)
            case .left:
                actions += apply(Dead(from: node.name, incarnation: node.incarnation, node: node.name), now: now)
            case .dead, .suspect:
                actions += apply(Suspect(from: local.name, incarnation: node.incarnation, node: node.name), now: now)
            }
        }
        return actions
    }

    // MARK: - Leaving

    /// Announces a graceful leave; the node keeps gossiping until ``leaveIsPending`` is false.
    mutating func leave(now: ContinuousClock.Instant) -> [Action] {
        guard !leaving else { return [] }
        leaving = true
        let dead = Dead(from: local.name, incarnation: local.incarnation, node: local.name)
        _ = apply(dead, now: now)
        local.status = .left
        // Tell every live member directly as well, so the leave is seen even in a two-node cluster.
        return members.values.filter { $0.name != local.name && !$0.status.isDeadOrLeft }.map {
            .send([.dead(dead)], to: $0.address, crc: $0.protocolMax >= 5)
        }
    }

    // MARK: - Helpers

    var localAlive: Alive {
        Alive(addr: local.address.ip, incarnation: local.incarnation, meta: local.meta, node: local.name, port: local.address.port, vsn: local.vsn)
    }

    private func ping(node: String, sequence: UInt32) -> Ping {
        Ping(node: node, seqNo: sequence, sourceAddr: local.address.ip, sourceNode: local.name, sourcePort: local.address.port)
    }

    private mutating func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    private func crcFor(name: String?) -> Bool {
        name.flatMap { members[$0] }.map { $0.protocolMax >= 5 } ?? false
    }

    /// A packet with as much queued gossip piggybacked as fits.
    private mutating func send(_ messages: [WireMessage], to address: NodeAddress, crc: Bool) -> Action {
        let used = messages.reduce(0) { $0 + $1.encoded().count + 2 } + 2 + 5
        let gossip = takeBroadcasts(budget: configuration.udpBufferSize - used, maxCount: 127 - messages.count)
        return .send(messages + gossip, to: address, crc: crc)
    }

    private mutating func takeBroadcasts(budget: Int, maxCount: Int = 127) -> [WireMessage] {
        broadcasts.take(
            budget: budget,
            overhead: 2,
            transmitLimit: configuration.retransmitLimit(nodeCount: members.count),
            maxCount: maxCount
        )
    }
}

/// A change in the member list, reported for logs and metrics.
public enum MemberEvent: Hashable, Sendable {
    case joined(Member)
    case updated(Member)
    /// Declared dead, or left gracefully (see the member's status).
    case left(Member)
}
