/// The shape of a channel id: a canonical UUID (`8-4-4-4-12` hex digits, as `/new` issues them).
///
/// Anything else can never name a channel, so it is answered at once (404 on `/webhook/...`, a
/// refusal on `/ws/...`) instead of being held through the start-up window like an id the server
/// may not know yet: junk paths (`..`, `%2e%2e`, 10 KB ids) cannot hold connections open
/// (docs/operations.md, "Limits").
enum ChannelID {
    /// Whether `id` is a UUID in its canonical text form. Hex digits of either case are accepted,
    /// as RFC 9562 reads them.
    static func isCanonical(_ id: some StringProtocol) -> Bool {
        let bytes = id.utf8
        guard bytes.count == 36 else { return false }
        for (offset, byte) in bytes.enumerated() {
            switch offset {
            case 8, 13, 18, 23:
                guard byte == UInt8(ascii: "-") else { return false }
            default:
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"):
                    continue
                default:
                    return false
                }
            }
        }
        return true
    }
}
