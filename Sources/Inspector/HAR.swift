import Foundation
import NIOCore

/// HAR 1.2 export (docs/inspector.md, "HAR export"): one entry per webhook,
/// written one at a time so a large history is never built whole in memory.
enum HAR {
    static func prefix(version: String) -> String {
        let creator = JSONText.string(["name": "webhook-over-websocket", "version": version])
        return #"{"log":{"version":"1.2","creator":"# + creator + #","pages":[],"entries":["#
    }

    static let suffix = "]}}\n"

    /// One entry; `baseURL` is the local app's URL the webhook went to.
    static func entry(_ record: WebhookRecord, baseURL: String) -> [String: Any] {
        let duration = record.durationMilliseconds ?? -1
        var request: [String: Any] = [
            "method": record.method,
            "url": baseURL + (record.path.hasPrefix("/") || record.path.isEmpty ? record.path : "/" + record.path),
            "httpVersion": "HTTP/1.1",
            "cookies": [Any](),
            "headers": Self.headers(record.requestHeaders),
            "queryString": Self.query(record.path),
            "headersSize": -1,
            "bodySize": record.requestBody.size,
        ]
        if record.requestBody.size > 0 {
            var postData = Self.content(record.requestBody, headers: record.requestHeaders)
            postData.removeValue(forKey: "size")
            postData["params"] = [Any]()
            request["postData"] = postData
        }
        var response: [String: Any] = [
            "status": record.status ?? 0,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "cookies": [Any](),
            "headers": Self.headers(record.responseHeaders ?? []),
            "content": record.responseBody.map { Self.content($0, headers: record.responseHeaders ?? []) }
                ?? ["size": 0, "mimeType": "x-unknown"],
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": record.responseBody?.size ?? -1,
        ]
        if let error = record.error { response["_error"] = error }
        var entry: [String: Any] = [
            "startedDateTime": WebhookRecord.iso8601(milliseconds: record.time),
            "time": max(duration, 0),
            "request": request,
            "response": response,
            "cache": [String: Any](),
            "timings": ["send": 0, "wait": max(duration, 0), "receive": 0],
            "_id": record.id,
        ]
        if let replayOf = record.replayOf { entry["_replayOf"] = replayOf }
        if let deliveryID = record.deliveryID { entry["_deliveryId"] = deliveryID }
        if record.requestBody.truncated || record.responseBody?.truncated == true {
            entry["comment"] = "a body above the capture limit: only its first bytes are included (see _sha256)"
        }
        return entry
    }

    static func headers(_ headers: [HeaderField]) -> [[String: String]] {
        headers.map { ["name": $0.name, "value": $0.value] }
    }

    static func query(_ path: String) -> [[String: String]] {
        guard let mark = path.firstIndex(of: "?") else { return [] }
        return path[path.index(after: mark)...].split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text) }
            return ["name": decode(parts[0]), "value": parts.count > 1 ? decode(parts[1]) : ""]
        }
    }

    /// `content` / `postData`: text when the bytes are UTF-8, else base64.
    static func content(_ body: CapturedBody, headers: [HeaderField]) -> [String: Any] {
        let mimeType = headers.last { $0.isNamed("content-type") }?.value ?? "application/octet-stream"
        var content: [String: Any] = ["size": body.size, "mimeType": mimeType, "_sha256": body.sha256]
        if let text = String(validating: body.bytes.readableBytesView, as: UTF8.self) {
            content["text"] = text
        } else {
            content["text"] = Data(body.bytes.readableBytesView).base64EncodedString()
            content["encoding"] = "base64"
        }
        return content
    }
}
