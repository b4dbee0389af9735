import HTTPTypes
import Hummingbird
import LocalAppTestSupport
import NIOCore
import Synchronization
import Testing
import TunnelProtocol

@testable import RelayClient

/// A webhook's call to the local app (``LocalExchange``), driven frame by frame from a fake relay,
/// against a real app on loopback.
@Suite("A webhook's call to the local app")
struct LocalExchangeTests {
    @Test("The webhook's body reaches the app, the answer comes back with END_STREAM on its last chunk, and the capture sees it all in order")
    func bodyThereAndBack() async throws {
        let app = LocalApp { router in
            router.post("/collect") { request, _ -> Response in
                let body = try await request.body.collect(upTo: .max)
                return Response(status: .created, headers: [.contentType: "text/plain"], body: .init(byteBuffer: body))
            }
        }
        let observer = RecordingObserver()
        let body = ByteBuffer(repeating: 0x61, count: 30_000)
        try await app.run { port in
            try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(port)", observer: observer) { peer, reports, _ in
                let head = RequestHead(method: "POST", target: "/collect?x=1", headerFields: [.contentLength: "30000", .contentType: "text/plain"])
                try await peer.sendRequestHead(head, on: 1, endStream: false)
                try await peer.sendData(body.getSlice(at: 0, length: 10_000)!, on: 1)
                try await peer.sendData(body.getSlice(at: 10_000, length: 20_000)!, on: 1, endStream: true)

                let answer = try await peer.readAnswer(on: 1)
                #expect(answer.head?.status == 201)
                #expect(answer.head?.headerFields[.contentType] == "text/plain")
                #expect(answer.body == body)
                #expect(answer.lastDataEndedStream)
                #expect(answer.frames.first == .responseHead && !answer.frames.contains(.end))

                let reported = try #require(await reports.next())
                #expect(reported.summary.status == 201)
                #expect(reported.summary.bytes == 30_000)
                #expect(reported.summary.path == "/collect?x=1")
                await observer.nextFinish()
                #expect(
                    observer.events == [
                        "started POST /collect?x=1", "requestBody 30000", "responseHead 201", "responseBody 30000", "finished ok",
                    ]
                )
            }
        }
    }

    @Test("A webhook without a body goes without one, and a queued webhook's delivery id is reported")
    func noBody() async throws {
        let app = LocalApp { router in
            router.get("/hello") { request, _ -> String in
                "hello \(request.headers[.contentLength] ?? "no length")"
            }
        }
        try await app.run { port in
            try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(port)") { peer, reports, _ in
                let head = RequestHead(method: "GET", target: "/hello", headerFields: [OfflineQueueHeaders.deliveryID: "0123456789abcdef"])
                try await peer.sendRequestHead(head, on: 1, endStream: true)
                let answer = try await peer.readAnswer(on: 1)
                #expect(answer.head?.status == 200)
                #expect(String(buffer: answer.body) == "hello no length")
                #expect(answer.lastDataEndedStream)
                let reported = try #require(await reports.next())
                #expect(reported.queuedID == "0123456789abcdef")
            }
        }
    }

    @Test(
        "Megabytes both ways flow through the windows: credit comes back as the app takes the upload, and the answer keeps within the credit granted"
    )
    func largeBodiesBothWays() async throws {
        let size = 1 << 20
        let app = LocalApp { router in
            router.put("/large") { request, _ -> Response in
                var count = 0
                for try await chunk in request.body { count += chunk.readableBytes }
                let answer = ByteBuffer(repeating: 0x62, count: count)
                return Response(
                    status: .ok,
                    body: .init(contentsOf: stride(from: 0, to: count, by: 16_384).map { answer.getSlice(at: $0, length: min(16_384, count - $0))! })
                )
            }
        }
        try await app.run { port in
            try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(port)") { peer, reports, _ in
                try await peer.sendRequestHead(RequestHead(method: "PUT", target: "/large", headerFields: [:]), on: 1, endStream: false)
                // Send as the client's window allows: 256 KiB, then only what WINDOW_UPDATEs grant.
                var sent = 0
                var granted = 256 * 1024
                while sent < size {
                    if sent < granted {
                        let count = min(64 * 1024, granted - sent, size - sent)
                        try await peer.sendData(ByteBuffer(repeating: 0x61, count: count), on: 1, endStream: sent + count == size)
                        sent += count
                    } else {
                        let frame = try #require(try await peer.nextFrame())
                        #expect(frame.type == .windowUpdate && frame.streamID == 1)
                        granted += Int(frame.payload.getInteger(at: frame.payload.readerIndex, as: UInt32.self) ?? 0)
                    }
                }
                let answer = try await peer.readAnswer(on: 1)
                #expect(answer.head?.status == 200)
                #expect(answer.body.readableBytes == size)
                #expect(!answer.exceededWindow)
                #expect(answer.lastDataEndedStream)
                let reported = try #require(await reports.next())
                #expect(reported.summary.bytes == size)
            }
        }
    }

    @Test("An unreachable app is answered 502 with the tunnel's JSON error, and the capture sees that answer")
    func unreachable() async throws {
        let port = try await ClientUnderTest.closedPort()
        let observer = RecordingObserver()
        try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(port)", observer: observer) { peer, reports, _ in
            try await peer.sendRequestHead(RequestHead(method: "POST", target: "/x", headerFields: [:]), on: 1, endStream: false)
            try await peer.sendData(ByteBuffer(string: "{}"), on: 1, endStream: true)
            let answer = try await peer.readAnswer(on: 1)
            #expect(answer.head?.status == 502)
            #expect(answer.head?.headerFields[.contentType] == "application/json")
            let message = String(buffer: answer.body)
            #expect(message.hasPrefix(#"{"error":"the local app at http:"#) && message.contains(":\(port) is unreachable"))
            // The app failed before or after the upload ended: its last chunk ends the stream, or
            // END follows (and the upload is reset).
            #expect(answer.lastDataEndedStream || answer.frames.last == .end)
            let reported = try #require(await reports.next())
            #expect(reported.summary.status == 502)
            #expect(observer.events.first == "started POST /x")
            #expect(observer.events.dropFirst().first == "responseHead 502")
            #expect(observer.events.last?.hasPrefix("finished the local app at") == true)
        }
    }

    @Test("An app that does not answer within the timeout is answered 504")
    func tooSlow() async throws {
        let (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
        let app = LocalApp { router in
            router.get("/slow") { _, _ -> String in
                for await _ in release {}
                return "late"
            }
        }
        try await app.run { port in
            try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(port)", timeout: .milliseconds(300)) { peer, reports, _ in
                let started = ContinuousClock.now
                try await peer.sendRequestHead(RequestHead(method: "GET", target: "/slow", headerFields: [:]), on: 1, endStream: true)
                let answer = try await peer.readAnswer(on: 1)
                #expect(answer.head?.status == 504)
                #expect(String(buffer: answer.body).contains("did not answer in time"))
                #expect(ContinuousClock.now - started < .seconds(5))
                #expect(try #require(await reports.next()).summary.status == 504)
            }
            releaseContinuation.finish()
        }
    }

    @Test("A RESET from the server (the sender went away) cancels the request to the app")
    func resetCancelsTheRequest() async throws {
        let (events, eventsContinuation) = AsyncStream.makeStream(of: String.self)
        let app = LocalApp { router in
            router.post("/hold") { request, _ -> String in
                do {
                    for try await _ in request.body { eventsContinuation.yield("chunk") }
                    eventsContinuation.yield("body ended")
                } catch {
                    eventsContinuation.yield("body failed")
                }
                return "done"
            }
        }
        let observer = RecordingObserver()
        try await app.run { port in
            try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(port)", observer: observer) { peer, reports, _ in
                var appEvents = events.makeAsyncIterator()
                try await peer.sendRequestHead(RequestHead(method: "POST", target: "/hold", headerFields: [:]), on: 1, endStream: false)
                try await peer.sendData(ByteBuffer(repeating: 0x61, count: 1000), on: 1)
                #expect(await appEvents.next() == "chunk")

                try await peer.sendReset(StreamResetReason(.cancelled, "the sender went away"), on: 1)
                // The app's connection is closed under it: its upload never completes.
                #expect(await appEvents.next() == "body failed")
                let reported = try #require(await reports.next())
                #expect(reported.summary.status == 502)
                #expect(observer.events.last == "finished the webhook was abandoned: the sender went away")
            }
        }
    }

    @Test("An app that answers before reading the whole upload: its answer arrives whole, then the stream is reset")
    func earlyAnswer() async throws {
        let app = LocalApp { router in
            router.post("/early") { _, _ -> Response in
                Response(status: .forbidden, body: .init(byteBuffer: ByteBuffer(string: "no")))
            }
        }
        try await app.run { port in
            try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(port)") { peer, reports, _ in
                try await peer.sendRequestHead(RequestHead(method: "POST", target: "/early", headerFields: [:]), on: 1, endStream: false)
                try await peer.sendData(ByteBuffer(repeating: 0x61, count: 1000), on: 1)
                let answer = try await peer.readAnswer(on: 1)
                #expect(answer.head?.status == 403)
                #expect(String(buffer: answer.body) == "no")
                // The upload never ends, yet the stream is freed: END, then RESET.
                #expect(answer.frames.last == .end)
                var next = try #require(try await peer.nextFrame())
                while next.type == .windowUpdate { next = try #require(try await peer.nextFrame()) }
                #expect(next.type == .reset && next.streamID == 1)
                #expect(try StreamResetReason(decoding: next.payload).code == .cancelled)
                #expect(try #require(await reports.next()).summary.status == 403)
            }
        }
    }

    @Test("An app that fails in the middle of its answer resets the stream")
    func appFailsMidAnswer() async throws {
        struct Broken: Error {}
        let app = LocalApp { router in
            router.get("/broken") { _, _ -> Response in
                Response(
                    status: .ok,
                    body: ResponseBody { writer in
                        try await writer.write(ByteBuffer(repeating: 0x61, count: 1000))
                        throw Broken()
                    }
                )
            }
        }
        let observer = RecordingObserver()
        try await app.run { port in
            try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(port)", observer: observer) { peer, reports, _ in
                try await peer.sendRequestHead(RequestHead(method: "GET", target: "/broken", headerFields: [:]), on: 1, endStream: true)
                let answer = try await peer.readAnswer(on: 1)
                #expect(answer.head?.status == 200)
                #expect(answer.reset?.message.hasPrefix("the local app's response failed") == true)
                _ = await reports.next()
                #expect(observer.events.last?.hasPrefix("finished the local app's response failed") == true)
            }
        }
    }

    @Test("Webhooks on many streams at once are each answered on their own stream")
    func concurrentStreams() async throws {
        let app = LocalApp { router in
            router.post("/echo/{n}") { request, context -> String in
                let body = try await request.body.collect(upTo: 1 << 16)
                return "\(context.parameters.get("n") ?? "?"):\(String(buffer: body))"
            }
        }
        try await app.run { port in
            try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(port)") { peer, reports, _ in
                let ids: [UInt32] = Array(stride(from: 1, through: 99, by: 2))
                for id in ids {
                    try await peer.sendRequestHead(RequestHead(method: "POST", target: "/echo/\(id)", headerFields: [:]), on: id, endStream: false)
                }
                for id in ids { try await peer.sendData(ByteBuffer(string: "body \(id)"), on: id, endStream: true) }
                var bodies: [UInt32: String] = [:]
                var ended = Set<UInt32>()
                while ended.count < ids.count, let frame = try await peer.nextFrame() {
                    if frame.type == .data { bodies[frame.streamID, default: ""] += String(buffer: frame.payload) }
                    if frame.flags.contains(.endStream) || frame.type == .end { ended.insert(frame.streamID) }
                }
                for id in ids { #expect(bodies[id] == "\(id):body \(id)") }
                for _ in ids { _ = await reports.next() }
            }
        }
    }
}

extension LocalExchangeTests {
    @Test("A large upload is granted a widened window at once; a small one is not")
    func largeUploadsGetAWiderWindow() async throws {
        let app = LocalApp { router in
            router.post("/upload") { request, _ -> Response in
                var count = 0
                for try await chunk in request.body { count += chunk.readableBytes }
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "\(count)")))
            }
        }
        try await app.run { port in
            try await ClientUnderTest.run(targetURL: "http://127.0.0.1:\(port)") { peer, _, _ in
                // 10 MiB declared: before any byte is sent, credit up to the widened window (1 MiB).
                try await peer.sendRequestHead(
                    RequestHead(method: "POST", target: "/upload", headerFields: [.contentLength: "\(10 << 20)"]),
                    on: 1,
                    endStream: false
                )
                let first = try #require(try await peer.nextFrame())
                #expect(first.type == .windowUpdate && first.streamID == 1)
                #expect(first.payload.getInteger(at: first.payload.readerIndex, as: UInt32.self) == UInt32((1 << 20) - (256 << 10)))
                var reason = ByteBuffer()
                StreamResetReason(.cancelled, "test over").encode(into: &reason)
                try await peer.send(Frame(type: .reset, streamID: 1, payload: reason))

                // 1,000 bytes declared: no extra frame, just the answer.
                try await peer.sendRequestHead(
                    RequestHead(method: "POST", target: "/upload", headerFields: [.contentLength: "1000"]),
                    on: 3,
                    endStream: false
                )
                try await peer.sendData(ByteBuffer(repeating: 0x61, count: 1000), on: 3, endStream: true)
                let next = try #require(try await peer.nextFrame())
                #expect(next.type == .responseHead && next.streamID == 3)
            }
        }
    }
}
