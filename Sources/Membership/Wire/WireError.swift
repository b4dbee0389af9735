/// Why bytes from a peer could not be decoded.
///
/// Every decoder in the wire layer throws one of these instead of trapping, because all of its input
/// comes from the network and may be truncated, corrupted or hostile.
public enum WireError: Error, Hashable, Sendable {
    /// The data ended before the structure it announced was complete.
    case truncated
    /// A message had no type byte at all.
    case emptyMessage
    /// A msgpack value had a format the field cannot hold (the format byte is given), or the byte
    /// is not a msgpack format at all (`0xC1`).
    case unexpectedFormat(UInt8)
    /// An integer did not fit the field it was decoded into (or was negative where a count was expected).
    case integerOutOfRange
    /// The `0x0C` CRC header did not match the CRC-32 of the rest of the packet.
    case checksumMismatch(expected: UInt32, computed: UInt32)
    /// A `0xF4` label header was empty or cut short.
    case invalidLabel
    /// A `0x09` compress wrapper named an algorithm other than 0 (LZW).
    case unsupportedCompression(algorithm: UInt64)
    /// The LZW data held an invalid code, did not end with the end-of-data code, or decoded to nothing.
    case invalidCompressedData
    /// Decompressing would produce more than the allowed number of bytes.
    case decompressedTooLarge(limit: Int)
    /// A stream message is larger than the decoder is willing to buffer.
    case messageTooLarge(limit: Int)
    /// A push/pull announced more node states than allowed.
    case tooManyNodes(Int)
    /// A push/pull or stream user message announced more raw bytes than allowed.
    case payloadTooLarge(Int)
    /// Compound and compress layers were nested deeper than any real sender does.
    case nestingTooDeep
    /// A message type that may not appear here (e.g. an alive message on a stream, or a second
    /// compress layer inside a compressed stream).
    case unexpectedMessageType(UInt8)
    /// The stream is encrypted (`0x0A`); this implementation does not support encryption.
    case encryptionNotSupported
}
