public import HTTPTypes

extension HTTPFields {
    /// The fields a proxy forwards: everything but hop-by-hop headers
    /// (`Connection` and the names it lists, `Keep-Alive`,
    /// `Transfer-Encoding`, `Upgrade`, `HTTP2-Settings`, `TE`, `Trailer`, `Proxy-*`) and `Host`,
    /// which the next hop sets for its own target. Order and repeats are kept.
    ///
    /// Every webhook passes its request and its answer through this on an event loop, so names are
    /// compared by length first and as bytes, and `Connection`'s tokens are read only when it is
    /// there (string comparisons and a `hasPrefix` per field were 4.5 % of a busy client's CPU,
    /// docs/performance.md).
    public var endToEnd: HTTPFields {
        let (dropped, listed) = Self.hopByHop(in: self)
        if dropped == 0 { return self }
        return Self.kept(self, dropped: dropped, listed: listed)
    }

    /// ``endToEnd`` of the fields `list` would make, without making them first: a head that
    /// arrives as a list (the local app's answer, read by NIO) is filtered as a list and becomes
    /// `HTTPFields` once, not twice.
    public static func endToEnd(from list: [HTTPField]) -> HTTPFields {
        let (dropped, listed) = Self.hopByHop(in: list)
        if dropped == 0 { return HTTPFields.from(list) }
        return Self.kept(list, dropped: dropped, listed: listed)
    }

    /// The fields of `fields` that are not dropped, made `HTTPFields` once, in room reserved for them.
    private static func kept(_ fields: some Collection<HTTPField>, dropped: Int, listed: Set<String>) -> HTTPFields {
        var kept: [HTTPField] = []
        kept.reserveCapacity(fields.count - dropped)
        for field in fields where !Self.isDropped(field, listed: listed) { kept.append(field) }
        return HTTPFields.from(kept)
    }

    /// How many of `fields` are hop-by-hop, and the names `Connection` lists.
    private static func hopByHop(in fields: some Sequence<HTTPField>) -> (dropped: Int, listed: Set<String>) {
        var listed: Set<String> = []
        var dropped = 0
        for field in fields where Self.isHopByHop(field.name.canonicalName) {
            dropped += 1
            if field.name == .connection, !Self.namesNoOtherField(field.value) {
                for token in field.value.split(separator: ",") {
                    listed.insert(token.trimmingOptionalWhitespace().lowercased())
                }
            }
        }
        return (dropped, listed)
    }

    private static func isDropped(_ field: HTTPField, listed: Set<String>) -> Bool {
        let name = field.name.canonicalName
        return Self.isHopByHop(name) || (!listed.isEmpty && listed.contains(name))
    }

    /// Whether a `Connection` value is just `keep-alive` (any case, spaces around), as nginx, Node and
    /// Go answer on a kept-alive connection: it names only a field that is dropped anyway, and is read
    /// without building strings.
    static func namesNoOtherField(_ value: String) -> Bool {
        value[...].trimmingOptionalWhitespace().equalsASCIICaseInsensitive("keep-alive")
    }

    /// Whether `name` (lower case, as `canonicalName` is) is one a proxy never forwards: the
    /// hop-by-hop names above and `Host`.
    static func isHopByHop(_ name: String) -> Bool {
        let length = name.utf8.count
        switch length {
        case 2: if name == "te" { return true }
        case 4: if name == "host" { return true }
        case 7: if name == "upgrade" || name == "trailer" { return true }
        case 10: if name == "connection" || name == "keep-alive" { return true }
        case 14: if name == "http2-settings" { return true }
        case 17: if name == "transfer-encoding" { return true }
        default: break
        }
        return length >= 6 && name.utf8.starts(with: "proxy-".utf8)
    }
}
