import NIOCore

@testable import Membership

/// Parses whitespace-separated hex bytes, as docs/memberlist-wire.md prints them.
func hex(_ text: String) -> [UInt8] {
    text.split(whereSeparator: \.isWhitespace).map { byte in
        guard let value = UInt8(byte, radix: 16) else { fatalError("bad hex byte \(byte) in test vector") }
        return value
    }
}

/// The real packets of `memberlist-wire.md` §12, captured between two memberlist 0.2.2 nodes.
/// Node `a` is 127.0.0.2:7946, node `b` is 127.0.0.3:7946 with Meta "http://127.0.0.3:8080".
enum WireVectors {
    static let addressA: [UInt8] = [127, 0, 0, 2]
    static let addressB: [UInt8] = [127, 0, 0, 3]
    static let metaB = Array("http://127.0.0.3:8080".utf8)

    /// §12.1: ping b → a.
    static let ping = hex(
        """
        00 85 a4 4e 6f 64 65 a1 61 a5 53 65 71 4e 6f 01
        aa 53 6f 75 72 63 65 41 64 64 72 a4 7f 00 00 03
        aa 53 6f 75 72 63 65 4e 6f 64 65 a1 62
        aa 53 6f 75 72 63 65 50 6f 72 74 cd 1f 0a
        """
    )
    static let pingMessage = WireMessage.ping(Ping(node: "a", seqNo: 1, sourceAddr: addressB, sourceNode: "b", sourcePort: 7946))

    /// §12.2: ackResp a → b.
    static let ack = hex("02 82 a7 50 61 79 6c 6f 61 64 c0 a5 53 65 71 4e 6f 01")
    static let ackMessage = WireMessage.ack(Ack(seqNo: 1))

    /// §12.3 part 1: alive for b, exactly as captured.
    static let aliveB = hex(
        """
        04 86 a4 41 64 64 72 a4 7f 00 00 03 ab 49 6e 63 61 72 6e 61 74 69 6f 6e 01
        a4 4d 65 74 61 b5 68 74 74 70 3a 2f 2f 31 32 37 2e 30 2e 30 2e 33 3a 38 30 38 30
        a4 4e 6f 64 65 a1 62 a4 50 6f 72 74 cd 1f 0a a3 56 73 6e a6 01 05 02 00 00 00
        """
    )
    static let aliveBMessage = WireMessage.alive(Alive(addr: addressB, incarnation: 1, meta: metaB, node: "b", port: 7946))

    /// §12.3 part 2, reconstructed from the doc's description (alive for a, empty Meta `A0`,
    /// incarnation 1); the captured CRC below confirms every byte.
    static let aliveA = hex(
        """
        04 86 a4 41 64 64 72 a4 7f 00 00 02 ab 49 6e 63 61 72 6e 61 74 69 6f 6e 01
        a4 4d 65 74 61 a0 a4 4e 6f 64 65 a1 61 a4 50 6f 72 74 cd 1f 0a a3 56 73 6e a6 01 05 02 00 00 00
        """
    )
    static let aliveAMessage = WireMessage.alive(Alive(addr: addressA, incarnation: 1, meta: [], node: "a", port: 7946))

    /// §12.3: the whole 146-byte gossip packet, CRC header included.
    static let gossip = hex("0c ec da 32 65 07 02 00 4e 00 39") + aliveB + aliveA

    /// §12.4: push/pull join request b → a, uncompressed, node names `node-a`/`node-b`.
    static let pushPull = hex(
        """
        06 83 a4 4a 6f 69 6e c3 a5 4e 6f 64 65 73 01 ac 55 73 65 72 53 74 61 74 65 4c 65 6e 00
        87 a4 41 64 64 72 a4 7f 00 00 03 ab 49 6e 63 61 72 6e 61 74 69 6f 6e 01
        a4 4d 65 74 61 b5 68 74 74 70 3a 2f 2f 31 32 37 2e 30 2e 30 2e 33 3a 38 30 38 30
        a4 4e 61 6d 65 a6 6e 6f 64 65 2d 62 a4 50 6f 72 74 cd 1f 0a a5 53 74 61 74 65 00
        a3 56 73 6e a6 01 05 02 00 00 00
        """
    )
    static func pushPullMessage(name: String) -> StreamMessage {
        .pushPull(
            PushPull(
                join: true,
                nodes: [PushNodeState(addr: addressB, incarnation: 1, meta: metaB, name: name, port: 7946, state: .alive)]
            )
        )
    }

    /// §12.5: the `Buf` of the same request with default compression (node name `b`).
    static let compressedPushPullBuffer = hex(
        """
        00 0d 0c 22 a5 e4 4d 1a 37 c3 4a 39 79 43 a6 cc 9c 00 ac aa cc 29 23 67 0a 9d 30 74
        ca 30 29 e3 06 c0 21 52 41 c8 90 91 43 ea 0f 00 00 03 56 25 71 33 26 8c 1c 37 18 d3
        bc 71 13 80 54 93 32 17 6b a1 a1 43 07 8e 8e 17 2f 62 c8 b8 e1 02 46 51 17 33 74 e0
        80 b1 94 94 93 30 6d ca 84 12 43 0a ca 1b 39 74 9a 7d 50 50 ca 22 c6 32 00 46 59 99
        e3 c6 54 80 02 02 4e 02 08 08
        """
    )
    /// §12.5: the 137 bytes on the wire.
    static let compressedPushPull = hex("09 82 a4 41 6c 67 6f 00 a3 42 75 66 da 00 7a") + compressedPushPullBuffer

    /// §12.6: indirectPing b → a.
    static let indirectPing = hex(
        """
        01 88 a4 4e 61 63 6b c3 a4 4e 6f 64 65 a1 63 a4 50 6f 72 74 cd 1f 0a a5 53 65 71 4e 6f 06
        aa 53 6f 75 72 63 65 41 64 64 72 a4 7f 00 00 03
        aa 53 6f 75 72 63 65 4e 6f 64 65 a1 62
        aa 53 6f 75 72 63 65 50 6f 72 74 cd 1f 0a
        a6 54 61 72 67 65 74 a4 7f 00 00 05
        """
    )
    static let indirectPingMessage = WireMessage.indirectPing(
        IndirectPing(
            nack: true,
            node: "c",
            port: 7946,
            seqNo: 6,
            sourceAddr: addressB,
            sourceNode: "b",
            sourcePort: 7946,
            target: [127, 0, 0, 5]
        )
    )

    /// §12.6: nackResp b → a.
    static let nack = hex("0b 81 a5 53 65 71 4e 6f 09")
    static let nackMessage = WireMessage.nack(Nack(seqNo: 9))

    /// §12.6: suspect, as piggybacked in gossip compounds.
    static let suspect = hex("03 83 a4 46 72 6f 6d a1 62 ab 49 6e 63 61 72 6e 61 74 69 6f 6e 01 a4 4e 6f 64 65 a1 63")
    static let suspectMessage = WireMessage.suspect(Suspect(from: "b", incarnation: 1, node: "c"))

    /// §12.6: b's graceful leave.
    static let dead = hex("05 83 a4 46 72 6f 6d a1 62 ab 49 6e 63 61 72 6e 61 74 69 6f 6e 01 a4 4e 6f 64 65 a1 62")
    static let deadMessage = WireMessage.dead(Dead(from: "b", incarnation: 1, node: "b"))

    /// Every captured UDP message with its decoded value.
    static let udpMessages: [(bytes: [UInt8], message: WireMessage)] = [
        (ping, pingMessage),
        (ack, ackMessage),
        (aliveB, aliveBMessage),
        (aliveA, aliveAMessage),
        (indirectPing, indirectPingMessage),
        (nack, nackMessage),
        (suspect, suspectMessage),
        (dead, deadMessage),
    ]
}

extension ByteBuffer {
    var bytes: [UInt8] { Array(self.readableBytesView) }
}
