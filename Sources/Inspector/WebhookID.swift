import Synchronization

/// Ids for captured webhooks, in UUID form (`8-4-4-4-12` lower-case hex, version 4 and RFC 4122
/// variant bits set), made without a system call.
///
/// Foundation's `UUID()` reads the kernel's random source for every id and formats it through
/// `sprintf`; on the capture path, once per webhook on the event loop, that was a visible share of
/// the inspector's cost (docs/inspector.md, "Cost"). Here 64 random bits are drawn once per
/// process and the other 64 are a counter, so ids are unique within a process and, across the
/// restarts that share one history, collide only if two processes draw the same 64 bits.
enum WebhookID {
    private static let prefix: UInt64 = UInt64.random(in: .min ... .max)
    private static let counter = Atomic<UInt64>(UInt64.random(in: 0...(1 << 32)))
    /// A number that stands for the next id: the capture takes it on the event loop and the id's
    /// text is made from it later, by whoever first asks (usually the history's writer).
    static func nextSerial() -> UInt64 {
        Self.counter.wrappingAdd(1, ordering: .relaxed).newValue
    }

    static func string(_ count: UInt64) -> String {
        // Version 4 in the high nibble of byte 6, variant 10xx in the high bits of byte 8.
        let high = (Self.prefix & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        let low = (count & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        // Written straight into the string's storage: no array, no second copy.
        return String(unsafeUninitializedCapacity: 36) { text in
            var position = 0
            for word in [high, low] {
                for shift in stride(from: 60, through: 0, by: -4) {
                    if position == 8 || position == 13 || position == 18 || position == 23 {
                        text[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    let digit = UInt8(truncatingIfNeeded: (word >> UInt64(shift)) & 0xF)
                    text[position] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
                    position += 1
                }
            }
            return position
        }
    }
}
