import NIOCore
import NIOHTTP1

/// An error answer written by a channel handler, below the router, just before it closes the
/// connection (oversized head, a head that never completed): a JSON body like every other error, and
/// `Connection: close`.
enum ConnectionErrorResponse {
    static func write(_ status: HTTPResponseStatus, _ message: String, context: ChannelHandlerContext) {
        let body = ErrorBody.json(message)
        let headers = HTTPHeaders([
            ("Connection", "close"), ("Content-Type", "application/json"), ("Content-Length", "\(body.readableBytes)"),
        ])
        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
    }
}
