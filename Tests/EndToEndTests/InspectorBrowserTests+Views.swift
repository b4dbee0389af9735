import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The page's filters, body views, the tunnel's own errors and copy as curl.
extension InspectorBrowserTests {
    static func visibleRowIDs(_ browser: WebDriver) async throws -> [String] {
        try await browser.execute(
            "return Array.from(document.querySelectorAll('[data-testid=webhook-row]')).map((r) => r.dataset.id);",
            as: [String].self
        )
    }

    /// Waits until exactly `expected` rows are shown, in any order.
    static func waitForRows(_ browser: WebDriver, _ expected: Set<String>, _ what: String) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        var shown: [String] = []
        while ContinuousClock.now < deadline {
            shown = try await Self.visibleRowIDs(browser)
            if Set(shown) == expected && shown.count == expected.count { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("\(what): shown \(shown), expected \(expected.sorted())")
    }

    @Test("Filters on method, status class, path, header and body text combine")
    func filtersCombine() async throws {
        let recorder = Recorder()
        try await Self.withInspectorPage(recorder) { client, _, browser in
            _ = try await Sender.send(
                .POST,
                client.webhookURL + "/github",
                headers: [("Content-Type", "application/json"), ("X-GitHub-Event", "push")],
                body: ByteBuffer(string: #"{"note":"a needle in here"}"#)
            )
            _ = try await Sender.send(
                .POST,
                client.webhookURL + "/slack",
                headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-GitHub-Event", "ping")],
                body: ByteBuffer(string: "text=no+pins")
            )
            _ = try await Sender.send(.POST, client.webhookURL + "/missing", body: ByteBuffer(string: "needle"))
            let github = try await Self.waitForRow(browser, path: "/github")
            let slack = try await Self.waitForRow(browser, path: "/slack")
            let missing = try await Self.waitForRow(browser, path: "/missing")

            try await browser.type("#filter-status", "4xx")
            try await Self.waitForRows(browser, [missing], "status 4xx")
            try await browser.type("#filter-status", "2xx, 404")
            try await Self.waitForRows(browser, [github, slack, missing], "status 2xx or 404")
            try await browser.type("#filter-body", "needle")
            try await Self.waitForRows(browser, [github, missing], "body text 'needle'")
            try await browser.type("#filter-header", "x-github-event")
            try await Self.waitForRows(browser, [github], "body 'needle' and an X-GitHub-Event header")
            try await browser.type("#filter-header", "X-GitHub-Event:PING")
            try await Self.waitForRows(browser, [], "body 'needle' and X-GitHub-Event: ping")
            try await browser.type("#filter-body", "")
            try await Self.waitForRows(browser, [slack], "X-GitHub-Event: ping")
            try await browser.click("#filter-clear")
            try await browser.type("#filter-path", "GIT")
            try await Self.waitForRows(browser, [github], "path containing 'git'")
            try await browser.click("#filter-method option[value=GET]")
            try await Self.waitForRows(browser, [], "GET and path 'git'")
        }
    }

    @Test("XML is indented, binary is a hex dump, a body over the capture limit says first N of M bytes and its SHA-256")
    func bodyViews() async throws {
        let recorder = Recorder()
        try await Self.withInspectorPage(recorder) { client, inspector, browser in
            let xml = #"<?xml version="1.0"?><feed a="1"><entry><title>Hi &amp; bye</title><empty/></entry></feed>"#
            _ = try await Sender.send(
                .POST,
                client.webhookURL + "/github?kind=xml",
                headers: [("Content-Type", "application/xml")],
                body: ByteBuffer(string: xml)
            )
            let binary: [UInt8] = [0x00, 0x01, 0x02, 0x41, 0x42, 0xFF] + Array(repeating: 0x7F, count: 12)
            _ = try await Sender.send(
                .POST,
                client.webhookURL + "/github?kind=binary",
                headers: [("Content-Type", "application/octet-stream")],
                body: ByteBuffer(bytes: binary)
            )
            let large = [UInt8](repeating: UInt8(ascii: "a"), count: 1_572_864)
            _ = try await Sender.send(
                .POST,
                client.webhookURL + "/github?kind=large",
                headers: [("Content-Type", "text/plain")],
                body: ByteBuffer(bytes: large)
            )

            let xmlID = try await Self.waitForRow(browser, path: "/github?kind=xml")
            try await Self.openDetail(browser, xmlID)
            let shownXML = try await browser.execute(
                "const pre = document.querySelector('[data-testid=request-body]'); return [pre.dataset.kind, pre.textContent];",
                as: [String].self
            )
            #expect(shownXML[0] == "xml")
            #expect(
                shownXML[1] == """
                    <?xml version="1.0"?>
                    <feed a="1">
                      <entry>
                        <title>Hi &amp; bye</title>
                        <empty/>
                      </entry>
                    </feed>
                    """
            )
            let download = try await browser.execute(
                "return document.querySelector('[data-testid=request-download]').getAttribute('href');",
                as: String.self
            )
            let raw = try await Sender.send(.GET, inspector + download)
            #expect(raw.text == xml, "the download link gives the raw bytes")

            let binaryID = try await Self.waitForRow(browser, path: "/github?kind=binary")
            try await Self.openDetail(browser, binaryID)
            let shownHex = try await browser.execute(
                "const pre = document.querySelector('[data-testid=request-body]'); return [pre.dataset.kind, pre.textContent];",
                as: [String].self
            )
            #expect(shownHex[0] == "hex")
            #expect(shownHex[1].hasPrefix("00000000  00 01 02 41 42 ff 7f 7f  7f 7f 7f 7f 7f 7f 7f 7f  |...AB...........|"))

            let largeID = try await Self.waitForRow(browser, path: "/github?kind=large")
            try await Self.openDetail(browser, largeID)
            let note = try await browser.waitFor(
                "the truncation note",
                "const t = document.querySelector('[data-testid=request-truncated]'); return t ? t.textContent : null;",
                as: String.self
            )
            let digest = SHA256.hash(data: large).map { String(format: "%02x", $0) }.joined()
            #expect(note.hasPrefix("first "))
            #expect(note.hasSuffix(" of 1572864 bytes, sha256 \(digest)"))
        }
    }

    @Test("When the local app is too slow, the page shows the tunnel's own 504 as the answer the sender got")
    func tunnelTimeoutIsShown() async throws {
        let recorder = Recorder()
        try await Self.withInspectorPage(recorder, clientArguments: ["--transfer-request-timeout", "300ms"]) { client, _, browser in
            let answer = try await Sender.send(.POST, client.webhookURL + "/slow", body: ByteBuffer(string: "{}"))
            #expect(answer.status == 504)
            let id = try await Self.waitForRow(browser, path: "/slow")
            let rowStatus = try await browser.execute(
                "return document.querySelector(arguments[0] + ' [data-testid=row-status]').textContent;",
                [Self.rowSelector(id)],
                as: String.self
            )
            #expect(rowStatus == "504")
            try await Self.openDetail(browser, id)
            let shown = try await browser.execute(
                """
                const e = document.querySelector('[data-testid=detail-error]');
                const s = document.querySelector('[data-testid=response-status]');
                return [e ? e.textContent : '', s ? s.textContent : ''];
                """,
                as: [String].self
            )
            #expect(!shown[0].isEmpty, "the tunnel's error is shown")
            #expect(shown[1] == "504")
        }
    }

    @Test("Copy as curl gives a command that sends the same request again")
    func copyAsCurl() async throws {
        let recorder = Recorder()
        try await Self.withInspectorPage(recorder) { client, _, browser in
            let text = "it's a body\nwith two lines & a \"quote\" and $HOME\n"
            _ = try await Sender.send(
                .POST,
                client.webhookURL + "/slack?team=a'b",
                headers: [("Content-Type", "text/plain"), ("X-Odd", "it's $PATH")],
                body: ByteBuffer(string: text)
            )
            let id = try await Self.waitForRow(browser, path: "/slack?team=a'b")
            try await Self.openDetail(browser, id)
            try await browser.click("[data-testid=copy-curl]")
            let command = try await browser.waitFor(
                "the curl command",
                "const t = document.querySelector('[data-testid=curl-text]'); return t && t.value ? t.value : null;",
                as: String.self
            )
            // Through the tunnel again: the local app must see what the first delivery brought.
            let shell = try ToolProcess(["-c", command], environment: ["TARGET": client.webhookURL], executable: "/bin/sh")
            let status = await shell.waitForExit()
            #expect(status == 0, "curl: \(shell.output.joined(separator: "\n"))")
            let requests = await recorder.requests
            try #require(requests.count == 2)
            #expect(requests[1].body == requests[0].body)
            #expect(String(decoding: requests[1].body, as: UTF8.self) == text)
            #expect(requests[1].path == requests[0].path)
            #expect(requests[1].header("X-Odd") == "it's $PATH")
            #expect(requests[1].header("Content-Type") == "text/plain")
        }
    }
}
