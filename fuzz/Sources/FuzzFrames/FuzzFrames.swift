import FuzzSupport
import HTTPTypes
import NIOCore
import TunnelProtocol

/// libFuzzer target: v2 frames from a hostile peer, on both sides.
///
/// The input is a sequence of WebSocket binary messages (see `splitMessages`),
/// fed to `MultiplexerStateMachine` exactly as `TunnelHandler` does it:
/// - the client: an acceptor machine gets every message until decoding or
///   `receive` throws, which closes the connection; it answers what it
///   accepts (a head, some body, the end) and consumes what it is given, so
///   the send and credit paths run too;
/// - the server: an opener machine with webhooks in flight (streams 1, 3 and 5
///   open, their request heads sent) gets every message until decoding or
///   `receive` throws, and consumes and writes as far as its window allows.
/// Both use a small window, so a few DATA frames overrun it. Then each side
/// ends the connection (`closeConnection`) as when the WebSocket ends, and the
/// machine must refuse new streams. Decoded heads go through what the relay
/// does next with them synchronously (the hop-by-hop filter, the response
/// status). Decoders may throw; any trap is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let messages = splitMessages(inputBytes(data, size)).map { ByteBuffer(bytes: $0) }
    let configuration = TunnelConfiguration(initialWindow: 64, maxDataChunk: 16, maxOpenStreams: 8)

    var client = MultiplexerStateMachine(role: .acceptor, configuration: configuration)
    for message in messages {
        let action: MultiplexerStateMachine.ReceiveAction
        do {
            action = try client.receive(Frame(decoding: message))
        } catch {
            break
        }
        switch action {
        case .open(let id, let head, let endStream):
            _ = head.headerFields.endToEnd
            _ = head.headerFields[.contentLength].flatMap(Int.init)
            // Answer at once, as a client whose local app is fast: a head with a body to come.
            _ = client.sendHead(on: id, endStream: false)
            if endStream { _ = client.sendEnd(on: id) }
        case .deliver(let id, let part, _):
            if case .data(let buffer, _) = part { _ = client.consume(buffer.readableBytes, on: id) }
        case .credit(let id):
            let window = client.sendWindow(id)
            if window > 0 { _ = client.sendData(on: id, count: min(window, configuration.maxDataChunk), endStream: false) }
        case .resetByPeer, .resetStream, .ignore:
            break
        }
    }
    let clientStreams = client.closeConnection(StreamResetReason(.connectionLost, "fuzz: connection closed"))
    precondition(client.openStreamCount == 0 && clientStreams.allSatisfy { $0 & 1 == 1 })
    precondition(client.closeConnection(StreamResetReason(.connectionLost, "again")).isEmpty)

    var server = MultiplexerStateMachine(role: .opener, configuration: configuration)
    for _ in 0..<3 {
        guard let id = try? server.openStream() else { break }
        _ = server.sendHead(on: id, endStream: false)
    }
    for message in messages {
        let action: MultiplexerStateMachine.ReceiveAction
        do {
            action = try server.receive(Frame(decoding: message))
        } catch {
            break
        }
        switch action {
        case .deliver(let id, .responseHead(let head, _), _):
            _ = head.status
            _ = head.headerFields.endToEnd
            // The request body: what the window allows, ending it.
            let window = server.sendWindow(id)
            if window > 0 { _ = server.sendData(on: id, count: min(window, configuration.maxDataChunk), endStream: true) }
        case .deliver(let id, .data(let buffer, _), _):
            _ = server.consume(buffer.readableBytes, on: id)
        case .credit(let id):
            if server.isOpen(id) { _ = server.resetStream(id) }
        case .open, .deliver, .resetByPeer, .resetStream, .ignore:
            break
        }
    }
    _ = server.closeConnection(StreamResetReason(.connectionLost, "fuzz: client disconnected"))
    precondition(server.openStreamCount == 0)
    precondition((try? server.openStream()) == nil)
    return 0
}
