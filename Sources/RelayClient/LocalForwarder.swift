import AsyncHTTPClient
import Foundation
import HTTPTypes
import Inspector
import Logging
import NIOCore
import NIOHTTP1
import TunnelProtocol

/// What every call to the local app shares: the HTTP client, where the app is, the timeout, the
/// inspector's capture, and the mapping of failures to the sender's status.
///
/// Live webhooks run as a ``LocalExchange`` each, on the tunnel's event loop; inspector replays are
/// rare and use the async API here (``replay(_:)``).
///
/// A class, not a struct: every exchange keeps it, and a copy per webhook cost a retain and a
/// release for each of its strings and references (docs/performance.md).
final class LocalForwarder: Sendable {
    let httpClient: HTTPClient
    /// The target URL split into its origin and base path.
    let origin: String
    let basePath: String
    /// Where the keep-alive pool connects, for an `http://` app (nil: AsyncHTTPClient's path), parsed
    /// once here rather than for every webhook on the event loop.
    let appTarget: LocalAppConnectionPool.Target?
    let timeout: Duration?
    let logger: Logger
    /// The inspector's capture (docs/inspector.md, "The capture seam"):
    /// told of every exchange, live or replayed. Whatever shape the data
    /// path takes, it must keep calling this observer at the same points.
    let observer: (any WebhookObserver)?

    init(httpClient: HTTPClient, targetURL: String, timeout: Duration?, logger: Logger, observer: (any WebhookObserver)? = nil) {
        self.httpClient = httpClient
        let (origin, basePath) = Self.split(targetURL)
        self.origin = origin
        self.basePath = basePath
        self.appTarget = LocalAppConnectionPool.Target(origin: origin)
        self.timeout = timeout
        self.logger = logger
        self.observer = observer
    }

    /// `http://host:3000/api/` → (`http://host:3000`, `/api`).
    static func split(_ url: String) -> (String, String) {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        guard let schemeEnd = url.range(of: "://") else { return (url, "") }
        let afterScheme = url[schemeEnd.upperBound...]
        guard let slash = afterScheme.firstIndex(of: "/") else { return (url, "") }
        return (String(url[..<slash]), String(url[slash...]))
    }

    /// Target URL path + the webhook's suffix (`/github?x=1`, `?a=b` or ``).
    func url(for suffix: String) -> String {
        Self.join(origin: self.origin, basePath: self.basePath, suffix: suffix)
    }

    static func join(origin: String, basePath: String, suffix: String) -> String {
        var path = basePath + suffix
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        return origin + path
    }

    /// What the console line reports.
    struct Summary {
        var method: String
        var path: String
        var status: Int
        var bytes: Int
    }

    /// The request to the local app for a webhook's method, target and
    /// (end-to-end) headers; the body is set by the caller.
    func request(method: String, target: String, headerFields: HTTPFields) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: self.url(for: target))
        request.method = HTTPMethod(rawValue: method)
        request.headers = Self.headers(headerFields)
        return request
    }

    /// A webhook's (end-to-end) headers for the local app. `Content-Length` is left out: the client
    /// sets it from the body it actually sends.
    static func headers(_ fields: HTTPFields) -> HTTPHeaders {
        var headers = HTTPHeaders()
        // Room for the `Host` and `Content-Length` the exchange adds.
        headers.reserveCapacity(fields.count + 2)
        for field in fields where field.name != .contentLength {
            headers.add(name: field.name.rawName, value: field.value)
        }
        return headers
    }

    /// The end-to-end fields of the local app's answer head (names the tunnel cannot carry are
    /// dropped too), made as `HTTPFields` once.
    static func endToEndFields(_ headers: HTTPHeaders) -> HTTPFields {
        var list: [HTTPField] = []
        list.reserveCapacity(headers.count)
        for header in headers {
            guard let name = HTTPField.Name(header.name) else { continue }
            list.append(HTTPField(name: name, value: header.value))
        }
        return HTTPFields.endToEnd(from: list)
    }

    /// ``timeout`` as NIO counts time; `nil` when there is no limit.
    var timeoutAmount: TimeAmount? {
        self.timeout.map { .nanoseconds(Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000) }
    }

    func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        try await self.httpClient.execute(request, timeout: self.timeoutAmount ?? .hours(24 * 365), logger: self.logger)
    }

    /// Sends an inspector replay to the local app the way a live webhook
    /// goes (same request building, timeout and error answers), observed by
    /// the same capture; returns the new webhook's id and its console summary.
    func replay(_ replay: ReplayRequest) async throws -> (id: String, summary: Summary) {
        guard let observer = self.observer else { throw ReplayUnavailable() }
        var summary = Summary(method: replay.method, path: replay.path.isEmpty ? "/" : replay.path, status: 0, bytes: 0)
        let exchange = observer.webhookStarted(
            ObservedRequestHead(method: replay.method, path: replay.path, headers: replay.headers, replayOf: replay.replayOf)
        )
        var fields = HTTPFields()
        for header in replay.headers {
            guard let name = HTTPField.Name(header.name) else { continue }
            fields.append(HTTPField(name: name, value: header.value))
        }
        var request = self.request(method: replay.method, target: replay.path, headerFields: fields.endToEnd)
        exchange.requestBody(replay.body)
        if replay.body.readableBytes > 0 || ["POST", "PUT", "PATCH"].contains(replay.method.uppercased()) {
            request.body = .bytes(replay.body)
        }
        let response: HTTPClientResponse
        do {
            response = try await self.execute(request)
        } catch {
            let (status, message) = Self.describe(error, target: self.origin)
            summary.status = status
            Self.observeError(status: status, message: message, on: exchange)
            return (exchange.id, summary)
        }
        summary.status = Int(response.status.code)
        exchange.responseHead(status: summary.status, headers: response.headers)
        do {
            for try await chunk in response.body {
                exchange.responseBody(chunk)
                summary.bytes += chunk.readableBytes
            }
            exchange.finished(error: nil)
        } catch {
            exchange.finished(error: "the local app's response failed: \(error)")
        }
        return (exchange.id, summary)
    }

    /// Shows the capture the tunnel's own error answer, as the sender gets it.
    static func observeError(status: Int, message: String, on exchange: (any WebhookExchangeObserver)?) {
        guard let exchange else { return }
        let body = Self.errorBody(message)
        exchange.responseHead(status: status, headers: Self.errorHeaders(body))
        exchange.responseBody(body)
        exchange.finished(error: message)
    }

    struct ReplayUnavailable: Error, CustomStringConvertible {
        var description: String { "the inspector is off" }
    }

    /// Maps a failed local request to the status the sender gets.
    static func describe(_ error: any Error, target: String) -> (Int, String) {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout {
            return (504, "the local app at \(target) did not answer in time")
        }
        if let reason = error as? StreamResetReason {
            return (502, "the webhook was abandoned: \(reason.message)")
        }
        return (502, "the local app at \(target) is unreachable: \(error)")
    }

    /// The tunnel's own error answer (`{"error": "…"}`), as the sender gets it.
    static func errorBody(_ message: String) -> ByteBuffer {
        ByteBuffer(bytes: Array("{\"error\":\(Self.jsonString(message))}\n".utf8))
    }

    static func errorHeaders(_ body: ByteBuffer) -> HTTPFields {
        [.contentType: "application/json", .contentLength: "\(body.readableBytes)"]
    }

    static func jsonString(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [])) ?? Data("[\"\"]".utf8)
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}
