import NIOCore
import NIOHTTP1
import NIOSSL
import NIOWebSocket
import Testing
import TunnelProtocol
import TunnelTransport

@testable import RelayClient

/// The client's own WebSocket connection, against a NIO WebSocket server on loopback.
@Suite("The client's WebSocket to the server")
struct TunnelClientConnectionTests {
    @Test("The upgrade offers the v2 subprotocol with the caller's headers and the Host header")
    func upgradeHeaders() async throws {
        try await ClientUnderTest.run(targetURL: "http://127.0.0.1:9") { peer, _, _ in
            #expect(peer.requestHeaders["Sec-WebSocket-Protocol"] == ["webhook-over-websocket.v2"])
            #expect(peer.requestHeaders["Authorization"] == ["Bearer test-token"])
            #expect(peer.requestHeaders["Host"].first?.hasPrefix("127.0.0.1:") == true)
        }
    }

    @Test("The server's close frame ends the session with its code and reason")
    func closedByServer() async throws {
        try await ClientUnderTest.run(targetURL: "http://127.0.0.1:9") { peer, _, session in
            try await peer.sendClose(.goingAway, reason: "server shutting down")
            // The client echoes the close; the server then hangs up.
            var echo: WebSocketFrame?
            while let frame = await peer.nextWebSocketFrame() {
                if frame.opcode == .connectionClose {
                    echo = frame
                    break
                }
            }
            var data = try #require(echo).unmaskedData
            #expect(data.readWebSocketErrorCode() == .goingAway)
            try? await peer.channel.close()
            let end = await session.run()
            #expect(end == .closedByServer(.goingAway, reason: "server shutting down"))
            #expect(end.description == "closed by the server (goingAway: server shutting down)")
        }
    }

    @Test("Cancelling the session (Ctrl-C) closes the WebSocket going away, and the session ends")
    func cancellationClosesTheWebSocket() async throws {
        try await ClientUnderTest.run(targetURL: "http://127.0.0.1:9") { peer, _, session in
            let running = Task { await session.run() }
            running.cancel()
            var close: WebSocketFrame?
            while let frame = await peer.nextWebSocketFrame() {
                if frame.opcode == .connectionClose {
                    close = frame
                    break
                }
            }
            var data = try #require(close).unmaskedData
            #expect(data.readWebSocketErrorCode() == .goingAway)
            try? await peer.channel.close()
            if case .closedByClient = await running.value {} else { Issue.record("the session should end as closed by the client") }
        }
    }

    @Test("A server that breaks the protocol gets a protocol-error close, and the session ends on the client's word")
    func protocolErrorClosesTheConnection() async throws {
        try await ClientUnderTest.run(targetURL: "http://127.0.0.1:9") { peer, _, session in
            // RESPONSE_HEAD sent to the client.
            try await peer.channel.writeAndFlush(
                WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: [0x02, 0, 0, 0, 0, 1, 0, 200, 0, 0]))
            )
            .get()
            var close: WebSocketFrame?
            while let frame = await peer.nextWebSocketFrame() {
                if frame.opcode == .connectionClose {
                    close = frame
                    break
                }
            }
            var data = try #require(close).unmaskedData
            #expect(data.readWebSocketErrorCode() == .protocolError)
            try await peer.sendClose(.protocolError, reason: "")
            if case .closedByClient = await session.run() {} else { Issue.record("the session should end as closed by the client") }
        }
    }

    @Test("A refused upgrade is an error, so the reconnect loop asks the server why")
    func refusedUpgrade() async throws {
        let relay = try await FakeRelay.start(refuseWith: .conflict)
        let connection = try TunnelClientConnection(url: relay.url, headers: [:], tlsConfiguration: .makeClientConfiguration())
        await #expect(throws: TunnelClientConnection.UpgradeRefused.self) {
            _ = try await connection.open(onConnected: { Issue.record("not connected") }, acceptor: { _ in { _, _, _, _ in nil } })
        }
        await relay.stop()
    }

    @Test("wss:// goes over TLS: verified by host name against trusted roots, or not verified at all with --insecure")
    func tls() async throws {
        let certificate = try NIOSSLCertificate(bytes: Array(TestCertificate.certificate.utf8), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array(TestCertificate.privateKey.utf8), format: .pem)
        let relay = try await FakeRelay.start(
            tls: .makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(key))
        )
        var connections = relay.connections.makeAsyncIterator()
        let noStreams: @Sendable (any EventLoop) -> TunnelHandler.Acceptor = { _ in { _, _, _, _ in nil } }

        var trusting = TLSConfiguration.makeClientConfiguration()
        trusting.trustRoots = .certificates([certificate])
        let verified = try await TunnelClientConnection(url: "wss://localhost:\(relay.port)/ws/x", headers: [:], tlsConfiguration: trusting)
            .open(onConnected: {}, acceptor: noStreams)
        #expect(await connections.next()?.requestHeaders["Host"] == ["localhost:\(relay.port)"])
        try await verified.channel.close()

        var insecure = TLSConfiguration.makeClientConfiguration()
        insecure.certificateVerification = .none
        let unverified = try await TunnelClientConnection(url: "wss://127.0.0.1:\(relay.port)/ws/x", headers: [:], tlsConfiguration: insecure)
            .open(onConnected: {}, acceptor: noStreams)
        #expect(await connections.next() != nil)
        try await unverified.channel.close()

        // The system's roots do not know a self-signed certificate.
        await #expect(throws: (any Error).self) {
            _ = try await TunnelClientConnection(
                url: "wss://localhost:\(relay.port)/ws/x",
                headers: [:],
                tlsConfiguration: .makeClientConfiguration()
            )
            .open(onConnected: {}, acceptor: noStreams)
        }
        await relay.stop()
    }

    @Test("A server that does not listen is an error")
    func nothingListening() async throws {
        let port = try await ClientUnderTest.closedPort()
        let connection = try TunnelClientConnection(url: "ws://127.0.0.1:\(port)/ws/x", headers: [:], tlsConfiguration: .makeClientConfiguration())
        await #expect(throws: (any Error).self) {
            _ = try await connection.open(onConnected: {}, acceptor: { _ in { _, _, _, _ in nil } })
        }
    }

    @Test("Server URLs give the host, port, request target, TLS and SNI")
    func endpoints() throws {
        let plain = try TunnelClientConnection.Endpoint(url: "ws://relay.example:8080/ws/abc")
        #expect(plain == .init(host: "relay.example", port: 8080, target: "/ws/abc", usesTLS: false))
        #expect(plain.hostHeader == "relay.example:8080")

        let secure = try TunnelClientConnection.Endpoint(url: "wss://relay.example/base/ws/abc?x=1")
        #expect(secure == .init(host: "relay.example", port: 443, target: "/base/ws/abc?x=1", usesTLS: true))
        #expect(secure.hostHeader == "relay.example")
        #expect(secure.serverNameIndication == "relay.example")

        #expect(try TunnelClientConnection.Endpoint(url: "wss://127.0.0.1:8443/ws/a").serverNameIndication == nil)
        let v6 = try TunnelClientConnection.Endpoint(url: "ws://[::1]:8080/ws/a")
        #expect(v6.host == "::1")
        #expect(v6.hostHeader == "[::1]:8080")
        #expect(throws: TunnelClientConnection.InvalidServerURL.self) { try TunnelClientConnection.Endpoint(url: "ftp://x/ws/a") }
    }
}
