import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// The JSON API, the event stream, HAR export and the page, on one router
/// (docs/inspector.md, "API").
struct InspectorAPI: Sendable {
    let store: HistoryStore
    let writer: HistoryWriter
    let events: EventHub
    let replayer: ReplayHandlerBox
    let baseURL: String
    let version: String

    func routes(allowed: AllowedHosts) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: HostGuard(allowed: allowed))
        router.add(middleware: JSONErrorMiddleware())
        router.get("/api/webhooks") { request, _ in try await self.list(request) }
        router.get("/api/webhooks/{id}") { _, context in try await self.detail(context.parameters.require("id")) }
        router.get("/api/webhooks/{id}/request.body") { _, context in try await self.body(context.parameters.require("id"), response: false) }
        router.get("/api/webhooks/{id}/response.body") { _, context in try await self.body(context.parameters.require("id"), response: true) }
        router.post("/api/webhooks/{id}/replay") { request, context in
            try await self.replay(context.parameters.require("id"), request: request)
        }
        router.get("/api/events") { _, _ in self.eventStream() }
        router.get("/api/har") { request, _ in try await self.har(request) }
        router.get("/") { request, _ in try self.page(request.uri.path) }
        router.get("/index.html") { request, _ in try self.page(request.uri.path) }
        router.get("/assets/**") { request, _ in try self.page(request.uri.path) }
        return router
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: JSONText.encode(["error": message]))
        )
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: JSONText.encode(object))
        )
    }

    private func list(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        var limit = 100
        if let text = query["limit"] {
            guard let value = Int(String(text)), value > 0 else { throw HTTPError(.badRequest, message: "limit must be a positive integer") }
            limit = min(value, 1_000)
        }
        let before = query["before"].map(String.init)
        let records = try await self.store.list(limit: limit, before: before)
        return Self.json(["webhooks": records.map(\.summaryJSON)])
    }

    private func detail(_ id: String) async throws -> Response {
        guard let record = try await self.store.record(id: id) else { throw HTTPError(.notFound, message: "no webhook \(id)") }
        return Self.json(record.detailJSON)
    }

    private func body(_ id: String, response: Bool) async throws -> Response {
        guard let record = try await self.store.record(id: id) else { throw HTTPError(.notFound, message: "no webhook \(id)") }
        let body = response ? record.responseBody : record.requestBody
        guard let body else { throw HTTPError(.notFound, message: "webhook \(id) has no response yet") }
        var headers: HTTPFields = [.contentType: "application/octet-stream", .cacheControl: "no-store"]
        headers[HTTPField.Name("X-Body-Size")!] = "\(body.size)"
        headers[HTTPField.Name("X-Body-SHA256")!] = body.sha256
        headers[HTTPField.Name("X-Body-Truncated")!] = body.truncated ? "true" : "false"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: body.bytes))
    }

    private func replay(_ id: String, request: Request) async throws -> Response {
        let limit = max(self.store.limits.captureLimit, 1 << 20) * 2 + 64 * 1024
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw HTTPError(.contentTooLarge, message: "the replay request is larger than \(limit) bytes")
        }
        let edits: ReplayEdits
        do {
            edits = try ReplayEdits.parse(buffer)
        } catch let invalid as ReplayEdits.Invalid {
            throw HTTPError(.badRequest, message: invalid.description)
        }
        guard let original = try await self.store.record(id: id) else { throw HTTPError(.notFound, message: "no webhook \(id)") }
        if original.requestBody.truncated && edits.body == nil {
            throw HTTPError(
                .conflict,
                message:
                    "the original body (\(original.requestBody.size) bytes) was larger than the capture limit; only its first \(original.requestBody.bytes.readableBytes) bytes were kept, so it cannot be replayed as it was (send body_base64 to replay an edited body)"
            )
        }
        guard let handler = self.replayer.handler else {
            throw HTTPError(.serviceUnavailable, message: "the client is not ready to replay yet")
        }
        let replay = edits.apply(to: original, now: Int(Date().timeIntervalSince1970))
        let newID = try await handler(replay)
        await self.writer.flush()
        guard let record = try await self.store.record(id: newID) else {
            throw HTTPError(.internalServerError, message: "the replay was sent but its record is missing")
        }
        return Self.json(record.detailJSON, status: .created)
    }

    private func eventStream() -> Response {
        let events = self.events
        let (id, stream) = events.subscribe()
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                defer { events.unsubscribe(id) }
                // Sent at once, so the browser reports the stream open.
                try await writer.write(ByteBuffer(string: ": connected\n\n"))
                for await text in stream {
                    try await writer.write(ByteBuffer(string: text))
                }
                try await writer.finish(nil)
            }
        )
    }

    private func har(_ request: Request) async throws -> Response {
        let ids: [String]
        if let list = request.uri.queryParameters["ids"] {
            ids = list.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        } else {
            ids = try await self.store.allIDs()
        }
        let store = self.store
        let baseURL = self.baseURL
        let prefix = HAR.prefix(version: self.version)
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/json",
                .contentDisposition: "attachment; filename=\"webhooks.har\"",
                .cacheControl: "no-store",
            ],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: prefix))
                var first = true
                for id in ids {
                    guard let record = try await store.record(id: id) else { continue }
                    var chunk = first ? ByteBuffer() : ByteBuffer(string: ",")
                    chunk.writeImmutableBuffer(JSONText.encode(HAR.entry(record, baseURL: baseURL)))
                    try await writer.write(chunk)
                    first = false
                }
                try await writer.write(ByteBuffer(string: HAR.suffix))
                try await writer.finish(nil)
            }
        )
    }

    private func page(_ path: String) throws -> Response {
        guard let asset = InspectorPage.asset(path) else { throw HTTPError(.notFound, message: "no page at \(path)") }
        return Response(
            status: .ok,
            headers: [
                .contentType: asset.contentType,
                .cacheControl: "no-cache",
                .contentSecurityPolicy: InspectorPage.contentSecurityPolicy,
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: asset.body))
        )
    }
}

/// Every error as `{"error": "…"}` with its status, the router's 404 included.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            return InspectorAPI.error(error.status, error.body ?? "\(error.status.code) \(error.status.reasonPhrase)")
        } catch {
            return InspectorAPI.error(.internalServerError, "\(error)")
        }
    }
}

/// Where the client registers its replay path once it has one.
final class ReplayHandlerBox: Sendable {
    private let storage = Mutex<ReplayHandler?>(nil)

    var handler: ReplayHandler? { self.storage.withLock { $0 } }

    func set(_ handler: @escaping ReplayHandler) {
        self.storage.withLock { $0 = handler }
    }
}
