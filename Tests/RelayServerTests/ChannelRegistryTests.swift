import Testing

@testable import RelayServer

/// The registry's claim against a v2 connection that ended on its event loop while its `detach`
/// was still on the way to the actor (it goes through a task, after `attach`).
@Suite struct ChannelRegistryTests {
    static func registry() -> ChannelRegistry {
        ChannelRegistry(ttl: .seconds(300), hold: .seconds(10), startupGrace: .zero)
    }

    @Test func aClientReconnectingAtOnceIsNotRefusedByItsOwnEndedConnection() async throws {
        let registry = Self.registry()
        #expect(await registry.issue("c1"))
        guard case .granted(let first) = await registry.claim("c1", recreate: false) else {
            Issue.record("the first claim was refused")
            return
        }
        // The tunnel ended on its loop: the live table is cleared at once, `detach` comes later.
        registry.removeLive("c1", connection: first)
        #expect(await registry.isConnected("c1") == false)
        guard case .granted(let second) = await registry.claim("c1", recreate: false) else {
            Issue.record("the reconnect was refused while the ended connection's detach was on its way")
            return
        }
        // The late detach of the first connection leaves the second one's claim alone.
        await registry.detach("c1", connection: first)
        #expect(await registry.isConnected("c1"))
        #expect(second != first)
    }

    @Test func aLiveConnectionStillHoldsItsChannel() async throws {
        let registry = Self.registry()
        #expect(await registry.issue("c1"))
        guard case .granted = await registry.claim("c1", recreate: false) else {
            Issue.record("the first claim was refused")
            return
        }
        #expect(await registry.claim("c1", recreate: false) == .alreadyConnected)
        #expect(await registry.isConnected("c1"))
    }

    @Test func aChannelIsRoutedHereFromItsClaimUntilItsConnectionEnds() async throws {
        let registry = Self.registry()
        #expect(await registry.issue("c1"))
        #expect(await registry.snapshot().connected == [])
        guard case .granted(let connection) = await registry.claim("c1", recreate: false) else {
            Issue.record("the claim was refused")
            return
        }
        // Claimed before the 101 goes out: peers route the channel here before its tunnel runs.
        #expect(await registry.snapshot().connected == ["c1"])
        registry.removeLive("c1", connection: connection)
        #expect(await registry.snapshot().connected == [])
        #expect(await registry.snapshot().all == ["c1"])
    }
}
