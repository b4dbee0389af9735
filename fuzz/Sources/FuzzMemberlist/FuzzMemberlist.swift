import FuzzSupport
import MembershipWire
import NIOCore

/// libFuzzer target: the memberlist wire codec (`Sources/Membership/Wire`), as
/// `Memberlist` uses it.
///
/// 1. The input as one UDP datagram: `Packet.decode`.
/// 2. The input as the bytes of a TCP stream (push/pull): a
///    `StreamMessageDecoder` gets them in one piece, then another gets them one
///    byte at a time (as a slow peer sends them) with a small message limit.
///    After every append `next()` is called, and decoding goes on past the
///    first message until it needs more bytes or throws.
/// Decoders may throw; any trap is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMemberlist(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = inputBytes(data, size)
    _ = try? Packet.decode(ByteBuffer(bytes: bytes))

    var whole = StreamMessageDecoder()
    whole.append(ByteBuffer(bytes: bytes))
    drain(&whole)

    var trickled = StreamMessageDecoder(maxMessageSize: 512)
    for byte in bytes {
        trickled.append(ByteBuffer(bytes: [byte]))
        guard drain(&trickled) else { break }
    }
    return 0
}

/// Takes every complete message; false once the decoder threw (the stream is then dropped).
@discardableResult
private func drain(_ decoder: inout StreamMessageDecoder) -> Bool {
    while true {
        do {
            guard try decoder.next() != nil else { return true }
        } catch {
            return false
        }
    }
}
