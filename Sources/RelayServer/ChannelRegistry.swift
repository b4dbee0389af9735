import Synchronization
import TunnelTransport

/// The channels of this replica and their connected clients.
///
/// Wraps the pure ``ChannelTable`` with what needs a clock and waiting:
/// webhooks for a channel whose client is away wait here (bounded) for it to
/// come back.
actor ChannelRegistry {
    /// What a webhook finds when it looks its channel up.
    enum Lookup {
        case connected(ClientSession)
        /// No such channel: 404.
        case unknown
        /// Known (or possibly known) but no client came in time: 503.
        case unavailable
    }

    private var table = ChannelTable()
    private var sessions: [String: ClientSession] = [:]
    /// Per connected channel: closes its WebSocket with "going away" (graceful shutdown).
    private var closers: [String: @Sendable () async -> Void] = [:]
    private var waiters: [String: [UInt64: AsyncStream<ClientSession>.Continuation]] = [:]
    private var nextWaiter: UInt64 = 0
    private let clock = ContinuousClock()
    private let startedAt: ContinuousClock.Instant
    private let ttl: Duration
    private let hold: Duration
    /// Unknown channels are held like reconnecting ones until this instant.
    private let graceUntil: ContinuousClock.Instant

    private let maxChannels: Int

    /// The v2 tunnels connected here, by channel, readable without a hop to the actor: the event-loop
    /// webhook path (`WebhookRoute`) looks a channel up here on the sender's loop. It mirrors
    /// `sessions` for v2 clients; the tunnel sets and clears it from its own loop, around `attach`
    /// and `detach`.
    private nonisolated let live = Mutex<[String: (connection: UInt64, tunnel: TunnelConnection)]>([:])

    nonisolated func liveTunnel(_ id: String) -> TunnelConnection? {
        self.live.withLock { $0[id]?.tunnel }
    }

    nonisolated func setLive(_ id: String, connection: UInt64, tunnel: TunnelConnection) {
        self.live.withLock { $0[id] = (connection, tunnel) }
    }

    nonisolated func removeLive(_ id: String, connection: UInt64) {
        self.live.withLock { table in
            if table[id]?.connection == connection { table[id] = nil }
        }
        self.ended.withLock { $0[id] = connection }
    }

    /// Per channel, a v2 connection that ended on its loop and whose `detach` has not reached the
    /// actor yet (it goes through a task, after `attach`). Every read of the claims (`claim`,
    /// `isConnected`, `snapshot`) detaches these first (``reapEnded()``), so a client reconnecting
    /// at once is not refused by its own dead connection (409) and peers stop routing to it.
    private nonisolated let ended = Mutex<[String: UInt64]>([:])

    private func reapEnded() {
        let ended = self.ended.withLock { ended in
            defer { ended.removeAll() }
            return ended
        }
        for (id, connection) in ended { self.detach(id, connection: connection) }
    }

    init(ttl: Duration, hold: Duration, startupGrace: Duration, maxChannels: Int = .max) {
        self.maxChannels = maxChannels
        self.startedAt = self.clock.now
        self.ttl = ttl
        self.hold = hold
        self.graceUntil = self.startedAt.advanced(by: startupGrace)
    }

    /// Records a new channel; false when the replica is full.
    func issue(_ id: String) -> Bool {
        guard self.table.count < self.maxChannels else { return false }
        self.table.issue(id, now: self.clock.now)
        return true
    }

    func claim(_ id: String, recreate: Bool) -> ChannelTable.ClaimDecision {
        self.reapEnded()
        return self.table.claim(id, recreate: recreate)
    }

    /// The claimed connection is now ready to carry webhooks.
    func attach(_ id: String, connection: UInt64, session: ClientSession, close: @escaping @Sendable () async -> Void) {
        guard self.table.channels[id] == .claimed(connection: connection) else { return }
        self.sessions[id] = session
        self.closers[id] = close
        for waiter in (self.waiters.removeValue(forKey: id) ?? [:]).values {
            waiter.yield(session)
            waiter.finish()
        }
    }

    /// A claim's connection ended. Also reached early through ``reapEnded()``; a late `attach` of
    /// the same connection then finds the claim gone and does nothing.
    func detach(_ id: String, connection: UInt64) {
        self.ended.withLock { ended in
            if ended[id] == connection { ended[id] = nil }
        }
        guard self.table.channels[id] == .claimed(connection: connection) else { return }
        self.table.release(id, connection: connection, now: self.clock.now)
        self.sessions[id] = nil
        self.closers[id] = nil
    }

    /// Asks every connected client to go away (and reconnect, elsewhere in a cluster); returns how many.
    func closeAll() async -> Int {
        let closers = self.closers
        await withTaskGroup(of: Void.self) { group in
            for close in closers.values { group.addTask { await close() } }
        }
        return closers.count
    }

    /// Sweeps channels idle for a whole cleanup period, except `keeping`.
    @discardableResult
    func sweep(keeping: Set<String> = []) -> [String] {
        let removed = self.table.sweep(now: self.clock.now, ttl: self.ttl, keeping: keeping)
        for id in removed {
            for waiter in (self.waiters.removeValue(forKey: id) ?? [:]).values { waiter.finish() }
        }
        return removed
    }

    /// A webhook was queued for `id`: the channel is held again if it was swept meanwhile.
    func reserve(_ id: String) {
        self.table.reserve(id, now: self.clock.now)
    }

    /// Channels held (`all`) and those with a connected client. A client counts from the moment its
    /// upgrade was accepted (the claim, made before the `101` goes out), not only once its tunnel's
    /// handler runs or `attach` reached the actor, so a client that was told it is connected is
    /// already routed here by what peers and `/internal/channels` see; a webhook that comes in
    /// between waits for the attach (``session(for:holdUnknown:)``). A connection that ended stops
    /// counting at once.
    func snapshot() -> (all: [String], connected: [String]) {
        self.reapEnded()
        return (self.table.allIDs, self.table.claimedIDs)
    }

    func isKnown(_ id: String) -> Bool { self.table.contains(id) }

    /// Known here, or possibly known (start-up grace after a restart with a signing key).
    func mayKnow(_ id: String) -> Bool { self.table.contains(id) || self.clock.now < self.graceUntil }

    /// The connected client of `id`, without waiting.
    func currentSession(_ id: String) -> ClientSession? { self.sessions[id] }

    func isConnected(_ id: String) -> Bool {
        self.reapEnded()
        return self.table.isClaimed(id)
    }

    /// Finds the client for a webhook, holding the webhook up to the
    /// configured time while a known channel's client reconnects.
    /// `holdUnknown` holds a webhook for an id this replica does not know, because a peer does.
    nonisolated func session(for id: String, holdUnknown: Bool = false) async -> Lookup {
        let waiter: AsyncStream<ClientSession>
        let token: UInt64
        switch await self.immediateLookup(id, holdUnknown: holdUnknown) {
        case .found(let session): return .connected(session)
        case .unknown: return .unknown
        case .wait(let stream, let waiterToken): (waiter, token) = (stream, waiterToken)
        }
        let hold = self.hold
        return await withTaskGroup(of: ClientSession?.self) { group in
            group.addTask {
                for await session in waiter { return session }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: hold)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if let first { return .connected(first) }
            await self.dropWaiter(id, token: token)
            return .unavailable
        }
    }

    private func dropWaiter(_ id: String, token: UInt64) {
        self.waiters[id]?.removeValue(forKey: token)?.finish()
        if self.waiters[id]?.isEmpty == true { self.waiters[id] = nil }
    }

    private enum Immediate {
        case found(ClientSession)
        case unknown
        case wait(AsyncStream<ClientSession>, UInt64)
    }

    private func immediateLookup(_ id: String, holdUnknown: Bool) -> Immediate {
        if let session = self.sessions[id] { return .found(session) }
        guard holdUnknown || self.table.contains(id) || self.clock.now < self.graceUntil else { return .unknown }
        let (stream, continuation) = AsyncStream.makeStream(of: ClientSession.self)
        self.nextWaiter += 1
        self.waiters[id, default: [:]][self.nextWaiter] = continuation
        return .wait(stream, self.nextWaiter)
    }
}
