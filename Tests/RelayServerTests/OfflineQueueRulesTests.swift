import Foundation
import HTTPTypes
import OfflineQueue
import Testing
import TunnelProtocol

@testable import RelayServer

@Suite("Offline queue rules on the server")
struct OfflineQueueRulesTests {
    @Test("Retries back off 1 s, 2 s, 4 s ... and never wait more than 5 minutes")
    func retrySchedule() {
        let delays = (1...12).map { OfflineQueueSettings.retryDelay(afterAttempt: $0) }
        #expect(Array(delays.prefix(5)) == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16)])
        #expect(delays.allSatisfy { $0 <= .seconds(300) })
        #expect(delays.last == .seconds(300))
        #expect(OfflineQueueSettings.retryDelay(afterAttempt: 0) == .seconds(1))
        #expect(OfflineQueueSettings.retryDelay(afterAttempt: Int.max) == .seconds(300))
    }

    @Test("The client's mode header: queue or reject in any case, absent means unchanged, anything else is refused")
    func modeHeader() throws {
        let name = HTTPField.Name("X-Webhook-When-Offline")!
        #expect(try OfflineDelivery.parseMode([:]) == nil)
        #expect(try OfflineDelivery.parseMode([name: "queue"]) == .queue)
        #expect(try OfflineDelivery.parseMode([name: " Reject "]) == .reject)
        #expect(throws: OfflineDelivery.ModeError.self) { try OfflineDelivery.parseMode([name: "later"]) }
    }

    @Test("A delivery carries the stored head plus its id, queue time (RFC 3339) and 1-based attempt")
    func deliveryHead() throws {
        let queuedAt = Date(timeIntervalSince1970: 1_800_000_000.25)
        let webhook = QueuedWebhook(
            id: "0b5e3c7e-57a5-4f3e-9d8b-6f1c2a3b4c5d",
            channelID: "c",
            head: QueuedRequestHead(method: "POST", target: "/github?x=1", headerFields: [.contentType: "application/json"]),
            bodyLength: 2,
            queuedAt: queuedAt,
            attempts: 2
        )
        let head = OfflineDelivery.deliveryHead(webhook)
        #expect(head.method == "POST")
        #expect(head.target == "/github?x=1")
        #expect(head.headerFields[.contentType] == "application/json")
        #expect(head.headerFields[HTTPField.Name("X-Webhook-Delivery-Id")!] == webhook.id)
        #expect(head.headerFields[HTTPField.Name("X-Webhook-Delivery-Attempt")!] == "3")
        let stamp = try #require(head.headerFields[HTTPField.Name("X-Webhook-Queued-At")!])
        #expect(stamp == "2027-01-15T08:00:00.250Z")
        #expect(try Date(stamp, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) == queuedAt)
    }

    @Test("Channels with queued webhooks are kept by the sweeper; the others go")
    func sweeperKeepsQueuedChannels() {
        var table = ChannelTable()
        let start = ContinuousClock.now
        table.issue("queued", now: start)
        table.issue("idle", now: start)
        #expect(table.sweep(now: start + .seconds(600), ttl: .seconds(300), keeping: ["queued"]) == ["idle"])
        #expect(table.contains("queued"))
        #expect(table.sweep(now: start + .seconds(900), ttl: .seconds(300)) == ["queued"])
    }

    @Test("A --queue-url in an error message has no password")
    func redactedURL() {
        #expect(OfflineQueueStartError.redacted("postgres://wow:s3cret@db:5432/queue") == "postgres://wow:***@db:5432/queue")
        #expect(OfflineQueueStartError.redacted("postgres://db/queue") == "postgres://db/queue")
    }
}
