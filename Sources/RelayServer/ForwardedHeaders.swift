import HTTPTypes
import TunnelProtocol

/// Header rules of a proxy (README "Webhook semantics" and docs/protocol.md).
enum ForwardedHeaders {
    /// The request headers the local app sees: end-to-end headers plus
    /// `X-Forwarded-For` (sender address appended to any it sent),
    /// `X-Forwarded-Proto` and `X-Forwarded-Host`.
    ///
    /// Built as a list and made `HTTPFields` once: each `append` to `HTTPFields` goes through the
    /// collection protocol's generic `insert` and regrows its storage (docs/performance.md).
    static func forRequest(_ fields: HTTPFields, senderAddress: String?, scheme: String, host: String?) -> HTTPFields {
        var list: [HTTPField] = []
        list.reserveCapacity(fields.count + 3)
        var previousFor: [String] = []
        var hasProto = false
        var hasHost = false
        for field in fields.endToEnd {
            if senderAddress != nil, field.name == Self.forwardedFor {
                // Joined with the sender's address at the end, as one field.
                previousFor.append(field.value)
                continue
            }
            if field.name == Self.forwardedProto {
                hasProto = true
            } else if field.name == Self.forwardedHost {
                hasHost = true
            }
            list.append(field)
        }
        if let senderAddress {
            let value = previousFor.isEmpty ? senderAddress : (previousFor + [senderAddress]).joined(separator: ", ")
            list.append(HTTPField(name: Self.forwardedFor, value: value))
        }
        if !hasProto { list.append(HTTPField(name: Self.forwardedProto, value: scheme)) }
        if !hasHost, let host { list.append(HTTPField(name: Self.forwardedHost, value: host)) }
        return HTTPFields.from(list)
    }

    // Made once: a name built from a string is validated and lower-cased each time (1 % of the
    // server's samples when it was per webhook).
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    static let forwardedHost = HTTPField.Name("X-Forwarded-Host")!
}
