/// How much history the inspector keeps (docs/inspector.md, "History").
public struct HistoryLimits: Sendable, Equatable {
    /// Most webhooks kept; the oldest go first.
    public var maxWebhooks: Int
    /// Most bytes of kept heads and bodies; the oldest go first.
    public var maxBytes: Int
    /// Bytes of each body kept; a longer body keeps its first bytes plus its
    /// size and SHA-256.
    public var captureLimit: Int

    public init(maxWebhooks: Int = 1_000, maxBytes: Int = 256 << 20, captureLimit: Int = 1 << 20) {
        self.maxWebhooks = maxWebhooks
        self.maxBytes = maxBytes
        self.captureLimit = captureLimit
    }
}
