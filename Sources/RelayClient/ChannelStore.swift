import Foundation

/// The channel a client holds on a server, kept on disk so a restarted
/// client comes back to the same webhook URL.
public struct SavedChannel: Codable, Sendable, Equatable {
    public var channelID: String
    public var token: String?

    enum CodingKeys: String, CodingKey {
        case channelID = "channel_id"
        case token
    }
}

/// One small JSON file per server URL in the state directory.
struct ChannelStore: Sendable {
    let directory: String
    let serverURL: String

    var path: String {
        let safe = self.serverURL.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }
        return (self.directory as NSString).appendingPathComponent("channel-\(String(safe)).json")
    }

    func load() -> SavedChannel? {
        guard let data = FileManager.default.contents(atPath: self.path) else { return nil }
        return try? JSONDecoder().decode(SavedChannel.self, from: data)
    }

    /// Saves atomically with owner-only permissions: the file holds a token.
    func save(_ channel: SavedChannel) throws {
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let data = try JSONEncoder().encode(channel)
        let url = URL(fileURLWithPath: self.path)
        try data.write(to: url, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: self.path)
    }

    /// The platform's config directory for this tool: `$XDG_CONFIG_HOME` or
    /// `~/.config` on Linux, Application Support on macOS.
    static func defaultDirectory() -> String {
        let environment = ProcessInfo.processInfo.environment
        #if os(macOS)
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/Library/Application Support/webhook-over-websocket"
        #else
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty { return xdg + "/webhook-over-websocket" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.config/webhook-over-websocket"
        #endif
    }
}

extension RelayClientConfiguration {
    /// The default `--state-dir`.
    public static var defaultStateDirectory: String { ChannelStore.defaultDirectory() }
}
