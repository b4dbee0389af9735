import HTTPTypes
import TunnelProtocol

/// Header rules of a proxy (README "Webhook semantics" and docs/protocol.md).
enum ForwardedHeaders {
    /// The request headers the local app sees: end-to-end headers plus
    /// `X-Forwarded-For` (sender address appended to any it sent),
    /// `X-Forwarded-Proto` and `X-Forwarded-Host`.
    static func forRequest(_ fields: HTTPFields, senderAddress: String?, scheme: String, host: String?) -> HTTPFields {
        var result = fields.endToEnd
        let xff = HTTPField.Name("X-Forwarded-For")!
        let xfp = HTTPField.Name("X-Forwarded-Proto")!
        let xfh = HTTPField.Name("X-Forwarded-Host")!
        if let senderAddress {
            let previous = result[values: xff]
            result[xff] = nil
            result.append(HTTPField(name: xff, value: (previous + [senderAddress]).joined(separator: ", ")))
        }
        if result[xfp] == nil { result.append(HTTPField(name: xfp, value: scheme)) }
        if result[xfh] == nil, let host { result.append(HTTPField(name: xfh, value: host)) }
        return result
    }
}
