import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import TunnelProtocol

/// NIO's HTTP/1 request parts as HTTP types for Hummingbird, and the answer's parts back: what
/// swift-nio-extras' `HTTP1ToHTTPServerCodec` does, without its cost per request.
/// ``WebhookChannelHandler``, ahead of it, converts the heads of the webhooks it takes with
/// ``request(_:)``.
///
/// That codec parses every request target with Foundation's `URLComponents`, only to find the path
/// of an absolute-form target (`http://host/path`), and lower-cases every header name to find
/// `Host`: 2–3 % of the server's CPU per small webhook (docs/performance.md). Here an origin-form
/// target (`/...`: every webhook, every browser request) is taken as it is, which is what the
/// extras' conversion makes of it too, and `Host` is matched without a copy. Any other target goes
/// through the extras' conversion, so both give the same request for every head.
final class HTTPServerTypesCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// `head` as an HTTP-types request on a plain-HTTP connection, the first `Host` as its authority.
    static func request(_ head: HTTPRequestHead) throws -> HTTPRequest {
        guard head.uri.utf8.first == UInt8(ascii: "/") else {
            return try HTTPRequest(head, secure: false, splitCookie: false)
        }
        let method = try HTTPRequest.Method(head.method)
        var authority: String?
        var list: [HTTPField] = []
        list.reserveCapacity(head.headers.count)
        for (name, value) in head.headers {
            if authority == nil, Self.isHost(name) {
                authority = value
                continue
            }
            // A name that is not a valid token is left out, as the extras' conversion does.
            guard let fieldName = HTTPField.Name(name) else { continue }
            list.append(HTTPField(name: fieldName, value: value))
        }
        return HTTPRequest(method: method, scheme: "http", authority: authority, path: head.uri, headerFields: HTTPFields.from(list))
    }

    /// Whether `name` is `Host` in any case, compared as bytes.
    static func isHost(_ name: String) -> Bool {
        name.equalsASCIICaseInsensitive("host")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            do {
                context.fireChannelRead(self.wrapInboundOut(.head(try Self.request(head))))
            } catch {
                context.fireErrorCaught(error)
            }
        case .body(let body):
            context.fireChannelRead(self.wrapInboundOut(.body(body)))
        case .end(let trailers):
            context.fireChannelRead(self.wrapInboundOut(.end(trailers.map { HTTPFields($0, splitCookie: false) })))
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(let response):
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(response))), promise: promise)
        case .body(let body):
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: promise)
        case .end(let trailers):
            context.write(self.wrapOutboundOut(.end(trailers.map(HTTPHeaders.init))), promise: promise)
        }
    }
}
