/// How much each channel and the whole store hold, checked against the
/// limits before a webhook (or more of its body) is accepted.
///
/// Webhooks still being ingested count with the bytes reserved for them (the
/// declared length, or what arrived so far), so concurrent ingests cannot
/// together pass a limit that each alone would respect.
struct QueueAccounting: Sendable, Equatable {
    struct Usage: Sendable, Equatable {
        var count = 0
        var bytes: Int64 = 0
    }

    let limits: OfflineQueueLimits
    private(set) var channels: [String: Usage] = [:]
    private(set) var totalBytes: Int64 = 0

    init(limits: OfflineQueueLimits) {
        self.limits = limits
    }

    /// Admits one more webhook for `channelID`, reserving `bytes` for its body.
    mutating func admit(channelID: String, bytes: Int64) throws(OfflineQueueRefusal) {
        if bytes > limits.maxBytesPerChannel { throw .bodyTooLarge }
        let usage = channels[channelID, default: Usage()]
        if usage.count + 1 > limits.maxCountPerChannel { throw .channelCountLimit }
        if usage.bytes + bytes > limits.maxBytesPerChannel { throw .channelBytesLimit }
        if totalBytes + bytes > limits.maxTotalBytes { throw .serverBytesLimit }
        channels[channelID, default: Usage()].count += 1
        channels[channelID, default: Usage()].bytes += bytes
        totalBytes += bytes
    }

    /// Grows an admitted webhook's reservation by `extra` bytes, its body now
    /// being `bodyLength` long.
    mutating func grow(channelID: String, by extra: Int64, bodyLength: Int64) throws(OfflineQueueRefusal) {
        guard extra > 0 else { return }
        if bodyLength > limits.maxBytesPerChannel { throw .bodyTooLarge }
        let usage = channels[channelID, default: Usage()]
        if usage.bytes + extra > limits.maxBytesPerChannel { throw .channelBytesLimit }
        if totalBytes + extra > limits.maxTotalBytes { throw .serverBytesLimit }
        channels[channelID, default: Usage()].bytes += extra
        totalBytes += extra
    }

    /// Counts webhooks already stored (at open, or after a rollback) without
    /// checking the limits: what is on disk is on disk.
    mutating func add(channelID: String, count: Int, bytes: Int64) {
        channels[channelID, default: Usage()].count += count
        channels[channelID, default: Usage()].bytes += bytes
        totalBytes += bytes
    }

    /// Gives back `bytes` (and `count` webhooks) of a channel.
    mutating func remove(channelID: String, count: Int, bytes: Int64) {
        guard var usage = channels[channelID] else { return }
        usage.count = max(0, usage.count - count)
        usage.bytes = max(0, usage.bytes - bytes)
        totalBytes = max(0, totalBytes - bytes)
        channels[channelID] = usage.count == 0 && usage.bytes == 0 ? nil : usage
    }

    mutating func removeAll() {
        channels = [:]
        totalBytes = 0
    }
}
