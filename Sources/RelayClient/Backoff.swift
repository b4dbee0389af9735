/// Reconnect delays: exponential with full jitter on the upper half, capped.
///
/// Attempt `n` (from 1) waits a random time in `[d/2, d]` where
/// `d = min(cap, base · 2^(n-1))`: 1 s, 2 s, 4 s, 8 s, 16 s, then 30 s. The
/// jitter keeps a fleet of clients from reconnecting in lockstep after a
/// server restart.
public struct Backoff: Sendable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(30)) {
        self.base = base
        self.cap = cap
    }

    /// The upper bound of the delay before attempt `attempt` (1-based).
    public func ceiling(attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let scaled = self.base * (1 << exponent)
        return min(scaled, self.cap)
    }

    /// The delay before attempt `attempt`, using `random` in `[0, 1]`.
    public func delay(attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let ceiling = self.ceiling(attempt: attempt)
        return ceiling / 2 + ceiling / 2 * random
    }
}
