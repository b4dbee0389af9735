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
    ///
    /// `@inlinable`, so that each caller gets it specialised for `String` or `Substring`: as an
    /// ordinary generic function of this module it ran unspecialised in the other modules, through
    /// the protocol's witnesses byte by byte, and the `Host` check of every request header was 3 %
    /// of a busy server's CPU (docs/performance.md).
    @inlinable
    public func equalsASCIICaseInsensitive(_ lowercase: String) -> Bool {
        var expected = lowercase.utf8.makeIterator()
        for byte in self.utf8 {
            guard let want = expected.next() else { return false }
            guard byte == want || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == want) else { return false }
        }
        return expected.next() == nil
    }
}
