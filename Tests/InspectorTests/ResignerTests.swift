import Crypto
import Foundation
import NIOCore
import Testing

@testable import Inspector

/// Each provider's signature, checked the way its documentation tells a
/// receiver to check it, with an HMAC computed here.
@Suite struct ResignerTests {
    static let body = ByteBuffer(string: #"{"action":"edited"}"#)

    static func hmac(_ secret: String, _ message: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: Array(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
    }

    @Test func gitHubSignsTheBodyAndReplacesTheOldSignature() {
        let headers = [HeaderField("X-Hub-Signature-256", "sha256=stale"), HeaderField("X-GitHub-Event", "push")]
        let signed = Resigner.sign(headers, body: Self.body, provider: .github, secret: "s3cret", now: 1_700_000_000)
        #expect(signed.filter { $0.name.lowercased() == "x-hub-signature-256" }.count == 1)
        #expect(signed.first == HeaderField("X-GitHub-Event", "push"))
        #expect(signed.last == HeaderField("X-Hub-Signature-256", "sha256=" + Self.hmac("s3cret", #"{"action":"edited"}"#)))
    }

    @Test func stripeSignsTheTimestampAndBody() {
        let signed = Resigner.sign(
            [HeaderField("stripe-signature", "t=1,v1=old")],
            body: Self.body,
            provider: .stripe,
            secret: "whsec_x",
            now: 1_700_000_123
        )
        #expect(signed == [HeaderField("Stripe-Signature", "t=1700000123,v1=" + Self.hmac("whsec_x", #"1700000123.{"action":"edited"}"#))])
    }

    @Test func slackSignsTheVersionTimestampAndBody() {
        let signed = Resigner.sign([], body: Self.body, provider: .slack, secret: "slk", now: 42)
        #expect(
            signed == [
                HeaderField("X-Slack-Request-Timestamp", "42"),
                HeaderField("X-Slack-Signature", "v0=" + Self.hmac("slk", #"v0:42:{"action":"edited"}"#)),
            ]
        )
    }

    @Test func aReplayCarriesTheMarkerAndNoStaleLength() throws {
        var original = HistoryStoreTests.record(7, body: "abc")
        original.requestHeaders.append(HeaderField("Content-Length", "3"))
        original.requestHeaders.append(HeaderField("X-Webhook-Replay", "older"))
        let edits = try ReplayEdits.parse(ByteBuffer(string: #"{"body_base64":"aGVsbG8=","sign":{"provider":"github","secret":"k"}}"#))
        let replay = edits.apply(to: original, now: 1)
        #expect(String(buffer: replay.body) == "hello")
        #expect(replay.headers.last == HeaderField("X-Webhook-Replay", "webhook-7"))
        #expect(!replay.headers.contains { $0.name.lowercased() == "content-length" })
        #expect(replay.headers.filter { $0.name == "X-Webhook-Replay" }.count == 1)
        #expect(replay.headers.contains(HeaderField("X-Hub-Signature-256", "sha256=" + Self.hmac("k", "hello"))))
    }

    @Test func noEditsReplayTheOriginalBytes() throws {
        let original = HistoryStoreTests.record(3, body: "same bytes")
        let replay = try ReplayEdits.parse(ByteBuffer()).apply(to: original, now: 1)
        #expect(String(buffer: replay.body) == "same bytes")
        #expect(replay.method == "POST" && replay.path == "/hook/3?x=1")
        #expect(Array(replay.headers.dropLast()) == original.requestHeaders)
    }

    @Test(arguments: [
        "[1,2]", #"{"method":"GE T"}"#, #"{"path":"no-slash"}"#, #"{"headers":[["Bad Name","x"]]}"#,
        #"{"headers":[["X","a\nb"]]}"#, #"{"body_base64":"%%%"}"#, #"{"sign":{"provider":"gitlab","secret":"x"}}"#, #"{"extra":1}"#,
    ])
    func badEditsAreRefusedWithAReason(_ text: String) {
        #expect(throws: ReplayEdits.Invalid.self) { try ReplayEdits.parse(ByteBuffer(string: text)) }
    }

    @Test func inspectAddressesParse() {
        #expect(InspectorAddress(parsing: "127.0.0.1:4040") == InspectorAddress(host: "127.0.0.1", port: 4040))
        #expect(InspectorAddress(parsing: "[::1]:0") == InspectorAddress(host: "::1", port: 0))
        #expect(InspectorAddress(parsing: "localhost") == nil)
        #expect(InspectorAddress(parsing: "x:99999") == nil)
        #expect(InspectorAddress(host: "0.0.0.0", port: 5).url(port: 5) == "http://127.0.0.1:5")
    }
}
