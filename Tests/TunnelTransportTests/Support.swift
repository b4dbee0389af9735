import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOWebSocket
import TunnelProtocol
import TunnelTransport

/// A stream owner that writes down every call it gets, in order.
final class RecordingOwner: TunnelStreamDelegate {
    enum Event: Equatable {
        case responseHead(status: Int, endStream: Bool)
        case data(String, endStream: Bool)
        case end
        case credit
        case closed(StreamResetReason?)
    }

    private(set) var events: [Event] = []
    /// Called after each part is recorded (the owner's reaction, if the test wants one).
    var onPart: ((UInt32, StreamPart) -> Void)?

    var closes: [StreamResetReason?] {
        self.events.compactMap { event in
            if case .closed(let reason) = event { return .some(reason) }
            return nil
        }
    }

    func tunnelStream(_ id: UInt32, didReceive part: StreamPart) {
        switch part {
        case .responseHead(let head, let endStream): self.events.append(.responseHead(status: head.status, endStream: endStream))
        case .data(let buffer, let endStream): self.events.append(.data(String(buffer: buffer), endStream: endStream))
        case .end: self.events.append(.end)
        }
        self.onPart?(id, part)
    }

    func tunnelStreamDidGainCredit(_ id: UInt32) {
        self.events.append(.credit)
    }

    func tunnelStream(_ id: UInt32, didCloseWith reason: StreamResetReason?) {
        self.events.append(.closed(reason))
    }
}

/// A v2 frame as a test compares it.
enum Sent: Equatable {
    case requestHead(UInt32, method: String, endStream: Bool)
    case responseHead(UInt32, status: Int, endStream: Bool)
    case data(UInt32, count: Int, endStream: Bool)
    case end(UInt32)
    case reset(UInt32, StreamResetReason)
    case windowUpdate(UInt32, UInt32)

    init(_ frame: Frame) throws {
        let id = frame.streamID
        let endStream = frame.flags.contains(.endStream)
        switch frame.type {
        case .requestHead: self = .requestHead(id, method: try RequestHead(decoding: frame.payload).method, endStream: endStream)
        case .responseHead: self = .responseHead(id, status: try ResponseHead(decoding: frame.payload).status, endStream: endStream)
        case .data: self = .data(id, count: frame.payload.readableBytes, endStream: endStream)
        case .end: self = .end(id)
        case .reset: self = .reset(id, try StreamResetReason(decoding: frame.payload))
        case .windowUpdate:
            var payload = frame.payload
            self = .windowUpdate(id, payload.readInteger() ?? 0)
        }
    }
}

extension WebSocketFrame {
    /// A v2 frame as a peer sends it: one unmasked binary message.
    init(_ frame: Frame) {
        self.init(fin: true, opcode: .binary, data: frame.encoded())
    }

    /// What the other end's decoder sees of a frame the handler wrote: NIO's encoder sends the
    /// extension data (the v2 header of a DATA frame) and the data as one payload. The handler's
    /// frames are not masked yet (the encoder masks them), so the bytes are read as they are.
    var onTheWire: WebSocketFrame {
        var payload = self.extensionData ?? ByteBuffer()
        var data = self.data
        payload.writeBuffer(&data)
        return WebSocketFrame(fin: self.fin, opcode: self.opcode, data: payload)
    }

    /// The v2 frame this binary message carries.
    func tunnelFrame() throws -> Frame {
        try Frame(decoding: self.onTheWire.data)
    }
}

/// A ``TunnelHandler`` on an `EmbeddedChannel`, the way NIO's WebSocket codec feeds it.
struct Harness {
    let channel: EmbeddedChannel
    let handler: TunnelHandler

    static let noPings = TunnelHandler.Settings(pingInterval: nil, masksFrames: false)

    init(
        role: MultiplexerStateMachine.Role,
        configuration: TunnelConfiguration = .init(),
        settings: TunnelHandler.Settings = Harness.noPings,
        acceptor: TunnelHandler.Acceptor? = nil,
        onClose: @escaping (StreamResetReason) -> Void = { _ in }
    ) throws {
        self.handler = TunnelHandler(role: role, configuration: configuration, settings: settings, acceptor: acceptor, onClose: onClose)
        self.channel = EmbeddedChannel(handler: self.handler)
        try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
    }

    var loop: EmbeddedEventLoop { self.channel.embeddedEventLoop }

    /// Delivers one message from the peer (a read and its read-complete).
    func receive(_ frame: Frame) throws {
        try self.channel.writeInbound(WebSocketFrame(frame))
    }

    func receive(_ frame: WebSocketFrame) throws {
        try self.channel.writeInbound(frame)
    }

    /// Every message the handler wrote and flushed so far, after the loop ran its pending tasks.
    func written() throws -> [WebSocketFrame] {
        self.loop.run()
        var frames: [WebSocketFrame] = []
        while let frame = try self.channel.readOutbound(as: WebSocketFrame.self) { frames.append(frame) }
        return frames
    }

    /// The v2 frames among ``written()``.
    func sent() throws -> [Sent] {
        try self.written().filter { $0.opcode == .binary }.map { try Sent($0.tunnelFrame()) }
    }

    /// Opens a stream (opener side) owned by `owner` and sends its request head.
    func openStream(_ owner: RecordingOwner, endStream: Bool = false) throws -> UInt32 {
        let id = try self.handler.openStream(owner: owner)
        self.handler.writeHead(RequestHead(method: "POST", target: "/hook", headerFields: [:]), endStream: endStream, on: id)
        return id
    }
}

/// Frames a peer sends.
enum Peer {
    static func requestHead(_ id: UInt32, endStream: Bool = false) throws -> Frame {
        var payload = ByteBuffer()
        try RequestHead(method: "POST", target: "/hook", headerFields: [.contentType: "application/json"]).encode(into: &payload)
        return Frame(type: .requestHead, flags: endStream ? .endStream : [], streamID: id, payload: payload)
    }

    static func responseHead(_ id: UInt32, status: Int = 200, endStream: Bool = false) throws -> Frame {
        var payload = ByteBuffer()
        try ResponseHead(status: status, headerFields: [:]).encode(into: &payload)
        return Frame(type: .responseHead, flags: endStream ? .endStream : [], streamID: id, payload: payload)
    }

    static func data(_ id: UInt32, _ text: String, endStream: Bool = false) -> Frame {
        Frame(type: .data, flags: endStream ? .endStream : [], streamID: id, payload: ByteBuffer(string: text))
    }

    static func end(_ id: UInt32) -> Frame {
        Frame(type: .end, streamID: id)
    }

    static func reset(_ id: UInt32, _ reason: StreamResetReason) -> Frame {
        var payload = ByteBuffer()
        reason.encode(into: &payload)
        return Frame(type: .reset, streamID: id, payload: payload)
    }

    static func windowUpdate(_ id: UInt32, _ increment: UInt32) -> Frame {
        var payload = ByteBuffer()
        payload.writeInteger(increment)
        return Frame(type: .windowUpdate, streamID: id, payload: payload)
    }

    static func close(_ code: WebSocketErrorCode) -> WebSocketFrame {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: code)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
    }
}

extension WebSocketFrame {
    /// The status code of a close frame.
    var closeCode: WebSocketErrorCode? {
        var data = self.data
        return data.readWebSocketErrorCode()
    }
}
