import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// One node of a HashiCorp-memberlist-compatible cluster: UDP for probes and gossip, TCP for state
/// exchange, both on one port.
///
/// ``bind(_:logger:eventLoopGroup:)`` opens the sockets, so a port in use fails at start-up with a clear
/// error; ``run()`` then serves until graceful shutdown, when the node announces its leave and waits
/// (bounded) for the announcement to go out before closing.
public final class Memberlist: Service, Sendable {
    typealias PacketChannel = NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>
    typealias StreamChannel = NIOAsyncChannel<ByteBuffer, ByteBuffer>
    typealias StreamListener = NIOAsyncChannel<StreamChannel, Never>

    public let name: String
    /// Where other nodes reach this one.
    public let address: NodeAddress
    let configuration: MemberlistConfiguration
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    private let packets: PacketChannel
    private let streams: StreamListener
    let core: MemberlistCore

    private init(
        configuration: MemberlistConfiguration,
        address: NodeAddress,
        packets: PacketChannel,
        streams: StreamListener,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup
    ) {
        self.name = configuration.name
        self.address = address
        self.configuration = configuration
        self.packets = packets
        self.streams = streams
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        let local = Member(name: configuration.name, address: address, meta: configuration.meta, incarnation: 1, status: .alive)
        self.core = MemberlistCore(local: local, configuration: configuration.swim, logger: logger)
    }

    /// Binds the UDP socket and TCP listener on the same port.
    public static func bind(
        _ configuration: MemberlistConfiguration,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Memberlist {
        guard configuration.meta.count <= 512 else { throw MemberlistError("node metadata is \(configuration.meta.count) bytes; at most 512") }
        guard let advertisedIP = NodeAddress.parseIP(configuration.advertiseHost) else {
            throw MemberlistError("advertise address '\(configuration.advertiseHost)' is not an IP address")
        }
        // With port 0 the TCP listener picks the port and UDP must get the same one; retry if it is taken.
        var lastError: (any Error)?
        for _ in 0..<(configuration.bindPort == 0 ? 8 : 1) {
            let streams: StreamListener
            do {
                streams = try await ServerBootstrap(group: eventLoopGroup)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .bind(host: configuration.bindHost, port: configuration.bindPort) { channel in
                        channel.eventLoop.makeCompletedFuture { try StreamChannel(wrappingChannelSynchronously: channel) }
                    }
            } catch {
                throw MemberlistError("cannot listen on TCP \(configuration.bindHost):\(configuration.bindPort): \(error)")
            }
            let port = streams.channel.localAddress?.port ?? configuration.bindPort
            do {
                let packets = try await DatagramBootstrap(group: eventLoopGroup)
                    .channelOption(.socketOption(.so_reuseaddr), value: 1)
                    .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                    .bind(host: configuration.bindHost, port: port) { channel in
                        channel.eventLoop.makeCompletedFuture { try PacketChannel(wrappingChannelSynchronously: channel) }
                    }
                let address = NodeAddress(ip: advertisedIP, port: UInt16(configuration.advertisePort ?? port))
                return Memberlist(
                    configuration: configuration,
                    address: address,
                    packets: packets,
                    streams: streams,
                    logger: logger,
                    eventLoopGroup: eventLoopGroup
                )
            } catch {
                lastError = error
                try? await streams.channel.close()
            }
        }
        throw MemberlistError("cannot bind UDP \(configuration.bindHost):\(configuration.bindPort): \(lastError.map { "\($0)" } ?? "unknown error")")
    }

    /// The members that are alive or suspect, this node included, sorted by name.
    public func members() async -> [Member] {
        await core.liveMembers()
    }

    /// Joins the cluster through `seeds` (push/pull state exchanges over TCP, run concurrently).
    ///
    /// - Returns: how many seeds answered.
    @discardableResult
    public func join(_ seeds: [NodeAddress]) async -> Int {
        await withTaskGroup(of: Bool.self) { group in
            for seed in seeds where seed != address {
                group.addTask {
                    do {
                        try await self.exchangeState(with: seed, join: true)
                        return true
                    } catch {
                        self.logger.debug("memberlist join failed", metadata: ["peer": "\(seed)", "error": "\(error)"])
                        return false
                    }
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
    }

    public func run() async throws {
        try await packets.executeThenClose { inbound, outbound in
            await core.attach(outbound)
            try await streams.executeThenClose { connections in
                await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await self.receivePackets(inbound) }
                    group.addTask { try await self.acceptStreams(connections) }
                    group.addTask { await self.runTimers() }
                    logger.info("memberlist listening", metadata: ["name": "\(name)", "address": "\(address)"])
                    try? await gracefulShutdown()
                    await leave()
                    group.cancelAll()
                }
            }
        }
    }

    // MARK: - Packets

    private func receivePackets(_ inbound: NIOAsyncChannelInboundStream<AddressedEnvelope<ByteBuffer>>) async throws {
        for try await envelope in inbound {
            guard let source = NodeAddress(envelope.remoteAddress) else { continue }
            let messages: [WireMessage]
            do {
                messages = try Packet.decode(envelope.data)
            } catch {
                logger.debug("memberlist dropped a packet", metadata: ["from": "\(source)", "error": "\(error)"])
                continue
            }
            await core.receive(messages, from: source)
        }
    }

    private func runTimers() async {
        let tick = min(configuration.swim.gossipInterval, .milliseconds(50))
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                try? await Task.sleep(for: tick)
                for peer in await core.tick() {
                    group.addTask {
                        do {
                            try await self.exchangeState(with: peer, join: false)
                        } catch {
                            self.logger.debug("memberlist push/pull failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
                        }
                    }
                }
            }
        }
    }

    /// Announces the leave and waits until it has been gossiped or the leave timeout has passed.
    private func leave() async {
        await core.leave()
        let deadline = ContinuousClock.now + configuration.leaveTimeout
        while ContinuousClock.now < deadline, await core.leaveIsPending() {
            _ = await core.tick()
            try? await Task.sleep(for: configuration.swim.gossipInterval)
        }
        logger.info("memberlist left the cluster", metadata: ["name": "\(name)"])
    }

    // MARK: - Streams

    private func acceptStreams(_ connections: NIOAsyncChannelInboundStream<StreamChannel>) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for try await connection in connections {
                group.addTask {
                    do {
                        try await withTimeout(self.configuration.swim.tcpTimeout) { try await self.serve(connection) }
                    } catch {
                        self.logger.debug("memberlist stream failed", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
    }

    /// Answers one incoming stream: a push/pull with our state, a ping with an ack.
    private func serve(_ connection: StreamChannel) async throws {
        try await connection.executeThenClose { inbound, outbound in
            let message: StreamMessage
            do {
                guard let received = try await Self.readMessage(inbound) else { return }
                message = received
            } catch let error as WireError {
                try await outbound.write(ByteBuffer(bytes: StreamMessage.error("\(error)").encoded(compressed: false)))
                throw error
            }
            switch message {
            case .pushPull(let remote):
                let reply = await core.localState(join: remote.join)
                try await outbound.write(ByteBuffer(bytes: StreamMessage.pushPull(reply).encoded(compressed: false)))
                await core.merge(remote)
            case .ping(let ping):
                guard ping.node.isEmpty || ping.node == name else { return }
                try await outbound.write(ByteBuffer(bytes: StreamMessage.ack(Ack(seqNo: ping.seqNo)).encoded(compressed: false)))
            case .ack, .user, .error:
                break
            }
        }
    }

    /// Sends our state to `peer` and merges its reply.
    private func exchangeState(with peer: NodeAddress, join: Bool) async throws {
        try await withTimeout(configuration.swim.tcpTimeout) {
            let connection = try await ClientBootstrap(group: self.eventLoopGroup)
                .connectTimeout(.init(self.configuration.swim.tcpTimeout))
                .connect(host: peer.host, port: Int(peer.port)) { channel in
                    channel.eventLoop.makeCompletedFuture { try StreamChannel(wrappingChannelSynchronously: channel) }
                }
            try await connection.executeThenClose { inbound, outbound in
                let state = await self.core.localState(join: join)
                try await outbound.write(ByteBuffer(bytes: StreamMessage.pushPull(state).encoded(compressed: false)))
                guard let reply = try await Self.readMessage(inbound) else { throw MemberlistError("\(peer) closed the stream") }
                switch reply {
                case .pushPull(let remote): await self.core.merge(remote)
                case .error(let message): throw MemberlistError("\(peer) answered: \(message)")
                default: throw MemberlistError("\(peer) answered a push/pull with something else")
                }
            }
        }
    }

    /// Reads until one whole message has arrived; the peer sends no length and does not half-close.
    private static func readMessage(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) async throws -> StreamMessage? {
        var decoder = StreamMessageDecoder()
        for try await chunk in inbound {
            decoder.append(chunk)
            if let message = try decoder.next() { return message }
        }
        return nil
    }
}

/// Runs `body`, cancelling it and throwing when it takes longer than `timeout`.
func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw MemberlistError("timed out after \(timeout)")
        }
        defer { group.cancelAll() }
        guard let result = try await group.next() else { throw CancellationError() }
        return result
    }
}
