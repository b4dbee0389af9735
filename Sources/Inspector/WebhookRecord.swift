import Foundation
import NIOCore

/// One webhook in the history: the summary the list shows and, once it has
/// them, both heads and both captured bodies.
struct WebhookRecord: Sendable {
    enum State: String, Sendable {
        case inProgress = "in_progress"
        case complete
    }

    var id: String
    /// Milliseconds since 1970 (UTC) when the request head arrived.
    var time: Int64
    var method: String
    var path: String
    var requestHeaders: [HeaderField]
    var requestBody: CapturedBody
    var status: Int?
    var responseHeaders: [HeaderField]?
    var responseBody: CapturedBody?
    var durationMilliseconds: Double?
    var replayOf: String?
    var deliveryID: String?
    var error: String?
    var state: State

    /// What the record costs the history's byte bound: kept bodies and heads.
    var storedBytes: Int {
        let heads = (self.requestHeaders + (self.responseHeaders ?? [])).reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        return heads + self.requestBody.bytes.readableBytes + (self.responseBody?.bytes.readableBytes ?? 0) + self.path.utf8.count + 256
    }
}

extension WebhookRecord {
    /// The list's JSON object (docs/inspector.md, "Summary").
    var summaryJSON: [String: Any] {
        [
            "id": self.id,
            "time": Self.iso8601(milliseconds: self.time),
            "method": self.method,
            "path": self.path,
            "status": self.status.map { $0 as Any } ?? NSNull(),
            "duration_ms": self.durationMilliseconds.map { ($0 * 10).rounded() / 10 as Any } ?? NSNull(),
            "request_size": self.requestBody.size,
            "response_size": self.responseBody.map { $0.size as Any } ?? NSNull(),
            "replay_of": self.replayOf.map { $0 as Any } ?? NSNull(),
            "delivery_id": self.deliveryID.map { $0 as Any } ?? NSNull(),
            "error": self.error.map { $0 as Any } ?? NSNull(),
            "state": self.state.rawValue,
        ]
    }

    /// The detail's JSON object: the summary plus heads and bodies.
    var detailJSON: [String: Any] {
        var object = self.summaryJSON
        object["request"] =
            [
                "method": self.method,
                "path": self.path,
                "headers": Self.headersJSON(self.requestHeaders),
            ].merging(Self.bodyJSON(self.requestBody)) { $1 }
        if let status = self.status, let body = self.responseBody {
            object["response"] =
                [
                    "status": status,
                    "headers": Self.headersJSON(self.responseHeaders ?? []),
                ].merging(Self.bodyJSON(body)) { $1 }
        } else {
            object["response"] = NSNull()
        }
        return object
    }

    static func headersJSON(_ headers: [HeaderField]) -> [[String]] {
        headers.map { [$0.name, $0.value] }
    }

    static func bodyJSON(_ body: CapturedBody) -> [String: Any] {
        [
            "body_base64": Data(body.bytes.readableBytesView).base64EncodedString(),
            "body_size": body.size,
            "body_sha256": body.sha256,
            "body_truncated": body.truncated,
        ]
    }

    static func iso8601(milliseconds: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// JSON text of an object built from `[String: Any]` (sorted keys, so tests
/// and diffs see a stable order).
enum JSONText {
    static func encode(_ object: Any) -> ByteBuffer {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return ByteBuffer(bytes: data)
    }

    static func string(_ object: Any) -> String {
        String(buffer: Self.encode(object))
    }
}
