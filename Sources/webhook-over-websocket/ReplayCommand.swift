import ArgumentParser
import AsyncHTTPClient
import Foundation
import Inspector
import NIOCore
import NIOHTTP1

/// `replay <id>`: asks a running client's inspector to send a webhook to the
/// local app again, optionally with another body and a fresh signature
/// (docs/inspector.md, "The replay command").
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Send a captured webhook to the local app again, through the running client's inspector."
    )

    @Argument(help: "The webhook's id (from the inspector page or GET /api/webhooks).")
    var id: String

    @Option(help: "The running client's inspector address, host:port.")
    var inspect: String = InspectorAddress.default.description

    @Option(help: "Replay with this file's bytes as the body instead of the original's.")
    var editBody: String?

    @Option(help: "Re-sign the (edited) body: github:SECRET, stripe:SECRET or slack:SECRET.")
    var sign: String?

    func validate() throws {
        guard InspectorAddress(parsing: self.inspect) != nil else {
            throw ValidationError("--inspect must be host:port (e.g. 127.0.0.1:4040), got '\(self.inspect)'")
        }
        if let sign = self.sign { _ = try Self.parseSign(sign) }
        if self.id.isEmpty || self.id.contains("/") || self.id.contains("?") { throw ValidationError("'\(self.id)' is not a webhook id") }
    }

    static func parseSign(_ text: String) throws -> (provider: String, secret: String) {
        guard let colon = text.firstIndex(of: ":"), Resigner.Provider(rawValue: text[..<colon].lowercased()) != nil,
            text.index(after: colon) < text.endIndex
        else {
            throw ValidationError("--sign must be github:SECRET, stripe:SECRET or slack:SECRET")
        }
        return (text[..<colon].lowercased(), String(text[text.index(after: colon)...]))
    }

    func run() async throws {
        var edits: [String: Any] = [:]
        if let path = self.editBody {
            guard let data = FileManager.default.contents(atPath: path) else {
                printError("cannot read --edit-body file \(path)")
                throw ExitCode.failure
            }
            edits["body_base64"] = data.base64EncodedString()
        }
        if let sign = self.sign {
            let (provider, secret) = try Self.parseSign(sign)
            edits["sign"] = ["provider": provider, "secret": secret]
        }
        let address = InspectorAddress(parsing: self.inspect)!
        let base = "http://\(address)"
        var request = HTTPClientRequest(url: "\(base)/api/webhooks/\(self.id)/replay")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: edits)))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        let status: UInt
        let body: ByteBuffer
        do {
            let response = try await client.execute(request, timeout: .seconds(120))
            status = response.status.code
            body = try await response.body.collect(upTo: 64 * 1024 * 1024)
            try? await client.shutdown()
        } catch {
            try? await client.shutdown()
            printError("cannot reach the inspector at \(base) (\(error)); is the client running with --inspect \(address)?")
            throw ExitCode.failure
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        guard status == 201, let object else {
            let message = object?["error"] as? String ?? String(buffer: body)
            printError("replay of \(self.id) failed: \(status) \(message)")
            throw ExitCode.failure
        }
        let answer = object["status"] as? Int
        let newID = object["id"] as? String ?? "?"
        let duration = (object["duration_ms"] as? Double).map { String(format: " in %.1f ms", $0) } ?? ""
        let error = (object["error"] as? String).map { " (\($0))" } ?? ""
        printLine("Replayed \(self.id) as \(newID): \(answer.map(String.init) ?? "no answer")\(duration)\(error)")
    }
}
