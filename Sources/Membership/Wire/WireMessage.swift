/// The messages of HashiCorp memberlist's wire protocol, one case per message type byte.
///
/// Field names follow Go's struct fields (the msgpack map keys); see `docs/memberlist-wire.md` in the
/// shared notes, §3 and §5. Addresses are raw IP bytes (4 for IPv4, 16 for IPv6 or IPv4-mapped),
/// exactly as Go writes them, because Go compares them byte for byte.
public enum WireMessage: Hashable, Sendable {
    case ping(Ping)
    case indirectPing(IndirectPing)
    case ack(Ack)
    case nack(Nack)
    case suspect(Suspect)
    case alive(Alive)
    case dead(Dead)
    /// A user message; on UDP its payload follows the type byte as it is.
    case user([UInt8])
}

/// The type byte that starts every message (docs/memberlist-wire.md §3).
public enum MessageType: UInt8, Sendable {
    case ping = 0
    case indirectPing = 1
    case ack = 2
    case suspect = 3
    case alive = 4
    case dead = 5
    case pushPull = 6
    case compound = 7
    case user = 8
    case compress = 9
    case encrypt = 10
    case nack = 11
    case hasCRC = 12
    case error = 13
    case hasLabel = 0xF4
}

/// `ping` (0): a direct probe. The receiver answers with an ``Ack`` carrying the same `seqNo`.
public struct Ping: Hashable, Sendable {
    /// The name of the node being probed; a receiver with another name ignores the ping.
    public var node: String
    public var seqNo: UInt32
    public var sourceAddr: [UInt8]?
    public var sourceNode: String?
    public var sourcePort: UInt16?

    public init(node: String, seqNo: UInt32, sourceAddr: [UInt8]? = nil, sourceNode: String? = nil, sourcePort: UInt16? = nil) {
        self.node = node
        self.seqNo = seqNo
        self.sourceAddr = sourceAddr
        self.sourceNode = sourceNode
        self.sourcePort = sourcePort
    }
}

/// `indirectPing` (1): asks the receiver to probe `target` on the sender's behalf.
public struct IndirectPing: Hashable, Sendable {
    public var nack: Bool
    public var node: String
    public var port: UInt16
    /// The requester's sequence number, echoed in the relayed ack or nack.
    public var seqNo: UInt32
    public var sourceAddr: [UInt8]?
    public var sourceNode: String?
    public var sourcePort: UInt16?
    public var target: [UInt8]

    public init(
        nack: Bool,
        node: String,
        port: UInt16,
        seqNo: UInt32,
        sourceAddr: [UInt8]? = nil,
        sourceNode: String? = nil,
        sourcePort: UInt16? = nil,
        target: [UInt8]
    ) {
        self.nack = nack
        self.node = node
        self.port = port
        self.seqNo = seqNo
        self.sourceAddr = sourceAddr
        self.sourceNode = sourceNode
        self.sourcePort = sourcePort
        self.target = target
    }
}

/// `ackResp` (2).
public struct Ack: Hashable, Sendable {
    public var seqNo: UInt32
    public var payload: [UInt8]?

    public init(seqNo: UInt32, payload: [UInt8]? = nil) {
        self.seqNo = seqNo
        self.payload = payload
    }
}

/// `nackResp` (11): an indirect probe's helper could not reach the target.
public struct Nack: Hashable, Sendable {
    public var seqNo: UInt32

    public init(seqNo: UInt32) { self.seqNo = seqNo }
}

/// `suspect` (3): `from` suspects `node` at `incarnation`.
public struct Suspect: Hashable, Sendable {
    public var from: String
    public var incarnation: UInt32
    public var node: String

    public init(from: String, incarnation: UInt32, node: String) {
        self.from = from
        self.incarnation = incarnation
        self.node = node
    }
}

/// `dead` (5): `node` is dead at `incarnation`; when `from == node` it is a graceful leave.
public struct Dead: Hashable, Sendable {
    public var from: String
    public var incarnation: UInt32
    public var node: String

    public init(from: String, incarnation: UInt32, node: String) {
        self.from = from
        self.incarnation = incarnation
        self.node = node
    }
}

/// `alive` (4): a node announces (or refutes with) its address, metadata and incarnation.
public struct Alive: Hashable, Sendable {
    public var addr: [UInt8]
    public var incarnation: UInt32
    public var meta: [UInt8]
    public var node: String
    public var port: UInt16
    /// `[PMin, PMax, PCur, DMin, DMax, DCur]`; always 6 bytes when sent (docs/memberlist-wire.md §6).
    public var vsn: [UInt8]

    public init(addr: [UInt8], incarnation: UInt32, meta: [UInt8], node: String, port: UInt16, vsn: [UInt8] = ProtocolVersion.default) {
        self.addr = addr
        self.incarnation = incarnation
        self.meta = meta
        self.node = node
        self.port = port
        self.vsn = vsn
    }
}

/// The protocol version numbers a node advertises.
public enum ProtocolVersion {
    /// What a default Go node sends: protocol 1…5, speaking 2; delegate 0/0/0.
    public static let `default`: [UInt8] = [1, 5, 2, 0, 0, 0]
}

/// A node's state as carried in a push/pull exchange (`State` field).
public enum WireNodeState: Int, Hashable, Sendable {
    case alive = 0
    case suspect = 1
    case dead = 2
    case left = 3
}

/// One node in a push/pull exchange (note the key is `Name` here, not `Node`).
public struct PushNodeState: Hashable, Sendable {
    public var addr: [UInt8]
    public var incarnation: UInt32
    public var meta: [UInt8]
    public var name: String
    public var port: UInt16
    public var state: WireNodeState
    public var vsn: [UInt8]

    public init(
        addr: [UInt8],
        incarnation: UInt32,
        meta: [UInt8],
        name: String,
        port: UInt16,
        state: WireNodeState,
        vsn: [UInt8] = ProtocolVersion.default
    ) {
        self.addr = addr
        self.incarnation = incarnation
        self.meta = meta
        self.name = name
        self.port = port
        self.state = state
        self.vsn = vsn
    }
}

/// `pushPull` (6), streams only: a full state exchange (the join, and periodic anti-entropy).
public struct PushPull: Hashable, Sendable {
    public var join: Bool
    public var nodes: [PushNodeState]
    /// The delegate's raw state; empty when there is none.
    public var userState: [UInt8]

    public init(join: Bool, nodes: [PushNodeState], userState: [UInt8] = []) {
        self.join = join
        self.nodes = nodes
        self.userState = userState
    }
}

/// A message carried on a TCP stream (one per connection, docs/memberlist-wire.md §7).
public enum StreamMessage: Hashable, Sendable {
    case pushPull(PushPull)
    case ping(Ping)
    case ack(Ack)
    /// A reliable user message.
    case user([UInt8])
    /// `err` (13): the peer could not read what it was sent.
    case error(String)
}
