import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// A deterministic body of `size` bytes in 64 KiB chunks, generated as it is
/// read, so the test itself holds no whole body either.
struct GeneratedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let size: Int
    static let chunkSize = 64 * 1024

    struct AsyncIterator: AsyncIteratorProtocol {
        let size: Int
        var sent = 0

        mutating func next() async -> ByteBuffer? {
            guard self.sent < self.size else { return nil }
            let count = Swift.min(GeneratedBody.chunkSize, self.size - self.sent)
            var buffer = ByteBuffer()
            buffer.reserveCapacity(count)
            let seed = UInt8(truncatingIfNeeded: self.sent / GeneratedBody.chunkSize)
            buffer.writeRepeatingByte(seed, count: count)
            self.sent += count
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(size: self.size) }

    /// The digest of the whole body, computed chunk by chunk.
    func sha256() async -> String {
        var hasher = SHA256()
        for await chunk in self { hasher.update(data: Array(chunk.readableBytesView)) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

@Suite("Large bodies stream with bounded memory")
struct LargeBodyTests {
    static let size = 200 * 1024 * 1024
    static let memoryLimit = 64 * 1024 * 1024

    @Test("A 200 MiB body streams through each way; server and client each stay under 64 MiB resident")
    func twoHundredMiB() async throws {
        let app = LocalApp { router in
            // Reads the upload as a stream and answers with its size and digest.
            router.post("/sink") { request, _ -> String in
                var hasher = SHA256()
                var total = 0
                for try await chunk in request.body {
                    total += chunk.readableBytes
                    hasher.update(data: Array(chunk.readableBytesView))
                }
                return "\(total) " + hasher.finalize().map { String(format: "%02x", $0) }.joined()
            }
            // Streams a generated body back.
            router.get("/source") { _, _ -> Response in
                Response(
                    status: .ok,
                    headers: [.contentLength: "\(LargeBodyTests.size)", .contentType: "application/octet-stream"],
                    body: .init(asyncSequence: GeneratedBody(size: LargeBodyTests.size))
                )
            }
        }
        try await Tunnel.withTunnel(
            serverArguments: ["--max-body-size", "300MiB", "--request-timeout", "5m"],
            // The local app answers once it has read all 200 MiB: more than the default 10 s on a busy machine.
            clientArguments: ["--transfer-request-timeout", "5m"],
            app: app
        ) { server, client in
            let expected = await GeneratedBody(size: Self.size).sha256()

            var upload = HTTPClientRequest(url: client.webhookURL + "/sink")
            upload.method = .POST
            upload.body = .stream(GeneratedBody(size: Self.size), length: .known(Int64(Self.size)))
            let uploaded = try await Sender.client.execute(upload, timeout: .minutes(5))
            #expect(uploaded.status == .ok)
            let summary = String(buffer: try await uploaded.body.collect(upTo: 1024))
            #expect(summary == "\(Self.size) \(expected)")

            let download = try await Sender.client.execute(HTTPClientRequest(url: client.webhookURL + "/source"), timeout: .minutes(5))
            #expect(download.status == .ok)
            var hasher = SHA256()
            var total = 0
            for try await chunk in download.body {
                total += chunk.readableBytes
                hasher.update(data: Array(chunk.readableBytesView))
            }
            #expect(total == Self.size)
            #expect(hasher.finalize().map { String(format: "%02x", $0) }.joined() == expected)

            let serverPeak = try #require(server.process.peakResidentBytes())
            let clientPeak = try #require(client.process.peakResidentBytes())
            print("VmHWM after 200 MiB each way: server \(serverPeak / 1024) KiB, client \(clientPeak / 1024) KiB")
            #expect(serverPeak < Self.memoryLimit, "server peak \(serverPeak / 1024 / 1024) MiB")
            #expect(clientPeak < Self.memoryLimit, "client peak \(clientPeak / 1024 / 1024) MiB")
        }
    }
}
