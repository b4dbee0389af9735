import NIOCore
import NIOHTTP1
import TunnelProtocol

/// Serves a request that asks for an upgrade this server does not do as plain HTTP/1.1.
///
/// Only `Upgrade: websocket` on `/ws/{id}` is an upgrade here. Anything else (`h2c`, which
/// `curl --http2` offers on plain http, `example/1`, or a WebSocket upgrade of another path) is
/// ignored the way nginx and Go ignore it: `Upgrade` and `HTTP2-Settings` are taken off the head
/// with their `Connection` tokens, so neither NIO's upgrade handler nor the local app ever sees
/// them, and the request is answered as HTTP/1.1 (docs/operations.md, "Limits").
///
/// NIO's parser stops reading a connection after any head it took for an upgrade, so the
/// connection cannot carry another request: the answer says `Connection: close` and the
/// connection is closed once it is written.
final class ForeignUpgradeFilter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Names dropped with a foreign upgrade (lowercased, as `Connection` tokens are compared).
    static let upgradeFields: Set<String> = ["upgrade", "http2-settings"]

    /// A foreign upgrade was dropped from the request being answered.
    private var closeAfterResponse = false

    /// Whether `head` is the one upgrade this server does: a WebSocket on `/ws/...`.
    static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        guard head.uri.hasPrefix("/ws/") else { return false }
        return head.headers["upgrade"].contains { value in
            value.split(separator: ",").contains { $0.trimmingOptionalWhitespace().equalsASCIICaseInsensitive("websocket") }
        }
    }

    /// `head` without a foreign upgrade, or `nil` when it asks for none (or for the WebSocket one).
    static func withoutForeignUpgrade(_ head: HTTPRequestHead) -> HTTPRequestHead? {
        guard head.headers.contains(name: "upgrade"), !Self.isWebSocketUpgrade(head) else { return nil }
        var head = head
        var connection: [String] = []
        for value in head.headers["connection"] {
            for token in value.split(separator: ",") {
                let trimmed = String(token.trimmingOptionalWhitespace())
                if !trimmed.isEmpty, !Self.upgradeFields.contains(trimmed.lowercased()) { connection.append(trimmed) }
            }
        }
        head.headers.remove(name: "connection")
        for name in Self.upgradeFields { head.headers.remove(name: name) }
        if !connection.isEmpty { head.headers.add(name: "Connection", value: connection.joined(separator: ", ")) }
        return head
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), let plain = Self.withoutForeignUpgrade(head) {
            self.closeAfterResponse = true
            context.fireChannelRead(wrapInboundOut(.head(plain)))
            return
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard self.closeAfterResponse else {
            context.write(data, promise: promise)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.code >= 200:
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            let written = promise ?? context.eventLoop.makePromise()
            context.write(data, promise: written)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
        default:
            context.write(data, promise: promise)
        }
    }
}
