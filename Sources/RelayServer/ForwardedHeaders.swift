import HTTPTypes
import TunnelProtocol

/// Header rules of a proxy (README "Webhook semantics" and docs/protocol.md).
enum ForwardedHeaders {
    /// The request headers the local app sees: end-to-end headers plus
    /// `X-Forwarded-For` (sender address appended to any it sent),
    /// `X-Forwarded-Proto` and `X-Forwarded-Host`.
    static func forRequest(_ fields: HTTPFields, senderAddress: String?, scheme: String, host: String?) -> HTTPFields {
        var result = fields.endToEnd
        if let senderAddress {
            if result.contains(Self.forwardedFor) {
                let previous = result[values: Self.forwardedFor]
                result[Self.forwardedFor] = nil
                result.append(HTTPField(name: Self.forwardedFor, value: (previous + [senderAddress]).joined(separator: ", ")))
            } else {
                result.append(HTTPField(name: Self.forwardedFor, value: senderAddress))
            }
        }
        if !result.contains(Self.forwardedProto) { result.append(HTTPField(name: Self.forwardedProto, value: scheme)) }
        if !result.contains(Self.forwardedHost), let host { result.append(HTTPField(name: Self.forwardedHost, value: host)) }
        return result
    }

    // Made once: a name built from a string is validated and lower-cased each time (1 % of the
    // server's samples when it was per webhook).
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    static let forwardedHost = HTTPField.Name("X-Forwarded-Host")!
}
