import Foundation
public import NIOCore

/// A webhook to send to the local app again: the original's request, or an
/// edited one, marked with `X-Webhook-Replay: <original id>`.
public struct ReplayRequest: Sendable {
    public var method: String
    /// Path and query after the channel (`/github?x=1`).
    public var path: String
    /// The headers to send, in order (signature and replay headers included).
    public var headers: [HeaderField]
    public var body: ByteBuffer
    /// The id of the webhook replayed.
    public var replayOf: String

    public static let markerHeader = "X-Webhook-Replay"
}

/// Sends a replay through the client's forwarder and returns the new
/// webhook's id once its answer has been captured.
public typealias ReplayHandler = @Sendable (ReplayRequest) async throws -> String

/// The optional edits of `POST /api/webhooks/{id}/replay`; each field absent
/// means "as the original" (docs/inspector.md, "Replay").
struct ReplayEdits {
    var method: String?
    var path: String?
    var headers: [HeaderField]?
    var body: ByteBuffer?
    var sign: (provider: Resigner.Provider, secret: String)?

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    /// Parses the request body (empty = no edits).
    static func parse(_ buffer: ByteBuffer) throws -> ReplayEdits {
        var edits = ReplayEdits()
        let data = Data(buffer.readableBytesView)
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return edits }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw Invalid(description: "the replay body must be a JSON object")
        }
        for key in object.keys where !["method", "path", "headers", "body_base64", "sign"].contains(key) {
            throw Invalid(description: "unknown field '\(key)'")
        }
        if let method = object["method"] {
            guard let method = method as? String, Self.isToken(method) else { throw Invalid(description: "method must be an HTTP method token") }
            edits.method = method
        }
        if let path = object["path"] {
            guard let path = path as? String, path.isEmpty || path.hasPrefix("/") || path.hasPrefix("?"),
                !path.contains(where: { $0.isWhitespace || $0 == "#" })
            else {
                throw Invalid(description: "path must start with / or ? and contain no spaces")
            }
            edits.path = path
        }
        if let headers = object["headers"] {
            guard let pairs = headers as? [[Any]] else { throw Invalid(description: "headers must be an array of [name, value] pairs") }
            edits.headers = try pairs.map { pair in
                guard pair.count == 2, let name = pair[0] as? String, let value = pair[1] as? String, Self.isToken(name),
                    !value.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" })
                else {
                    throw Invalid(description: "each header must be [name, value] with a valid name and a one-line value")
                }
                return HeaderField(name, value)
            }
        }
        if let body = object["body_base64"] {
            guard let text = body as? String, let bytes = Data(base64Encoded: text) else {
                throw Invalid(description: "body_base64 must be base64")
            }
            edits.body = ByteBuffer(bytes: bytes)
        }
        if let sign = object["sign"] {
            guard let sign = sign as? [String: Any], let providerName = sign["provider"] as? String,
                let provider = Resigner.Provider(rawValue: providerName.lowercased()), let secret = sign["secret"] as? String,
                !secret.isEmpty
            else {
                throw Invalid(description: "sign must be {\"provider\": \"github\"|\"stripe\"|\"slack\", \"secret\": \"…\"}")
            }
            edits.sign = (provider, secret)
        }
        return edits
    }

    /// RFC 9110 token characters (methods, header names).
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                    || Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
            }
    }

    /// The request to send: the original with these edits, the signature if
    /// asked, and the replay marker (any old marker replaced).
    func apply(to original: WebhookRecord, now: Int) -> ReplayRequest {
        let body = self.body ?? original.requestBody.bytes
        var headers = (self.headers ?? original.requestHeaders).filter {
            let name = $0.name.lowercased()
            return name != ReplayRequest.markerHeader.lowercased() && name != "content-length"
        }
        if let sign = self.sign {
            headers = Resigner.sign(headers, body: body, provider: sign.provider, secret: sign.secret, now: now)
        }
        headers.append(HeaderField(ReplayRequest.markerHeader, original.id))
        return ReplayRequest(
            method: self.method ?? original.method,
            path: self.path ?? original.path,
            headers: headers,
            body: body,
            replayOf: original.id
        )
    }
}
