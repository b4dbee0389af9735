import NIOCore
import NIOEmbedded
import NIOSSL
import NIOWebSocket
import Testing
import TunnelProtocol
import TunnelTransport

@testable import RelayClient

/// Who ended a session, told from the close handshake as it passes ``TunnelSessionEndRecorder``
/// in front of a real ``TunnelHandler`` on an `EmbeddedChannel`.
@Suite("How a session ended")
struct TunnelSessionEndRecorderTests {
    /// A client-side tunnel pipeline, and the future its end completes.
    private static func pipeline() throws -> (EmbeddedChannel, EventLoopFuture<TunnelSessionEnd>, TunnelHandler) {
        let channel = EmbeddedChannel()
        let ended = channel.eventLoop.makePromise(of: TunnelSessionEnd.self)
        let recorder = TunnelSessionEndRecorder(ended: ended)
        let tunnel = TunnelHandler(
            role: .acceptor,
            settings: .init(pingInterval: nil, masksFrames: true),
            acceptor: { _, _, _, _ in nil },
            onClose: { recorder.tunnelClosed($0) }
        )
        try channel.pipeline.syncOperations.addHandlers([recorder, tunnel])
        return (channel, ended.futureResult, tunnel)
    }

    private static func value(of future: EventLoopFuture<TunnelSessionEnd>) -> TunnelSessionEnd? {
        var value: TunnelSessionEnd?
        future.assumeIsolated().whenSuccess { value = $0 }
        return value
    }

    private static func closeFrame(_ code: WebSocketErrorCode, _ reason: String) -> WebSocketFrame {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
    }

    @Test("A close frame from the server first: closed by the server, with its code and reason")
    func serverFirst() throws {
        let (channel, ended, _) = try Self.pipeline()
        try channel.writeInbound(Self.closeFrame(.goingAway, "server shutting down"))
        channel.embeddedEventLoop.run()
        // The handler echoed the close (and hangs up, or waits for the server to).
        let echo = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(echo.opcode == .connectionClose)
        try? channel.close().wait()
        #expect(Self.value(of: ended) == .closedByServer(.goingAway, reason: "server shutting down"))
    }

    @Test("The client's close frame first (a protocol error): closed by the client, with the handler's reason")
    func clientFirst() throws {
        let (channel, ended, _) = try Self.pipeline()
        // RESPONSE_HEAD sent to the client breaks the protocol.
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: [0x02, 0, 0, 0, 0, 1, 0, 200, 0, 0])))
        channel.embeddedEventLoop.run()
        let close = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(close.opcode == .connectionClose)
        // The server's echo does not make it the server's doing.
        try channel.writeInbound(Self.closeFrame(.protocolError, ""))
        try? channel.close().wait()
        guard case .closedByClient(let reason) = Self.value(of: ended) else {
            Issue.record("expected closed by the client, got \(String(describing: Self.value(of: ended)))")
            return
        }
        #expect(!reason.isEmpty)
    }

    @Test("No close frame either way: the connection dropped")
    func dropped() throws {
        let (channel, ended, _) = try Self.pipeline()
        channel.pipeline.fireChannelInactive()
        #expect(Self.value(of: ended) == .dropped)
        #expect(TunnelSessionEnd.dropped.description == "connection closed")
        _ = try? channel.finish()
    }

    @Test("A TLS peer that hangs up without close_notify is a dropped connection, not a protocol error")
    func uncleanTLSShutdown() throws {
        let (channel, ended, _) = try Self.pipeline()
        channel.pipeline.fireErrorCaught(NIOSSLError.uncleanShutdown)
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
        channel.pipeline.fireChannelInactive()
        #expect(Self.value(of: ended) == .dropped)
        _ = try? channel.finish()
    }
}
