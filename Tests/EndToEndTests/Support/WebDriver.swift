import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A real headless Chromium, driven through Debian's `chromedriver` with the
/// W3C WebDriver JSON protocol over HTTP (no Selenium).
///
/// chromedriver runs as a child process on a free loopback port; each
/// browser gets a fresh profile directory. ``withBrowser(_:)`` ends the
/// session (which closes Chromium) and stops chromedriver by PID.
struct WebDriver: Sendable {
    struct Binaries: Sendable {
        var chromedriver: String
        var chromium: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// chromedriver and Chromium from `CHROMEDRIVER_BIN` / `CHROMIUM_BIN` or
    /// Debian's paths; `nil` when either is missing.
    static var binaries: Binaries? {
        let environment = ProcessInfo.processInfo.environment
        let driver = environment["CHROMEDRIVER_BIN"] ?? "/usr/bin/chromedriver"
        let browser = environment["CHROMIUM_BIN"] ?? "/usr/bin/chromium"
        let files = FileManager.default
        guard files.isExecutableFile(atPath: driver), files.isExecutableFile(atPath: browser) else { return nil }
        return Binaries(chromedriver: driver, chromium: browser)
    }

    static var isAvailable: Bool { Self.binaries != nil }

    private let base: String
    private let session: String

    /// Starts chromedriver on a port of its choosing. With `--port=0` it sometimes picks a port
    /// that is free on one address family only and exits ("IPv4 port not available"); a new
    /// start picks another, so a few attempts are made before giving up.
    private static func startDriver(_ executable: String) async throws -> (ToolProcess, Int) {
        var lastError: any Error = Failure(description: "chromedriver did not start")
        for _ in 0..<5 {
            let driver = try ToolProcess(["--port=0"], executable: executable)
            do {
                let line = try await driver.waitForLine(containing: "was started successfully on port")
                let digits = line.split(separator: " ").last.map { $0.filter(\.isNumber) } ?? ""
                guard let port = Int(digits) else { throw Failure(description: "no port in chromedriver's line '\(line)'") }
                return (driver, port)
            } catch {
                await driver.stop()
                lastError = error
            }
        }
        throw lastError
    }

    /// Starts chromedriver and a browser session, runs `body`, then ends both.
    static func withBrowser<T: Sendable>(
        width: Int = 1500,
        height: Int = 1000,
        _ body: @Sendable (WebDriver) async throws -> T
    ) async throws -> T {
        guard let binaries = Self.binaries else { throw Failure(description: "chromium or chromedriver not found") }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("wow-chromium-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let (driver, port) = try await Self.startDriver(binaries.chromedriver)
        do {
            let base = "http://127.0.0.1:\(port)"
            let capabilities: [String: any Sendable] = [
                "capabilities": [
                    "alwaysMatch": [
                        "browserName": "chrome",
                        "goog:chromeOptions": [
                            "binary": binaries.chromium,
                            "args": [
                                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                "--user-data-dir=\(profile)", "--window-size=\(width),\(height)",
                                "--no-first-run", "--no-default-browser-check",
                            ],
                        ] as [String: any Sendable],
                    ] as [String: any Sendable]
                ] as [String: any Sendable]
            ]
            let created = try await Self.command(base: base, .POST, "/session", capabilities, as: NewSession.self)
            let browser = WebDriver(base: base, session: created.sessionId)
            do {
                let result = try await body(browser)
                await browser.quit()
                await driver.stop()
                return result
            } catch {
                await browser.quit()
                throw error
            }
        } catch {
            await driver.stop()
            throw error
        }
    }

    private struct NewSession: Decodable { var sessionId: String }
    private struct ElementReference: Decodable {
        var id: String
        enum CodingKeys: String, CodingKey { case id = "element-6066-11e4-a52e-4f735466cecf" }
    }
    private struct Envelope<Value: Decodable>: Decodable { var value: Value }
    private struct ErrorValue: Decodable {
        var error: String
        var message: String
    }
    /// What commands that return nothing return (`null`).
    private struct Nothing: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    private static func command<T: Decodable>(
        base: String,
        _ method: HTTPMethod,
        _ path: String,
        _ parameters: [String: any Sendable]? = nil,
        as type: T.Type
    ) async throws -> T {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        if let parameters {
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: parameters)))
        } else if method == .POST {
            request.body = .bytes(ByteBuffer(string: "{}"))
        }
        let response = try await Sender.client.execute(request, timeout: .seconds(90))
        let data = Data(try await response.body.collect(upTo: 64 * 1024 * 1024).readableBytesView)
        guard (200..<300).contains(response.status.code) else {
            let problem = try? JSONDecoder().decode(Envelope<ErrorValue>.self, from: data).value
            throw Failure(
                description: "WebDriver \(method) \(path): \(problem.map { "\($0.error): \($0.message)" } ?? String(decoding: data, as: UTF8.self))"
            )
        }
        return try JSONDecoder().decode(Envelope<T>.self, from: data).value
    }

    private func command<T: Decodable>(
        _ method: HTTPMethod,
        _ path: String,
        _ parameters: [String: any Sendable]? = nil,
        as type: T.Type = Nothing.self
    ) async throws -> T {
        try await Self.command(base: self.base, method, "/session/\(self.session)" + path, parameters, as: type)
    }

    private func quit() async {
        _ = try? await Self.command(base: self.base, .DELETE, "/session/\(self.session)", as: Nothing.self)
    }

    func open(_ url: String) async throws {
        _ = try await self.command(.POST, "/url", ["url": url])
    }

    /// Runs `script` (a function body; `arguments[i]` are `arguments`) in the page.
    func execute<T: Decodable>(_ script: String, _ arguments: [String] = [], as type: T.Type) async throws -> T {
        try await self.command(.POST, "/execute/sync", ["script": script, "args": arguments], as: type)
    }

    private func element(_ selector: String) async throws -> String {
        try await self.command(.POST, "/element", ["using": "css selector", "value": selector], as: ElementReference.self).id
    }

    /// Clicks the first element matching `selector`, as a user would. The
    /// page re-renders its list on live updates, so an element found a moment
    /// ago may be gone: then it is looked up again, a few times.
    func click(_ selector: String) async throws {
        var attempt = 0
        while true {
            do {
                let id = try await self.element(selector)
                _ = try await self.command(.POST, "/element/\(id)/click", [:])
                return
            } catch let failure as Failure where failure.description.contains("stale element reference") && attempt < 5 {
                attempt += 1
            }
        }
    }

    /// Replaces the text of the input or textarea matching `selector` by typing `text`.
    func type(_ selector: String, _ text: String, clearFirst: Bool = true) async throws {
        let id = try await self.element(selector)
        if clearFirst { _ = try await self.command(.POST, "/element/\(id)/clear", [:]) }
        if !text.isEmpty { _ = try await self.command(.POST, "/element/\(id)/value", ["text": text]) }
    }

    /// Polls `script` until it returns something other than `null`, or fails
    /// after `timeout` with `what` and the page's last answer.
    func waitFor<T: Decodable & Sendable>(
        _ what: String,
        timeout: Duration = .seconds(20),
        _ script: String,
        _ arguments: [String] = [],
        as type: T.Type
    ) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let value = try await self.execute(script, arguments, as: T?.self) { return value }
            guard ContinuousClock.now < deadline else { throw Failure(description: "timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Polls `script` until it returns `true`.
    func waitUntil(_ what: String, timeout: Duration = .seconds(20), _ script: String, _ arguments: [String] = []) async throws {
        _ = try await self.waitFor(
            what,
            timeout: timeout,
            "return (function(){ \(script) }).apply(null, arguments) ? true : null;",
            arguments,
            as: Bool.self
        )
    }

    /// A PNG of the viewport.
    func screenshot() async throws -> Data {
        let encoded = try await self.command(.GET, "/screenshot", as: String.self)
        guard let data = Data(base64Encoded: encoded) else { throw Failure(description: "screenshot is not base64") }
        return data
    }
}
