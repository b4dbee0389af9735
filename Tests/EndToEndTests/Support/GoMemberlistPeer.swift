import Foundation

/// A real HashiCorp memberlist node (Go), from the shared interop helper, reporting what it sees as
/// JSON lines. `.ci/run` builds it and sets `MEMBERLIST_PEER_BIN`.
struct GoMemberlistPeer: Sendable {
    static var binary: String? {
        ProcessInfo.processInfo.environment["MEMBERLIST_PEER_BIN"].flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil }
    }

    let process: ToolProcess
    let name: String

    static func start(name: String, host: String, join: String? = nil, meta: String, extra: [String] = []) async throws -> GoMemberlistPeer {
        guard let binary else { throw TimedOut(what: "MEMBERLIST_PEER_BIN is not set") }
        var arguments = ["--name", name, "--bind-addr", host, "--bind-port", "7946", "--duration", "300s", "--quiet", "--meta", meta]
        // Members every 200 ms, so a test sees a change when it happens rather than up to 1 s later.
        arguments += ["--members-interval", "200ms"]
        if let join { arguments += ["--join", join] }
        let process = try ToolProcess(arguments + extra, executable: binary)
        let peer = GoMemberlistPeer(process: process, name: name)
        do {
            try await process.waitForLine("the ready line", timeout: .seconds(20)) { Self.event($0) == "ready" }
        } catch {
            await process.stop()
            throw error
        }
        return peer
    }

    static func event(_ line: String) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["event"] as? String
    }

    static func object(_ line: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
    }

    /// Waits for a `members` line listing exactly these names, and returns its members (name → entry).
    @discardableResult
    func waitForMembers(_ names: Set<String>, timeout: Duration) async throws -> [String: [String: Any]] {
        let line = try await process.waitForLine("a members line with \(names.sorted())", timeout: timeout) { line in
            guard Self.event(line) == "members" else { return false }
            let members = Self.object(line)["members"] as? [[String: Any]] ?? []
            return Set(members.compactMap { $0["name"] as? String }) == names
        }
        let members = Self.object(line)["members"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: members.compactMap { entry in (entry["name"] as? String).map { ($0, entry) } })
    }

    /// Waits for the `leave` event naming `node` (a graceful leave, or being declared dead).
    func waitForLeave(of node: String, timeout: Duration) async throws {
        try await process.waitForLine("a leave event for \(node)", timeout: timeout) { line in
            Self.event(line) == "leave" && Self.object(line)["name"] as? String == node
        }
    }

    /// Whether a leave event naming `node` was printed.
    func sawLeave(of node: String) -> Bool {
        process.count { Self.event($0) == "leave" && Self.object($0)["name"] as? String == node } > 0
    }
}
