#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The timers and sizes of the SWIM protocol, named and defaulted as in Go's memberlist.
public struct SWIMConfiguration: Sendable {
    public var probeInterval: Duration
    public var probeTimeout: Duration
    public var indirectChecks: Int
    public var suspicionMultiplier: Int
    public var suspicionMaxTimeoutMultiplier: Int
    public var gossipInterval: Duration
    public var gossipNodes: Int
    public var gossipToTheDeadTime: Duration
    public var retransmitMultiplier: Int
    public var pushPullInterval: Duration
    public var tcpTimeout: Duration
    /// Packets are filled with piggybacked gossip up to this size, like Go's `UDPBufferSize`.
    public var udpBufferSize: Int

    /// Go's `DefaultLANConfig`: what a Go node uses unless told otherwise.
    public static let lan = SWIMConfiguration(
        probeInterval: .seconds(1),
        probeTimeout: .milliseconds(500),
        indirectChecks: 3,
        suspicionMultiplier: 4,
        suspicionMaxTimeoutMultiplier: 6,
        gossipInterval: .milliseconds(200),
        gossipNodes: 3,
        gossipToTheDeadTime: .seconds(30),
        retransmitMultiplier: 4,
        pushPullInterval: .seconds(30),
        tcpTimeout: .seconds(10),
        udpBufferSize: 1400
    )

    /// Shorter timers for tests on loopback; matches the Go test peer's `--fast`.
    public static let fast = SWIMConfiguration(
        probeInterval: .milliseconds(500),
        probeTimeout: .milliseconds(250),
        indirectChecks: 3,
        suspicionMultiplier: 3,
        suspicionMaxTimeoutMultiplier: 6,
        gossipInterval: .milliseconds(100),
        gossipNodes: 3,
        gossipToTheDeadTime: .seconds(5),
        retransmitMultiplier: 4,
        pushPullInterval: .seconds(5),
        tcpTimeout: .seconds(2),
        udpBufferSize: 1400
    )

    /// How long a suspect has to refute before it is declared dead, given the cluster size (docs/memberlist-wire.md §9.2).
    func suspicionBounds(nodeCount: Int) -> (min: Duration, max: Duration) {
        let scale = max(1.0, log10(Double(max(1, nodeCount))))
        let minimum = probeInterval * (Double(suspicionMultiplier) * scale)
        return (minimum, minimum * suspicionMaxTimeoutMultiplier)
    }

    /// How many times a broadcast is sent before it is dropped from the queue.
    func retransmitLimit(nodeCount: Int) -> Int {
        retransmitMultiplier * Int(ceil(log10(Double(nodeCount + 1))))
    }
}
