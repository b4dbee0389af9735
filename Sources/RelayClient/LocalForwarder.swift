import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import TunnelProtocol

/// Replays one tunnelled webhook against the local app and streams the
/// app's answer back on the same stream.
struct LocalForwarder: Sendable {
    let httpClient: HTTPClient
    /// The target URL split into its origin and base path.
    let origin: String
    let basePath: String
    let timeout: Duration?
    let logger: Logger

    init(httpClient: HTTPClient, targetURL: String, timeout: Duration?, logger: Logger) {
        self.httpClient = httpClient
        let (origin, basePath) = Self.split(targetURL)
        self.origin = origin
        self.basePath = basePath
        self.timeout = timeout
        self.logger = logger
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

    func handle(_ incoming: StreamMultiplexer.IncomingStream) async -> Summary {
        let stream = incoming.stream
        defer { stream.release() }
        let head = incoming.head
        var summary = Summary(method: head.method, path: head.target.isEmpty ? "/" : head.target, status: 0, bytes: 0)

        var request = HTTPClientRequest(url: self.url(for: head.target))
        request.method = HTTPMethod(rawValue: head.method)
        let endToEnd = head.headerFields.endToEnd
        for field in endToEnd where field.name != .contentLength {
            request.headers.add(name: field.name.rawName, value: field.value)
        }
        if !incoming.endStream {
            let length = head.headerFields[.contentLength].flatMap(Int.init)
            request.body = .stream(stream.inboundBody(), length: length.map { .known(Int64($0)) } ?? .unknown)
        } else if head.headerFields[.contentLength] != nil {
            request.headers.replaceOrAdd(name: "Content-Length", value: "0")
        }

        let response: HTTPClientResponse
        do {
            let deadline: TimeAmount =
                self.timeout.map { .nanoseconds(Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000) }
                ?? .hours(24 * 365)
            response = try await self.httpClient.execute(request, timeout: deadline, logger: self.logger)
        } catch {
            let (status, message) = Self.describe(error, target: self.origin)
            summary.status = status
            await Self.sendError(status: status, message: message, on: stream)
            return summary
        }

        summary.status = Int(response.status.code)
        var fields = HTTPFields()
        for header in response.headers {
            guard let name = HTTPField.Name(header.name) else { continue }
            fields.append(HTTPField(name: name, value: header.value))
        }
        do {
            try await stream.sendResponseHead(ResponseHead(status: summary.status, headerFields: fields.endToEnd), endStream: false)
            // Each chunk waits for the next, so the last one carries END_STREAM (no separate END).
            var writer = stream.makeBodyWriter()
            var held: ByteBuffer?
            for try await chunk in response.body {
                if let previous = held { try await writer.write(previous) }
                held = chunk
            }
            if let last = held {
                try await writer.finish(with: last)
            } else {
                try await writer.finish()
            }
            summary.bytes = writer.bytesWritten
        } catch let reason as StreamResetReason {
            self.logger.debug("stream ended early", metadata: ["reason": "\(reason)"])
        } catch {
            await stream.reset(StreamResetReason(.cancelled, "the local app's response failed: \(error)"))
        }
        return summary
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

    static func sendError(status: Int, message: String, on stream: TunnelStream) async {
        let body = ByteBuffer(bytes: Array("{\"error\":\(Self.jsonString(message))}\n".utf8))
        do {
            try await stream.sendResponseHead(
                ResponseHead(status: status, headerFields: [.contentType: "application/json", .contentLength: "\(body.readableBytes)"]),
                endStream: false
            )
            var writer = stream.makeBodyWriter()
            try await writer.finish(with: body)
        } catch {
            // The stream is gone (sender left, connection lost): nobody is waiting.
        }
    }

    static func jsonString(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [])) ?? Data("[\"\"]".utf8)
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}
