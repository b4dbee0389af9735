/// The channels this replica holds, as a pure state machine: no I/O, no
/// clock of its own (callers pass `now`), so every rule of README "Channel
/// life" is tested directly.
struct ChannelTable {
    enum State: Equatable {
        /// Issued or disconnected, with no client; reserved until swept.
        case idle(since: ContinuousClock.Instant)
        /// A client holds the channel (upgrade in progress or connected).
        case claimed(connection: UInt64)
    }

    /// What a client may do with a channel it asks for.
    enum ClaimDecision: Equatable {
        case granted(connection: UInt64)
        /// Another client holds it: 409.
        case alreadyConnected
        /// Unknown and no valid token to re-create it: 403.
        case unknown
    }

    private(set) var channels: [String: State] = [:]
    private var nextConnection: UInt64 = 1

    /// Records a channel issued by `/new`.
    mutating func issue(_ id: String, now: ContinuousClock.Instant) {
        self.channels[id] = .idle(since: now)
    }

    /// A client asks to connect. `recreate` is true when it proved with a
    /// valid token that the channel is its own, so an unknown channel (swept,
    /// or issued by another replica or an earlier process) comes back.
    mutating func claim(_ id: String, recreate: Bool) -> ClaimDecision {
        switch self.channels[id] {
        case .claimed:
            return .alreadyConnected
        case nil where !recreate:
            return .unknown
        case .idle, nil:
            let connection = self.nextConnection
            self.nextConnection += 1
            self.channels[id] = .claimed(connection: connection)
            return .granted(connection: connection)
        }
    }

    /// The connection that claimed `id` ended; the channel stays reserved for
    /// one more cleanup period. A stale connection changes nothing.
    mutating func release(_ id: String, connection: UInt64, now: ContinuousClock.Instant) {
        guard self.channels[id] == .claimed(connection: connection) else { return }
        self.channels[id] = .idle(since: now)
    }

    /// Removes channels idle for at least `ttl` and returns their ids;
    /// `keeping` stay (they have queued webhooks: docs/offline-queue.md).
    mutating func sweep(now: ContinuousClock.Instant, ttl: Duration, keeping: Set<String> = []) -> [String] {
        var removed: [String] = []
        for (id, state) in self.channels where !keeping.contains(id) {
            if case .idle(let since) = state, now - since >= ttl {
                removed.append(id)
            }
        }
        for id in removed { self.channels[id] = nil }
        return removed.sorted()
    }

    /// Holds a channel that has just had a webhook queued for it, so the
    /// channel is listed and reserved even if it was swept while the webhook
    /// was being stored. A channel already held is left as it is (a client
    /// may be claiming it right now).
    mutating func reserve(_ id: String, now: ContinuousClock.Instant) {
        guard self.channels[id] == nil else { return }
        self.channels[id] = .idle(since: now)
    }

    func contains(_ id: String) -> Bool { self.channels[id] != nil }

    var count: Int { self.channels.count }

    func isClaimed(_ id: String) -> Bool {
        if case .claimed = self.channels[id] { return true }
        return false
    }

    /// Every channel held, sorted.
    var allIDs: [String] { self.channels.keys.sorted() }

    /// The channels a client holds (upgrade accepted or connected).
    var claimedIDs: [String] {
        self.channels.compactMap { id, state in
            if case .claimed = state { return id }
            return nil
        }.sorted()
    }
}
