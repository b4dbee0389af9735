import HTTPTypes
import NIOCore
import TunnelProtocol

/// An answer the tunnel itself gives a webhook's sender (not the local app's): status, a JSON
/// `{"error": …}` body, and the headers that go with it.
///
/// The one place that maps a failure to a status, for the event-loop path (`WebhookExchange`) and
/// the async paths (`WebhookForwarder`) alike; README "Webhook semantics" lists them.
struct ErrorAnswer: Sendable {
    var status: HTTPResponse.Status
    var message: String
    /// `Retry-After` seconds, for failures that a retry may not meet.
    var retryAfter: String?
    /// `Connection: close`: the request body may still be arriving and is not wanted.
    var close = false

    /// A stream that ended before its answer's head.
    static func forReset(_ reason: StreamResetReason) -> ErrorAnswer {
        switch reason.code {
        case .timeout:
            ErrorAnswer(status: .gatewayTimeout, message: reason.message)
        case .bodyTooLarge:
            ErrorAnswer(status: .contentTooLarge, message: reason.message, close: true)
        case .connectionLost:
            // The client went away mid-request: like a channel without a client, worth a retry once it is back.
            ErrorAnswer(status: .serviceUnavailable, message: reason.message, retryAfter: "5")
        case .tooManyStreams:
            ErrorAnswer(status: .tooManyRequests, message: reason.message, retryAfter: "1")
        default:
            ErrorAnswer(status: .badGateway, message: reason.message)
        }
    }

    /// The channel's tunnel could not take a new stream (it is closing).
    static let reconnecting = ErrorAnswer(
        status: .serviceUnavailable,
        message: "the channel's client is reconnecting",
        retryAfter: "5"
    )

    var body: ByteBuffer { ErrorBody.json(self.message) }

    func head(bodyLength: Int) -> HTTPResponse {
        var headers: HTTPFields = [.contentType: "application/json", .contentLength: "\(bodyLength)"]
        if let retryAfter { headers[.retryAfter] = retryAfter }
        if self.close { headers[.connection] = "close" }
        return HTTPResponse(status: self.status, headerFields: headers)
    }
}
