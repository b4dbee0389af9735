import Foundation
import Synchronization

/// The client's human-facing output: the start-up lines, one line per
/// webhook, and reconnect notices. Logs go elsewhere (standard error).
struct Console: Sendable {
    let write: @Sendable (String) -> Void

    func line(_ text: String) {
        self.write(text)
    }

    func announce(channel id: String, serverURL: String) {
        self.write("Issued Channel ID: \(id)")
        self.write("Please set the webhook destination as follows: \(serverURL)/webhook/\(id)")
    }

    /// One line per webhook; `queued` is the delivery id of a webhook the
    /// server queued while this client was away, `replayOf` the inspector id
    /// of the webhook a replay repeats (their first 8 characters are shown).
    func webhook(_ summary: LocalForwarder.Summary, elapsed: Duration, queued: String? = nil, replayOf: String? = nil) {
        self.write(Self.webhookLine(summary, elapsed: elapsed, queued: queued, replayOf: replayOf, time: Self.clockTime()))
    }

    /// The line itself, built without `String(format:)` or `padding(toLength:)`: on a busy tunnel
    /// this runs once per webhook on the event loop, and Foundation's formatting was 7 % of the
    /// client's CPU (docs/performance.md).
    static func webhookLine(_ summary: LocalForwarder.Summary, elapsed: Duration, queued: String?, replayOf: String?, time: String) -> String {
        let status = summary.status == 0 ? "---" : String(summary.status)
        var method = summary.method
        if method.utf8.count < 7 { method += String(repeating: " ", count: 7 - method.utf8.count) }
        var line = "\(time)  \(method) \(summary.path)  \(status)  \(Self.format(elapsed))  \(Self.format(bytes: summary.bytes))"
        if let queued { line += "  queued \(queued.prefix(8))" }
        if let replayOf { line += "  replay of \(replayOf.prefix(8))" }
        return line
    }

    /// Local wall-clock time, `HH:mm:ss`, computed once per second.
    static func clockTime() -> String {
        let now = time(nil)
        if let cached = Self.clock.withLock({ $0.second == now ? $0.text : nil }) { return cached }
        var seconds = now
        var parts = tm()
        localtime_r(&seconds, &parts)
        let text = Self.twoDigits(parts.tm_hour) + ":" + Self.twoDigits(parts.tm_min) + ":" + Self.twoDigits(parts.tm_sec)
        Self.clock.withLock { $0 = (now, text) }
        return text
    }

    private static let clock = Mutex<(second: time_t, text: String)>((-1, ""))

    private static func twoDigits(_ value: Int32) -> String {
        value < 10 ? "0\(value)" : String(value)
    }

    static func format(_ duration: Duration) -> String {
        let milliseconds = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        if milliseconds < 1000 { return "\(Int(milliseconds.rounded()))ms" }
        let seconds = milliseconds / 1000
        return seconds < 10 ? String(format: "%.1fs", seconds) : "\(Int(seconds.rounded()))s"
    }

    static func format(bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1024 * 1024 { return Self.oneDecimal(bytes, per: 1024) + " KiB" }
        return Self.oneDecimal(bytes, per: 1024 * 1024) + " MiB"
    }

    /// `count / unit` with one decimal, rounded half up (`%.1f` without Foundation).
    static func oneDecimal(_ count: Int, per unit: Int) -> String {
        let tenths = (count * 10 + unit / 2) / unit
        return "\(tenths / 10).\(tenths % 10)"
    }
}
