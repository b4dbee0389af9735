/// A cluster member as the rest of the program sees it.
public struct Member: Hashable, Sendable {
    public enum Status: Hashable, Sendable {
        case alive
        case suspect
        case dead
        /// Left gracefully.
        case left
    }

    public var name: String
    public var address: NodeAddress
    /// The node's metadata; for our replicas, their HTTP base URL.
    public var meta: [UInt8]
    public var incarnation: UInt32
    public var status: Status
    /// `[PMin, PMax, PCur, DMin, DMax, DCur]`.
    public var vsn: [UInt8]

    public init(name: String, address: NodeAddress, meta: [UInt8], incarnation: UInt32, status: Status, vsn: [UInt8] = ProtocolVersion.default) {
        self.name = name
        self.address = address
        self.meta = meta
        self.incarnation = incarnation
        self.status = status
        self.vsn = vsn
    }

    /// The metadata as text (our replicas put their URL there).
    public var metaString: String { String(decoding: meta, as: UTF8.self) }

    /// The highest protocol version the node understands; decides CRC headers (≥ 5) and nacks (≥ 4).
    var protocolMax: UInt8 { vsn.count >= 2 ? vsn[1] : 2 }
}

extension Member.Status {
    var wire: WireNodeState {
        switch self {
        case .alive: .alive
        case .suspect: .suspect
        case .dead: .dead
        case .left: .left
        }
    }

    var isDeadOrLeft: Bool { self == .dead || self == .left }
}
