import Testing

@testable import RelayServer

@Suite struct ChannelTableTests {
    let start = ContinuousClock.now

    @Test func issuedChannelsAreClaimedOnceAndReleased() {
        var table = ChannelTable()
        table.issue("a", now: self.start)
        guard case .granted(let connection) = table.claim("a", recreate: false) else {
            Issue.record("the first client should get the channel")
            return
        }
        #expect(table.claim("a", recreate: false) == .alreadyConnected)
        #expect(table.claim("a", recreate: true) == .alreadyConnected)
        table.release("a", connection: connection, now: self.start)
        #expect(table.claim("a", recreate: false) != .alreadyConnected)
    }

    @Test func aQueuedWebhookReservesASweptChannelButNeverTakesAClaimedOne() {
        var table = ChannelTable()
        table.reserve("swept", now: self.start)
        #expect(table.contains("swept"))
        #expect(table.claim("swept", recreate: false) != .unknown)

        table.issue("busy", now: self.start)
        guard case .granted = table.claim("busy", recreate: false) else {
            Issue.record("the first client should get the channel")
            return
        }
        table.reserve("busy", now: self.start)
        #expect(table.isClaimed("busy"), "reserving must not undo a client's claim")
    }

    @Test func unknownChannelsNeedAToken() {
        var table = ChannelTable()
        #expect(table.claim("ghost", recreate: false) == .unknown)
        guard case .granted = table.claim("ghost", recreate: true) else {
            Issue.record("a valid token re-creates its channel")
            return
        }
        #expect(table.contains("ghost"))
    }

    @Test func aStaleConnectionCannotReleaseANewerOne() {
        var table = ChannelTable()
        table.issue("a", now: self.start)
        guard case .granted(let old) = table.claim("a", recreate: false) else { return }
        table.release("a", connection: old, now: self.start)
        guard case .granted(let new) = table.claim("a", recreate: false) else { return }
        table.release("a", connection: old, now: self.start)
        #expect(table.isClaimed("a"))
        table.release("a", connection: new, now: self.start)
        #expect(!table.isClaimed("a"))
    }

    @Test func sweepingRemovesOnlyChannelsIdleForAWholePeriod() {
        var table = ChannelTable()
        let ttl = Duration.seconds(300)
        table.issue("old", now: self.start)
        table.issue("young", now: self.start.advanced(by: .seconds(200)))
        table.issue("held", now: self.start)
        _ = table.claim("held", recreate: false)
        #expect(table.sweep(now: self.start.advanced(by: .seconds(299)), ttl: ttl) == [])
        #expect(table.sweep(now: self.start.advanced(by: .seconds(300)), ttl: ttl) == ["old"])
        // The next period sweeps again: it is not a one-off.
        #expect(table.sweep(now: self.start.advanced(by: .seconds(600)), ttl: ttl) == ["young"])
        #expect(table.allIDs == ["held"])
    }
}
