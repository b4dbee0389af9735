import Foundation
import Testing

/// The Swift replica and a real Go memberlist node (hashicorp/memberlist 0.2.2, default LAN config,
/// LZW compression on) join each other, see each other alive, and see kills and leaves.
@Suite("Interop with a real Go memberlist node", .enabled(if: GoMemberlistPeer.binary != nil, "needs MEMBERLIST_PEER_BIN (.ci/run builds it)"))
struct GoMemberlistInteropTests {
    /// The Swift replica's node name, as its own member list reports it.
    static func nodeName(of replica: ServerHandle) async throws -> String {
        let members = try await Cluster.members(of: replica)
        return try #require(members.first { $0["url"] == replica.url }?["name"])
    }

    static func startSwift(host: String, peers: [String]) async throws -> ServerHandle {
        try await Tunnel.startServer(
            [
                "--peers", peers.joined(separator: ","),
                "--memberlist-port", "7946",
                "--memberlist-sync-duration", "1s",
                "--internal-token", Cluster.internalToken,
            ],
            host: host
        )
    }

    @Test("Swift joins Go and Go joins Swift: all alive within 5 s with metadata; SIGKILL is detected, a graceful leave is seen")
    func joinKillAndLeave() async throws {
        let network = LoopbackNetwork.random()
        let goA = try await GoMemberlistPeer.start(name: "go-a", host: network.host(5), meta: "go-a-meta")
        defer { goA.process.signal(SIGTERM) }

        // A Swift replica joins the Go node...
        let started = ContinuousClock.now
        let swift = try await Self.startSwift(host: network.host(2), peers: ["\(network.host(5)):7946"])
        defer { swift.process.signal(SIGKILL) }
        // ...and a second Go node joins the Swift replica.
        let goB = try await GoMemberlistPeer.start(name: "go-b", host: network.host(6), join: "\(network.host(2)):7946", meta: "go-b-meta")
        defer { goB.process.signal(SIGTERM) }

        let swiftName = try await withTimeout("the Swift node's name", .seconds(5)) { try await Self.nodeName(of: swift) }
        let all: Set<String> = ["go-a", "go-b", swiftName]
        let seenByA = try await goA.waitForMembers(all, timeout: .seconds(5))
        let seenByB = try await goB.waitForMembers(all, timeout: .seconds(5))
        #expect(seenByA[swiftName]?["meta"] as? String == swift.url)
        #expect(seenByB[swiftName]?["meta"] as? String == swift.url)
        #expect(seenByA[swiftName]?["addr"] as? String == network.host(2))
        try await waitUntil("the Swift replica sees both Go nodes", timeout: .seconds(5)) {
            Set(try await Cluster.members(of: swift).compactMap { $0["name"] }) == all
        }
        let urls = try await Cluster.members(of: swift).reduce(into: [String: String]()) { $0[$1["name"] ?? ""] = $1["url"] }
        #expect(urls["go-a"] == "go-a-meta" && urls["go-b"] == "go-b-meta")
        print("interop: three nodes saw each other alive \(ContinuousClock.now - started) after the Swift replica started")

        // Still alive after several probe rounds: the Swift node answers probes (direct, indirect, TCP).
        try await Task.sleep(for: .seconds(3))
        #expect(!goA.sawLeave(of: swiftName) && !goB.sawLeave(of: swiftName))
        try await goA.waitForMembers(all, timeout: .seconds(3))

        // SIGKILL: no leave message; the Go nodes must find out by probing, then suspicion. With three
        // nodes Go expects no confirmations, so the timeout is its minimum: SuspicionMult (4) × 1 s.
        let killedAt = ContinuousClock.now
        swift.process.signal(SIGKILL)
        try await goA.waitForLeave(of: swiftName, timeout: .seconds(10))
        try await goB.waitForLeave(of: swiftName, timeout: .seconds(5))
        print("interop: SIGKILLed Swift node declared dead by Go after \(ContinuousClock.now - killedAt)")

        // Another Swift replica joins and leaves gracefully: the Go nodes see the leave at once.
        let leaving = try await Self.startSwift(host: network.host(3), peers: ["\(network.host(5)):7946"])
        defer { leaving.process.signal(SIGKILL) }
        let leavingName = try await withTimeout("the second Swift node's name", .seconds(5)) { try await Self.nodeName(of: leaving) }
        try await goA.waitForMembers(["go-a", "go-b", leavingName], timeout: .seconds(5))
        let leftAt = ContinuousClock.now
        leaving.process.signal(SIGTERM)
        try await goA.waitForLeave(of: leavingName, timeout: .seconds(3))
        try await goB.waitForLeave(of: leavingName, timeout: .seconds(3))
        #expect(await leaving.process.waitForExit() == 0)
        print("interop: graceful leave seen by Go after \(ContinuousClock.now - leftAt)")
    }
}
