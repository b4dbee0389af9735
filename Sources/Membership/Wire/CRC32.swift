/// CRC-32/IEEE (reflected polynomial 0xEDB88320), as Go's `hash/crc32.ChecksumIEEE` computes it for
/// memberlist's `0x0C` packet header (docs/memberlist-wire.md §2).
///
/// Written here, table-driven, so that the membership module needs no checksum dependency.
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 {
            crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1
        }
        return crc
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        let table = Self.table
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return ~crc
    }
}
