import NIOCore
import Testing

@testable import Membership

@Suite struct StreamMessageDecoderTests {
    /// Feeds `bytes` one at a time; every call before the last byte must return nil.
    private func decodeByteByByte(_ bytes: [UInt8]) throws -> StreamMessage? {
        var decoder = StreamMessageDecoder()
        for (index, byte) in bytes.enumerated() {
            decoder.append(ByteBuffer(bytes: [byte]))
            let message = try decoder.next()
            if index < bytes.count - 1 {
                #expect(message == nil, "complete after \(index + 1) of \(bytes.count) bytes")
            } else {
                return message
            }
        }
        return nil
    }

    private func decodeWhole(_ bytes: [UInt8], decoder: StreamMessageDecoder = StreamMessageDecoder()) throws -> StreamMessage? {
        var decoder = decoder
        decoder.append(ByteBuffer(bytes: bytes))
        return try decoder.next()
    }

    static let samples: [StreamMessage] = [
        WireVectors.pushPullMessage(name: "node-b"),
        .pushPull(
            PushPull(
                join: false,
                nodes: (0..<200).map {
                    PushNodeState(
                        addr: [10, 0, UInt8($0 >> 8), UInt8($0 & 0xFF)],
                        incarnation: UInt32($0) * 1000,
                        meta: $0 % 3 == 0 ? [] : Array("meta-\($0)".utf8),
                        name: "node-\($0)",
                        port: 7946,
                        state: WireNodeState(rawValue: $0 % 4) ?? .alive
                    )
                },
                userState: Array(repeating: 0x5A, count: 300)
            )
        ),
        .pushPull(PushPull(join: true, nodes: [])),
        .ping(Ping(node: "a", seqNo: 77, sourceAddr: WireVectors.addressB, sourceNode: "b", sourcePort: 7946)),
        .ack(Ack(seqNo: 77)),
        .ack(Ack(seqNo: 78, payload: [9, 8, 7])),
        .user(Array("a reliable user message".utf8)),
        .user([]),
        .error("unexpected msg type"),
    ]

    @Test func plainMessagesArriveOnlyWhenComplete() throws {
        for message in Self.samples {
            #expect(try self.decodeByteByByte(message.encoded(compressed: false)) == message)
        }
    }

    @Test func compressedMessagesArriveOnlyWhenComplete() throws {
        for message in Self.samples {
            let bytes = message.encoded(compressed: true)
            #expect(bytes.first == 0x09)
            #expect(try self.decodeByteByByte(bytes) == message)
        }
    }

    @Test func capturedPushPullArrivesOnlyWhenComplete() throws {
        #expect(try self.decodeByteByByte(WireVectors.pushPull) == WireVectors.pushPullMessage(name: "node-b"))
        #expect(try self.decodeByteByByte(WireVectors.compressedPushPull) == WireVectors.pushPullMessage(name: "b"))
    }

    @Test func streamUserMessageAndErrorHaveTheDocumentedLayout() throws {
        #expect(StreamMessage.user([1, 2]).encoded(compressed: false) == [0x08, 0x81, 0xAA] + Array("UserMsgLen".utf8) + [0x02, 0x01, 0x02])
        #expect(StreamMessage.error("x").encoded(compressed: false) == [0x0D, 0x81, 0xA5] + Array("Error".utf8) + [0xA1, 0x78])
        // Newer Go writes int fields signed (D1 for 300): accepted too.
        let signedHeader = [0x08, 0x81, 0xAA] + Array("UserMsgLen".utf8) + [0xD1, 0x01, 0x2C]
        let payload = [UInt8](repeating: 3, count: 300)
        #expect(try self.decodeWhole(signedHeader + payload) == .user(payload))
    }

    @Test func pushPullWithUserStateAndManyNodesUsesGoIntForms() throws {
        let message = Self.samples[1]
        let bytes = message.encoded(compressed: false)
        // Header: Nodes 200 → CC C8, UserStateLen 300 → CD 01 2C, as go-msgpack 0.5.x writes them.
        #expect(Array(bytes.prefix(17)) == [0x06, 0x83, 0xA4] + Array("Join".utf8) + [0xC2, 0xA5] + Array("Nodes".utf8) + [0xCC, 0xC8, 0xAC])
        #expect(try self.decodeWhole(bytes) == message)
    }

    @Test func labelAtConnectionStartIsStripped() throws {
        let bytes = [0xF4, 0x04] + Array("prod".utf8) + WireVectors.compressedPushPull
        #expect(try self.decodeByteByByte(bytes) == WireVectors.pushPullMessage(name: "b"))
        #expect(throws: WireError.invalidLabel) { try self.decodeWhole([0xF4, 0x00, 0x00]) }
    }

    @Test func messagesBackToBackAreDecodedInOrder() throws {
        var decoder = StreamMessageDecoder()
        decoder.append(ByteBuffer(bytes: WireVectors.pushPull + StreamMessage.ack(Ack(seqNo: 5)).encoded(compressed: true)))
        #expect(try decoder.next() == WireVectors.pushPullMessage(name: "node-b"))
        #expect(try decoder.next() == .ack(Ack(seqNo: 5)))
        #expect(try decoder.next() == nil)
    }

    @Test func wrongTypesAreRejected() throws {
        #expect(throws: WireError.encryptionNotSupported) { try self.decodeWhole([0x0A, 0x00, 0x00, 0x00, 0x10]) }
        #expect(throws: WireError.unexpectedMessageType(0x04)) { try self.decodeWhole(WireVectors.aliveB) }
        #expect(throws: WireError.unexpectedMessageType(0x07)) { try self.decodeWhole([0x07, 0x01, 0x00, 0x01, 0x08]) }
        // A compressed message may not be compressed again.
        let twice = [0x09] + Compressed(buffer: LZW.compress(WireVectors.compressedPushPull)).messagePack
        #expect(throws: WireError.unexpectedMessageType(0x09)) { try self.decodeWhole(twice) }
    }

    @Test func truncatedCompressedPayloadIsAnError() throws {
        let inner = Array(WireVectors.pushPull.dropLast(3))
        let bytes = [0x09] + Compressed(buffer: LZW.compress(inner)).messagePack
        #expect(throws: WireError.truncated) { try self.decodeWhole(bytes) }
    }

    @Test func limitsProtectAgainstHostilePeers() throws {
        let tooManyNodes =
            [0x06, 0x83, 0xA4] + Array("Join".utf8) + [0xC3, 0xA5] + Array("Nodes".utf8) + [0xCE, 0x00, 0x10, 0x00, 0x01]
            + [0xAC] + Array("UserStateLen".utf8) + [0x00]
        #expect(throws: WireError.tooManyNodes(1_048_577)) { try self.decodeWhole(tooManyNodes) }
        let hugeUserState =
            [0x06, 0x83, 0xA4] + Array("Join".utf8) + [0xC3, 0xA5] + Array("Nodes".utf8) + [0x00]
            + [0xAC] + Array("UserStateLen".utf8) + [0xCE, 0x01, 0x40, 0x00, 0x01]
        #expect(throws: WireError.payloadTooLarge(20_971_521)) { try self.decodeWhole(hugeUserState) }
        let hugeUserMessage = [0x08, 0x81, 0xAA] + Array("UserMsgLen".utf8) + [0xCE, 0x7F, 0x00, 0x00, 0x00]
        #expect(throws: WireError.payloadTooLarge(0x7F00_0000)) { try self.decodeWhole(hugeUserMessage) }
        let negative = [0x08, 0x81, 0xAA] + Array("UserMsgLen".utf8) + [0xFF]
        #expect(throws: WireError.integerOutOfRange) { try self.decodeWhole(negative) }
        // A string announcing 4 GiB is refused before any of it arrives.
        let hugeString = [0x0D, 0x81, 0xA5] + Array("Error".utf8) + [0xDB, 0xFF, 0xFF, 0xFF, 0xFF]
        #expect(throws: WireError.messageTooLarge(limit: StreamMessageDecoder.defaultMaxMessageSize)) { try self.decodeWhole(hugeString) }
    }

    @Test func messageSizeLimitCoversThePlainAndTheDecompressedForm() throws {
        let message = Self.samples[1]
        let plain = message.encoded(compressed: false)
        let small = StreamMessageDecoder(maxMessageSize: plain.count - 1)
        #expect(throws: WireError.messageTooLarge(limit: plain.count - 1)) { try self.decodeWhole(plain, decoder: small) }
        #expect(try self.decodeWhole(plain, decoder: StreamMessageDecoder(maxMessageSize: plain.count)) == message)
        let compressed = message.encoded(compressed: true)
        #expect(compressed.count < plain.count - 1)
        #expect(throws: WireError.decompressedTooLarge(limit: plain.count - 1)) { try self.decodeWhole(compressed, decoder: small) }
    }

    @Test func unknownNodeStatesAreDropped() throws {
        var bytes = WireVectors.pushPull
        // "State": 0 → 9, which Go's merge ignores.
        let stateIndex = try #require(bytes.indices.first { Array(bytes[$0..<min($0 + 6, bytes.count)]) == [0xA5] + Array("State".utf8) })
        bytes[stateIndex + 6] = 0x09
        #expect(try self.decodeWhole(bytes) == .pushPull(PushPull(join: true, nodes: [])))
    }
}
