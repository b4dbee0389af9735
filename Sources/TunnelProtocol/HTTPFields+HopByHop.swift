public import HTTPTypes

extension HTTPFields {
    /// The fields a proxy forwards: everything but hop-by-hop headers
    /// (`Connection` and the names it lists, `Keep-Alive`,
    /// `Transfer-Encoding`, `Upgrade`, `HTTP2-Settings`, `TE`, `Trailer`, `Proxy-*`) and `Host`,
    /// which the next hop sets for its own target. Order and repeats are kept.
    public var endToEnd: HTTPFields {
        var listed = Set<String>()
        for value in self[values: .connection] {
            for token in value.split(separator: ",") {
                listed.insert(String(token.filter { $0 != " " && $0 != "\t" }).lowercased())
            }
        }
        var result = HTTPFields()
        for field in self {
            let name = field.name.canonicalName
            switch name {
            case "connection", "keep-alive", "transfer-encoding", "upgrade", "http2-settings", "te", "trailer", "host":
                continue
            default:
                if name.hasPrefix("proxy-") || listed.contains(name) { continue }
                result.append(field)
            }
        }
        return result
    }
}
