#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The suspicion timer of one suspect node (Lifeguard, docs/memberlist-wire.md §9.2).
///
/// It starts at the maximum timeout and shrinks towards the minimum as other nodes independently
/// confirm the suspicion, so a node that only one observer cannot reach gets time to refute.
struct Suspicion {
    let start: ContinuousClock.Instant
    let minimum: Duration
    let maximum: Duration
    /// Confirmations expected before the timeout reaches the minimum.
    let expected: Int
    private(set) var confirmers: Set<String>

    init(from: String, start: ContinuousClock.Instant, minimum: Duration, maximum: Duration, expected: Int) {
        self.start = start
        self.minimum = minimum
        self.maximum = expected < 1 ? minimum : maximum
        self.expected = expected
        self.confirmers = [from]
    }

    /// Records a confirmation; true when it is a new one (and worth re-broadcasting).
    mutating func confirm(from: String) -> Bool {
        guard expected > 0, confirmers.count - 1 < expected else { return false }
        return confirmers.insert(from).inserted
    }

    var deadline: ContinuousClock.Instant {
        let confirmations = confirmers.count - 1
        guard expected > 0, confirmations > 0 else { return start + maximum }
        let fraction = log(Double(confirmations + 1)) / log(Double(expected + 1))
        let timeout = maximum - (maximum - minimum) * fraction
        return start + max(minimum, timeout)
    }
}
