import FuzzSupport
import HTTPTypes
import NIOCore
import TunnelProtocol

/// libFuzzer target: the legacy framing, as the server gets it from a legacy
/// client.
///
/// 1. The input as one WebSocket text message: `LegacySession.receive` decodes
///    the JSON envelope, and `WebhookForwarder` parses its payload as the
///    HTTP/1.1 response.
/// 2. The input as that payload directly (what any base64 payload decodes
///    to), so the HTTP/1.1 parser is fuzzed without the base64 layer in the
///    way.
/// The parsed response then goes through what the forwarder does with it
/// (hop-by-hop filter, status). Decoders may throw; any trap is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLegacy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = inputBytes(data, size)
    let text = String(decoding: bytes, as: UTF8.self)
    if let message = try? LegacyMessage(json: text) {
        use(try? HTTP1Message.parse(message.payload))
    }
    use(try? HTTP1Message.parse(ByteBuffer(bytes: bytes)))
    return 0
}

private func use(_ parsed: HTTP1Message.Parsed?) {
    guard let parsed else { return }
    _ = parsed.headerFields.endToEnd
    if parsed.status != 0 {
        _ = HTTPResponse.Status(code: parsed.status)
    }
}
