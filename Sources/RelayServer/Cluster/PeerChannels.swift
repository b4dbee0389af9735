/// What one replica holds, as its `/internal/channels` says.
struct PeerChannels: Sendable, Decodable {
    /// Every channel the replica knows (issued or connected there).
    var ws_channels: [String]
    /// Channels whose client is connected there now.
    var webhook_channels: [String]
    /// The replica's own base URL.
    var server_url: String
}
