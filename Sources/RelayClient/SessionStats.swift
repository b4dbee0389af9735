import Synchronization

/// What the client did while it ran, summed up in the log on exit.
final class SessionStats: Sendable {
    struct Totals {
        var webhooks = 0
        var byClass: [String: Int] = [:]
        var bytesOut = 0
        var reconnects = 0
    }

    private let totals = Mutex(Totals())
    let started = ContinuousClock.now

    func webhook(status: Int, bytes: Int) {
        self.totals.withLock { totals in
            totals.webhooks += 1
            totals.byClass[status == 0 ? "failed" : "\(status / 100)xx", default: 0] += 1
            totals.bytesOut += bytes
        }
    }

    func reconnected() {
        self.totals.withLock { $0.reconnects += 1 }
    }

    /// One line: `12 webhooks (2xx: 11, 5xx: 1), 3.2 KiB answered, 1 reconnect, up 5m`.
    var summary: String {
        let totals = self.totals.withLock { $0 }
        let classes = totals.byClass.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        let up = ContinuousClock.now - self.started
        return "\(totals.webhooks) webhooks" + (classes.isEmpty ? "" : " (\(classes))")
            + ", \(Console.format(bytes: totals.bytesOut)) answered, \(totals.reconnects) reconnects, up \(Console.format(up))"
    }
}
