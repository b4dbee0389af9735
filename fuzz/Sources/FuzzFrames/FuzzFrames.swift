import FuzzSupport
import HTTPTypes
import NIOCore
import TunnelProtocol

/// libFuzzer target: v2 frames from a hostile peer, on both sides.
///
/// The input is a sequence of WebSocket binary messages (see `splitMessages`),
/// fed exactly as the relay does it:
/// - the client (`RelayClient`): an acceptor multiplexer gets every message
///   until `receive` throws, which closes the connection;
/// - the server (`ChannelGate.runMultiplexed`): an opener multiplexer with
///   webhooks in flight (streams 1, 3 and 5 open) gets every message until
///   `receive` throws.
/// Then each side shuts down as it does when the WebSocket ends. Decoded heads
/// go through what the relay does next with them synchronously (the hop-by-hop
/// filter, the response status). Decoders may throw; any trap is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let messages = splitMessages(inputBytes(data, size)).map { ByteBuffer(bytes: $0) }

    let client = StreamMultiplexer(role: .acceptor) { _ in }
    var accepted: [StreamMultiplexer.IncomingStream] = []
    for message in messages {
        let incoming: StreamMultiplexer.IncomingStream?
        do {
            incoming = try client.receive(message)
        } catch {
            break
        }
        if let incoming {
            _ = incoming.head.headerFields.endToEnd
            _ = incoming.head.headerFields[.contentLength].flatMap(Int.init)
            accepted.append(incoming)
        }
    }
    client.shutdown(StreamResetReason(.connectionLost, "fuzz: connection closed"))

    // A small window so a few DATA frames can overrun it (the server's window is a flag).
    let server = StreamMultiplexer(role: .opener, configuration: .init(initialWindow: 64, maxDataChunk: 64, maxOpenStreams: 8)) { _ in }
    let opened = (0..<3).compactMap { _ in try? server.openStream() }
    for message in messages {
        do {
            _ = try server.receive(message)
        } catch {
            break
        }
    }
    server.shutdown(StreamResetReason(.connectionLost, "fuzz: client disconnected"))

    withExtendedLifetime((accepted, opened)) {}
    return 0
}
