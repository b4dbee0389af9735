import Foundation

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
        let time = Self.clockTime()
        let status = summary.status == 0 ? "---" : "\(summary.status)"
        let marker = (queued.map { "  queued \($0.prefix(8))" } ?? "") + (replayOf.map { "  replay of \($0.prefix(8))" } ?? "")
        self.write(
            "\(time)  \(summary.method.padding(toLength: 7, withPad: " ", startingAt: 0)) \(summary.path)  \(status)  \(Self.format(elapsed))  \(Self.format(bytes: summary.bytes))\(marker)"
        )
    }

    /// Local wall-clock time, `HH:mm:ss`.
    static func clockTime() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return String(format: "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    static func format(_ duration: Duration) -> String {
        let milliseconds = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        if milliseconds < 1000 { return "\(Int(milliseconds.rounded()))ms" }
        let seconds = milliseconds / 1000
        return seconds < 10 ? String(format: "%.1fs", seconds) : "\(Int(seconds.rounded()))s"
    }

    static func format(bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1024 * 1024 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
        return String(format: "%.1f MiB", Double(bytes) / 1024 / 1024)
    }
}
