import ArgumentParser

/// A duration in Go's syntax: `300ms`, `30s`, `5m`, `1h30m`, `1.5h`; `0` alone
/// is zero. Units: ns, us (µs), ms, s, m, h.
struct GoDuration: ExpressibleByArgument, Sendable, Equatable {
    var duration: Duration

    init(_ duration: Duration) {
        self.duration = duration
    }

    init?(argument: String) {
        guard let duration = Self.parse(argument) else { return nil }
        self.duration = duration
    }

    var defaultValueDescription: String { Self.format(self.duration) }

    static func parse(_ text: String) -> Duration? {
        if text == "0" { return .zero }
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        var total: Double = 0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !$0.isNumber && $0 != "." }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1e-9
            case "us", "µs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: return nil
            }
            total += value * scale
        }
        guard total.isFinite, total < 1e12 else { return nil }
        return .nanoseconds(Int64((total * 1e9).rounded()))
    }

    static func format(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds == 0 { return "\(duration.components.attoseconds / 1_000_000_000_000_000)ms" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
