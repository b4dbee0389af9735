import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

@Suite("Many webhooks at once on one channel")
struct ConcurrencyTests {
    @Test("100 concurrent webhooks each get their own answer; a 5 s one does not delay the others")
    func hundredConcurrent() async throws {
        let app = LocalApp { router in
            router.post("/echo/{n}") { request, context -> Response in
                var request = request
                let body = try await request.collectBody(upTo: 1024 * 1024)
                let n = try context.parameters.require("n")
                return Response(status: .ok, headers: [HTTPField.Name("X-N")!: n], body: .init(byteBuffer: body))
            }
            router.post("/slow") { _, _ -> String in
                // The slow local app this test is about, not a synchronisation.
                try await Task.sleep(for: .seconds(5))
                return "slow"
            }
        }
        try await Tunnel.withTunnel(app: app) { _, client in
            let slowDone = Flag()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let answer = try await Sender.send(.POST, client.webhookURL + "/slow", body: ByteBuffer(string: "s"))
                    #expect(answer.text == "slow")
                    slowDone.set()
                }
                try await withThrowingTaskGroup(of: Void.self) { fast in
                    for n in 0..<100 {
                        fast.addTask {
                            let body = "webhook number \(n) " + String(repeating: "\(n % 10)", count: n * 37)
                            let answer = try await Sender.send(.POST, client.webhookURL + "/echo/\(n)", body: ByteBuffer(string: body))
                            #expect(answer.status == 200)
                            #expect(answer.headers["X-N"] == ["\(n)"])
                            #expect(answer.body.readableBytes == body.utf8.count && answer.text == body, "webhook \(n) came back wrong")
                        }
                    }
                    try await fast.waitForAll()
                }
                #expect(!slowDone.isSet, "the 100 fast webhooks finished only after the slow one")
                try await group.waitForAll()
            }
        }
    }
}

/// A flag set once, read from other tasks.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { self.value.withLock { $0 = true } }
    var isSet: Bool { self.value.withLock { $0 } }
}
