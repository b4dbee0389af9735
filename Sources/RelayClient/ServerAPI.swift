import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import TunnelProtocol

/// The server's plain HTTP endpoints, as the client uses them.
struct ServerAPI: Sendable {
    let httpClient: HTTPClient
    let serverURL: String
    let sessionToken: String?
    /// Sent with `/new`, so the channel has its mode before any client connects.
    var whenOffline: WhenOffline = .queue

    /// The server refused a request in a way retrying will not fix.
    struct Refused: Error, CustomStringConvertible {
        var status: Int
        var message: String
        var description: String { "the server answered \(self.status): \(self.message)" }
    }

    static func webSocketURL(serverURL: String, channelID: String) -> String {
        var url = serverURL
        if url.hasPrefix("https://") {
            url = "wss://" + url.dropFirst("https://".count)
        } else if url.hasPrefix("http://") {
            url = "ws://" + url.dropFirst("http://".count)
        }
        return "\(url)/ws/\(channelID)"
    }

    func newChannel() async throws -> SavedChannel {
        var request = HTTPClientRequest(url: "\(self.serverURL)/new")
        if let sessionToken { request.headers.add(name: "Authorization", value: "Bearer \(sessionToken)") }
        request.headers.add(name: OfflineQueueHeaders.whenOffline.rawName, value: self.whenOffline.rawValue)
        let response = try await self.httpClient.execute(request, timeout: .seconds(15))
        let body = try await response.body.collect(upTo: 64 * 1024)
        guard response.status == .ok else {
            let message = Self.errorMessage(body) ?? response.status.reasonPhrase
            if response.status == .unauthorized { throw LoginRequired(serverURL: self.serverURL, message: message) }
            throw Refused(status: Int(response.status.code), message: message)
        }
        return try JSONDecoder().decode(SavedChannel.self, from: Data(body.readableBytesView))
    }

    enum ChannelCheck {
        /// The server would accept the upgrade now.
        case acceptable
        /// The channel is gone or the token is not accepted: get a new one.
        case refused(Int, String)
        /// Another client holds it (or the server has not yet noticed our
        /// previous connection died): keep retrying.
        case inUse
        case unreachable(String)
    }

    /// Asks `GET /ws/{id}` (no upgrade) what an upgrade would get.
    func checkChannel(_ channel: SavedChannel) async -> ChannelCheck {
        var request = HTTPClientRequest(url: "\(self.serverURL)/ws/\(channel.channelID)")
        if let token = channel.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        do {
            let response = try await self.httpClient.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 64 * 1024)
            let message = Self.errorMessage(body) ?? response.status.reasonPhrase
            switch response.status.code {
            case 401, 403, 404: return .refused(Int(response.status.code), message)
            case 409: return .inUse
            case 426: return .acceptable
            default: return .unreachable("HTTP \(response.status.code): \(message)")
            }
        } catch {
            return .unreachable("\(error)")
        }
    }

    static func errorMessage(_ body: ByteBuffer) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else { return nil }
        return object["error"] as? String
    }
}
