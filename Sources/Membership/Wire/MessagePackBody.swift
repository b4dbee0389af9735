/// A message body that is one msgpack map of a Go struct (docs/memberlist-wire.md §5).
///
/// Writers emit keys in ascending byte order of the Go field name, as go-msgpack does; readers accept
/// any order, skip unknown keys and leave missing fields at Go's zero value. Go cannot tell a nil byte
/// slice from an empty one after decoding, so readers don't either: nil, empty and absent all decode
/// to the same value.
protocol MessagePackBody {
    init(reading reader: inout MessagePackReader) throws
    func write(to writer: inout MessagePackWriter)
}

extension MessagePackBody {
    var messagePack: [UInt8] {
        var writer = MessagePackWriter()
        self.write(to: &writer)
        return writer.bytes
    }
}

/// The `omitempty` rule of Go's `Source*` fields: zero and empty count as absent.
private func nonEmpty(_ value: [UInt8]?) -> [UInt8]? { value?.isEmpty == false ? value : nil }
private func nonEmpty(_ value: String?) -> String? { value?.isEmpty == false ? value : nil }
private func nonZero(_ value: UInt16?) -> UInt16? { value == 0 ? nil : value }

/// Writes the optional `SourceAddr`, `SourceNode`, `SourcePort` entries (already in key order).
private func writeSource(addr: [UInt8]?, node: String?, port: UInt16?, to writer: inout MessagePackWriter) {
    if let addr {
        writer.writeString("SourceAddr")
        writer.writeRaw(addr)
    }
    if let node {
        writer.writeString("SourceNode")
        writer.writeString(node)
    }
    if let port {
        writer.writeString("SourcePort")
        writer.writeUnsigned(port)
    }
}

extension Ping: MessagePackBody {
    init(reading reader: inout MessagePackReader) throws {
        self.init(node: "", seqNo: 0)
        try reader.readMap { key, reader in
            switch key {
            case "Node": self.node = try reader.readString()
            case "SeqNo": self.seqNo = try reader.readUnsigned()
            case "SourceAddr": self.sourceAddr = nonEmpty(try reader.readRaw())
            case "SourceNode": self.sourceNode = nonEmpty(try reader.readString())
            case "SourcePort": self.sourcePort = nonZero(try reader.readUnsigned())
            default: return false
            }
            return true
        }
    }

    func write(to writer: inout MessagePackWriter) {
        let (addr, node, port) = (nonEmpty(self.sourceAddr), nonEmpty(self.sourceNode), nonZero(self.sourcePort))
        writer.writeMapHeader(2 + (addr == nil ? 0 : 1) + (node == nil ? 0 : 1) + (port == nil ? 0 : 1))
        writer.writeString("Node")
        writer.writeString(self.node)
        writer.writeString("SeqNo")
        writer.writeUnsigned(self.seqNo)
        writeSource(addr: addr, node: node, port: port, to: &writer)
    }
}

extension IndirectPing: MessagePackBody {
    init(reading reader: inout MessagePackReader) throws {
        self.init(nack: false, node: "", port: 0, seqNo: 0, target: [])
        try reader.readMap { key, reader in
            switch key {
            case "Nack": self.nack = try reader.readBool()
            case "Node": self.node = try reader.readString()
            case "Port": self.port = try reader.readUnsigned()
            case "SeqNo": self.seqNo = try reader.readUnsigned()
            case "SourceAddr": self.sourceAddr = nonEmpty(try reader.readRaw())
            case "SourceNode": self.sourceNode = nonEmpty(try reader.readString())
            case "SourcePort": self.sourcePort = nonZero(try reader.readUnsigned())
            case "Target": self.target = try reader.readRaw() ?? []
            default: return false
            }
            return true
        }
    }

    func write(to writer: inout MessagePackWriter) {
        let (addr, node, port) = (nonEmpty(self.sourceAddr), nonEmpty(self.sourceNode), nonZero(self.sourcePort))
        writer.writeMapHeader(5 + (addr == nil ? 0 : 1) + (node == nil ? 0 : 1) + (port == nil ? 0 : 1))
        writer.writeString("Nack")
        writer.writeBool(self.nack)
        writer.writeString("Node")
        writer.writeString(self.node)
        writer.writeString("Port")
        writer.writeUnsigned(self.port)
        writer.writeString("SeqNo")
        writer.writeUnsigned(self.seqNo)
        writeSource(addr: addr, node: node, port: port, to: &writer)
        writer.writeString("Target")
        writer.writeRaw(self.target)
    }
}

extension Ack: MessagePackBody {
    init(reading reader: inout MessagePackReader) throws {
        self.init(seqNo: 0)
        try reader.readMap { key, reader in
            switch key {
            case "Payload": self.payload = nonEmpty(try reader.readRaw())
            case "SeqNo": self.seqNo = try reader.readUnsigned()
            default: return false
            }
            return true
        }
    }

    func write(to writer: inout MessagePackWriter) {
        writer.writeMapHeader(2)
        writer.writeString("Payload")
        writer.writeRaw(self.payload)
        writer.writeString("SeqNo")
        writer.writeUnsigned(self.seqNo)
    }
}

extension Nack: MessagePackBody {
    init(reading reader: inout MessagePackReader) throws {
        self.init(seqNo: 0)
        try reader.readMap { key, reader in
            guard key == "SeqNo" else { return false }
            self.seqNo = try reader.readUnsigned()
            return true
        }
    }

    func write(to writer: inout MessagePackWriter) {
        writer.writeMapHeader(1)
        writer.writeString("SeqNo")
        writer.writeUnsigned(self.seqNo)
    }
}

/// `suspect` and `dead` share their fields (`From`, `Incarnation`, `Node`).
private func readAccusation(_ reader: inout MessagePackReader) throws -> (from: String, incarnation: UInt32, node: String) {
    var result = (from: "", incarnation: UInt32(0), node: "")
    try reader.readMap { key, reader in
        switch key {
        case "From": result.from = try reader.readString()
        case "Incarnation": result.incarnation = try reader.readUnsigned()
        case "Node": result.node = try reader.readString()
        default: return false
        }
        return true
    }
    return result
}

private func writeAccusation(from: String, incarnation: UInt32, node: String, to writer: inout MessagePackWriter) {
    writer.writeMapHeader(3)
    writer.writeString("From")
    writer.writeString(from)
    writer.writeString("Incarnation")
    writer.writeUnsigned(incarnation)
    writer.writeString("Node")
    writer.writeString(node)
}

extension Suspect: MessagePackBody {
    init(reading reader: inout MessagePackReader) throws {
        let fields = try readAccusation(&reader)
        self.init(from: fields.from, incarnation: fields.incarnation, node: fields.node)
    }

    func write(to writer: inout MessagePackWriter) {
        writeAccusation(from: self.from, incarnation: self.incarnation, node: self.node, to: &writer)
    }
}

extension Dead: MessagePackBody {
    init(reading reader: inout MessagePackReader) throws {
        let fields = try readAccusation(&reader)
        self.init(from: fields.from, incarnation: fields.incarnation, node: fields.node)
    }

    func write(to writer: inout MessagePackWriter) {
        writeAccusation(from: self.from, incarnation: self.incarnation, node: self.node, to: &writer)
    }
}

extension Alive: MessagePackBody {
    init(reading reader: inout MessagePackReader) throws {
        self.init(addr: [], incarnation: 0, meta: [], node: "", port: 0, vsn: [])
        try reader.readMap { key, reader in
            switch key {
            case "Addr": self.addr = try reader.readRaw() ?? []
            case "Incarnation": self.incarnation = try reader.readUnsigned()
            case "Meta": self.meta = try reader.readRaw() ?? []
            case "Node": self.node = try reader.readString()
            case "Port": self.port = try reader.readUnsigned()
            case "Vsn": self.vsn = try reader.readRaw() ?? []
            default: return false
            }
            return true
        }
    }

    /// Empty `Meta` is written `A0` (an empty, non-nil Go slice), as the captured alive in §12.3 has it.
    func write(to writer: inout MessagePackWriter) {
        writer.writeMapHeader(6)
        writer.writeString("Addr")
        writer.writeRaw(self.addr)
        writer.writeString("Incarnation")
        writer.writeUnsigned(self.incarnation)
        writer.writeString("Meta")
        writer.writeRaw(self.meta)
        writer.writeString("Node")
        writer.writeString(self.node)
        writer.writeString("Port")
        writer.writeUnsigned(self.port)
        writer.writeString("Vsn")
        writer.writeRaw(self.vsn)
    }
}

extension PushNodeState {
    /// Reads one node state of a push/pull. Returns nil for a `State` outside 0…3: Go's merge ignores
    /// such nodes, so dropping them keeps the rest of the exchange usable.
    static func read(from reader: inout MessagePackReader) throws -> PushNodeState? {
        var node = PushNodeState(addr: [], incarnation: 0, meta: [], name: "", port: 0, state: .alive, vsn: [])
        var state: Int64 = 0
        try reader.readMap { key, reader in
            switch key {
            case "Addr": node.addr = try reader.readRaw() ?? []
            case "Incarnation": node.incarnation = try reader.readUnsigned()
            case "Meta": node.meta = try reader.readRaw() ?? []
            case "Name": node.name = try reader.readString()
            case "Port": node.port = try reader.readUnsigned()
            case "State": state = try reader.readSigned()
            case "Vsn": node.vsn = try reader.readRaw() ?? []
            default: return false
            }
            return true
        }
        guard let known = Int(exactly: state).flatMap(WireNodeState.init(rawValue:)) else { return nil }
        node.state = known
        return node
    }

    func write(to writer: inout MessagePackWriter) {
        writer.writeMapHeader(7)
        writer.writeString("Addr")
        writer.writeRaw(self.addr)
        writer.writeString("Incarnation")
        writer.writeUnsigned(self.incarnation)
        writer.writeString("Meta")
        writer.writeRaw(self.meta)
        writer.writeString("Name")
        writer.writeString(self.name)
        writer.writeString("Port")
        writer.writeUnsigned(self.port)
        writer.writeString("State")
        writer.writeInt(self.state.rawValue)
        writer.writeString("Vsn")
        writer.writeRaw(self.vsn)
    }
}

/// The header map that starts a push/pull (`pushPullHeader`).
struct PushPullHeader: MessagePackBody, Hashable {
    var join: Bool
    var nodes: Int64
    var userStateLength: Int64

    init(join: Bool, nodes: Int64, userStateLength: Int64) {
        self.join = join
        self.nodes = nodes
        self.userStateLength = userStateLength
    }

    init(reading reader: inout MessagePackReader) throws {
        self.init(join: false, nodes: 0, userStateLength: 0)
        try reader.readMap { key, reader in
            switch key {
            case "Join": self.join = try reader.readBool()
            case "Nodes": self.nodes = try reader.readSigned()
            case "UserStateLen": self.userStateLength = try reader.readSigned()
            default: return false
            }
            return true
        }
    }

    func write(to writer: inout MessagePackWriter) {
        writer.writeMapHeader(3)
        writer.writeString("Join")
        writer.writeBool(self.join)
        writer.writeString("Nodes")
        writer.writeInt(Int(self.nodes))
        writer.writeString("UserStateLen")
        writer.writeInt(Int(self.userStateLength))
    }
}

/// The header map of a stream user message (`userMsgHeader`).
struct UserMessageHeader: MessagePackBody {
    var length: Int64

    init(length: Int64) { self.length = length }

    init(reading reader: inout MessagePackReader) throws {
        self.init(length: 0)
        try reader.readMap { key, reader in
            guard key == "UserMsgLen" else { return false }
            self.length = try reader.readSigned()
            return true
        }
    }

    func write(to writer: inout MessagePackWriter) {
        writer.writeMapHeader(1)
        writer.writeString("UserMsgLen")
        writer.writeInt(Int(self.length))
    }
}

/// The body of a stream `err` message (`errResp`).
struct ErrorResponse: MessagePackBody {
    var error: String

    init(error: String) { self.error = error }

    init(reading reader: inout MessagePackReader) throws {
        self.init(error: "")
        try reader.readMap { key, reader in
            guard key == "Error" else { return false }
            self.error = try reader.readString()
            return true
        }
    }

    func write(to writer: inout MessagePackWriter) {
        writer.writeMapHeader(1)
        writer.writeString("Error")
        writer.writeString(self.error)
    }
}

/// The body of a `compress` (9) message: `Buf` LZW-decodes to a complete message, type byte included.
struct Compressed: MessagePackBody {
    /// Only 0 (LZW) exists.
    var algorithm: UInt64
    var buffer: [UInt8]

    init(algorithm: UInt64 = 0, buffer: [UInt8]) {
        self.algorithm = algorithm
        self.buffer = buffer
    }

    init(reading reader: inout MessagePackReader) throws {
        self.init(buffer: [])
        try reader.readMap { key, reader in
            switch key {
            case "Algo": self.algorithm = try reader.readUnsigned()
            case "Buf": self.buffer = try reader.readRaw() ?? []
            default: return false
            }
            return true
        }
    }

    func write(to writer: inout MessagePackWriter) {
        writer.writeMapHeader(2)
        writer.writeString("Algo")
        writer.writeUnsigned(self.algorithm)
        writer.writeString("Buf")
        writer.writeRaw(self.buffer)
    }

    /// Decompresses `Buf`, rejecting other algorithms and (as latest Go does) an empty result.
    func decompressed(limit: Int) throws -> [UInt8] {
        guard self.algorithm == 0 else { throw WireError.unsupportedCompression(algorithm: self.algorithm) }
        let bytes = try LZW.decompress(self.buffer, limit: limit)
        guard !bytes.isEmpty else { throw WireError.invalidCompressedData }
        return bytes
    }
}
