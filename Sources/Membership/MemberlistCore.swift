import Logging
import NIOCore

/// Owns the ``SWIMStateMachine`` and carries out what it asks: sending packets and reporting events.
///
/// An actor, so packets, timers and stream exchanges that arrive at once are applied one at a time.
actor MemberlistCore {
    private var machine: SWIMStateMachine
    private var outbound: NIOAsyncChannelOutboundWriter<AddressedEnvelope<ByteBuffer>>?
    private let logger: Logger

    init(local: Member, configuration: SWIMConfiguration, logger: Logger) {
        self.machine = SWIMStateMachine(local: local, configuration: configuration, now: .now)
        self.logger = logger
    }

    func attach(_ outbound: NIOAsyncChannelOutboundWriter<AddressedEnvelope<ByteBuffer>>) {
        self.outbound = outbound
    }

    func liveMembers() -> [Member] { machine.liveMembers }

    func leaveIsPending() -> Bool { machine.leaveIsPending }

    func localState(join: Bool) -> PushPull { machine.localState(join: join) }

    func receive(_ messages: [WireMessage], from source: NodeAddress) async {
        await perform(machine.receive(messages, from: source, now: .now))
    }

    func merge(_ remote: PushPull) async {
        await perform(machine.merge(remote, now: .now))
    }

    func leave() async {
        await perform(machine.leave(now: .now))
    }

    /// Runs due timers; returns the peers to run a push/pull exchange with, which take a TCP round
    /// trip and so are left to the caller.
    func tick() async -> [NodeAddress] {
        await perform(machine.tick(now: .now))
    }

    @discardableResult
    private func perform(_ actions: [SWIMStateMachine.Action]) async -> [NodeAddress] {
        var exchanges: [NodeAddress] = []
        for action in actions {
            switch action {
            case .send(let messages, let address, let crc):
                guard let outbound, let remote = try? SocketAddress(ipAddress: address.host, port: Int(address.port)) else { continue }
                let datagram = Packet.encode(messages, crc: crc)
                do {
                    try await outbound.write(AddressedEnvelope(remoteAddress: remote, data: datagram))
                } catch {
                    logger.debug("memberlist send failed", metadata: ["to": "\(address)", "error": "\(error)"])
                }
            case .pushPull(let peer):
                exchanges.append(peer)
            case .event(let event):
                report(event)
            }
        }
        return exchanges
    }

    private func report(_ event: MemberEvent) {
        switch event {
        case .joined(let member):
            logger.info("member joined", metadata: ["member": "\(member.name)", "address": "\(member.address)", "meta": "\(member.metaString)"])
        case .updated(let member):
            logger.info("member updated", metadata: ["member": "\(member.name)", "meta": "\(member.metaString)"])
        case .left(let member):
            let how = member.status == .left ? "left" : "dead"
            logger.notice("member \(how)", metadata: ["member": "\(member.name)", "address": "\(member.address)"])
        }
    }
}
