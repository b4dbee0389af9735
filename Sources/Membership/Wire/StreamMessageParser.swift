/// Parses one uncompressed stream message (type byte, msgpack, raw tail) resumably.
///
/// A stream carries no length and is not half-closed (docs/memberlist-wire.md §7.2), so completeness can only be
/// learned from the structure: the msgpack maps are walked with a ``MessagePackScanner`` and the raw
/// tail (push/pull user state, user message payload) is as long as its header said. The parser keeps
/// its place between calls, so each byte is examined a bounded number of times however the stream is
/// split. ``StreamMessageDecoder`` uses it on the live stream and on a decompressed `Buf`.
struct StreamMessageParser {
    /// Latest Go rejects push/pulls with more node states than this.
    static let maxNodes = 1 << 20
    /// Latest Go rejects push/pull user state and stream user messages larger than this (20 MiB).
    static let maxPayload = 20 << 20

    private enum Step {
        case typeByte
        /// Walking the map that follows the type byte.
        case header(MessageType, MessagePackScanner)
        /// Walking node state maps; `remaining` more follow the one being scanned.
        case nodes(PushPullHeader, remaining: Int, MessagePackScanner)
        case userState(PushPullHeader)
        case userPayload(length: Int)
    }

    private var step = Step.typeByte
    /// Index of the first byte not yet parsed.
    private(set) var position: Int
    /// Node states read so far, kept outside `step` so appending never copies the array.
    private var nodes: [PushNodeState] = []

    init(startingAt position: Int) {
        self.position = position
    }

    /// Parses on from ``position`` over `bytes[..<available]`.
    ///
    /// - Parameters:
    ///   - limit: the index the message must end by; `exceeding` is thrown if it cannot.
    /// - Returns: the message once complete (``position`` is then just past it), or nil if more bytes
    ///   are needed.
    mutating func parse(_ bytes: [UInt8], available: Int, limit: Int, exceeding: WireError) throws -> StreamMessage? {
        while true {
            switch self.step {
            case .typeByte:
                guard self.position < available else {
                    if self.position >= limit { throw exceeding }
                    return nil
                }
                let typeByte = bytes[self.position]
                guard let type = MessageType(rawValue: typeByte), [.ping, .ack, .pushPull, .user, .error].contains(type) else {
                    throw WireError.unexpectedMessageType(typeByte)
                }
                self.position += 1
                self.step = .header(type, MessagePackScanner(startingAt: self.position))

            case .header(let type, var scanner):
                let found = try scanner.scan(bytes, available: available, limit: limit, exceeding: exceeding)
                guard let end = found else {
                    self.step = .header(type, scanner)
                    return nil
                }
                var reader = MessagePackReader(bytes, range: self.position..<end)
                self.position = end
                switch type {
                case .ping: return .ping(try Ping(reading: &reader))
                case .ack: return .ack(try Ack(reading: &reader))
                case .error: return .error(try ErrorResponse(reading: &reader).error)
                case .user:
                    let length = try UserMessageHeader(reading: &reader).length
                    guard length >= 0 else { throw WireError.integerOutOfRange }
                    guard length <= Self.maxPayload else { throw WireError.payloadTooLarge(Int(length)) }
                    self.step = .userPayload(length: Int(length))
                default:
                    let header = try PushPullHeader(reading: &reader)
                    guard header.nodes >= 0, header.userStateLength >= 0 else { throw WireError.integerOutOfRange }
                    guard header.nodes <= Self.maxNodes else { throw WireError.tooManyNodes(Int(header.nodes)) }
                    guard header.userStateLength <= Self.maxPayload else {
                        throw WireError.payloadTooLarge(Int(header.userStateLength))
                    }
                    self.nodes = []
                    // The count is the peer's claim; don't reserve more than a modest amount on its word.
                    self.nodes.reserveCapacity(min(Int(header.nodes), 1024))
                    self.step =
                        header.nodes > 0
                        ? .nodes(header, remaining: Int(header.nodes) - 1, MessagePackScanner(startingAt: self.position))
                        : .userState(header)
                }

            case .nodes(let header, var remaining, var scanner):
                while true {
                    let found = try scanner.scan(bytes, available: available, limit: limit, exceeding: exceeding)
                    guard let end = found else {
                        self.step = .nodes(header, remaining: remaining, scanner)
                        return nil
                    }
                    var reader = MessagePackReader(bytes, range: self.position..<end)
                    self.position = end
                    if let node = try PushNodeState.read(from: &reader) {
                        self.nodes.append(node)
                    }
                    guard remaining > 0 else { break }
                    remaining -= 1
                    scanner = MessagePackScanner(startingAt: self.position)
                }
                self.step = .userState(header)

            case .userState(let header):
                guard let userState = try self.readTail(Int(header.userStateLength), bytes, available, limit, exceeding) else {
                    return nil
                }
                let nodes = self.nodes
                self.nodes = []
                return .pushPull(PushPull(join: header.join, nodes: nodes, userState: userState))

            case .userPayload(let length):
                guard let payload = try self.readTail(length, bytes, available, limit, exceeding) else { return nil }
                return .user(payload)
            }
        }
    }

    /// Takes the `length` raw bytes at ``position`` once they have all arrived.
    private mutating func readTail(
        _ length: Int,
        _ bytes: [UInt8],
        _ available: Int,
        _ limit: Int,
        _ exceeding: WireError
    ) throws -> [UInt8]? {
        guard length <= limit - self.position else { throw exceeding }
        guard length <= available - self.position else { return nil }
        defer { self.position += length }
        return Array(bytes[self.position..<self.position + length])
    }
}
