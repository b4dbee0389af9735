extension Substring {
    /// Without the spaces and tabs HTTP allows around a field value and around the elements of a
    /// comma-separated list ("optional whitespace", RFC 9110 §5.6.3).
    ///
    /// Foundation's `trimmingCharacters(in: .whitespaces)` goes through `NSString` and UTF-16; for
    /// the `Authorization` and `Sec-WebSocket-Protocol` of every connecting client it was 2 % of the
    /// server's CPU (docs/performance.md, "10,000 connects"). Both bytes are ASCII, so the UTF-8
    /// indices found are scalar boundaries. Used wherever the tunnel reads a header's tokens.
    public func trimmingOptionalWhitespace() -> Substring {
        let utf8 = self.utf8
        var start = utf8.startIndex
        var end = utf8.endIndex
        while start < end, Self.isOptionalWhitespace(utf8[start]) { start = utf8.index(after: start) }
        while start < end {
            let last = utf8.index(before: end)
            guard Self.isOptionalWhitespace(utf8[last]) else { break }
            end = last
        }
        return self[start..<end]
    }

    private static func isOptionalWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }
}

extension StringProtocol {
    /// Whether this equals `lowercase` ignoring ASCII case; `lowercase` must be lowercase ASCII.
    /// Compares bytes, without making a lowercased copy.
    public func equalsASCIICaseInsensitive(_ lowercase: String) -> Bool {
        guard self.utf8.count == lowercase.utf8.count else { return false }
        return zip(self.utf8, lowercase.utf8).allSatisfy { byte, expected in
            byte == expected || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == expected)
        }
    }
}
