extension StreamMessage {
    /// The message as Go writes it on a TCP stream (docs/memberlist-wire.md §5.7, §7.1).
    ///
    /// - Parameter compressed: wrap the whole message in `09 {Algo: 0, Buf: LZW(message)}`, as a
    ///   default-config Go node does with every stream message (without checking that it got smaller).
    ///   Go reads both forms.
    public func encoded(compressed: Bool) -> [UInt8] {
        let plain = self.plainEncoding()
        guard compressed else { return plain }
        var writer = MessagePackWriter(reservingCapacity: plain.count + 16)
        writer.writeByte(MessageType.compress.rawValue)
        Compressed(buffer: LZW.compress(plain)).write(to: &writer)
        return writer.bytes
    }

    private func plainEncoding() -> [UInt8] {
        var writer = MessagePackWriter()
        switch self {
        case .pushPull(let pushPull):
            writer.writeByte(MessageType.pushPull.rawValue)
            let header = PushPullHeader(
                join: pushPull.join,
                nodes: Int64(pushPull.nodes.count),
                userStateLength: Int64(pushPull.userState.count)
            )
            header.write(to: &writer)
            for node in pushPull.nodes {
                node.write(to: &writer)
            }
            writer.writeBytes(pushPull.userState)
        case .ping(let ping):
            writer.writeByte(MessageType.ping.rawValue)
            ping.write(to: &writer)
        case .ack(let ack):
            writer.writeByte(MessageType.ack.rawValue)
            ack.write(to: &writer)
        case .user(let payload):
            writer.writeByte(MessageType.user.rawValue)
            UserMessageHeader(length: Int64(payload.count)).write(to: &writer)
            writer.writeBytes(payload)
        case .error(let message):
            writer.writeByte(MessageType.error.rawValue)
            ErrorResponse(error: message).write(to: &writer)
        }
        return writer.bytes
    }
}
