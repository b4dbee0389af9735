public import NIOCore
public import NIOWebSocket
public import TunnelProtocol

/// Runs the v2 tunnel on a WebSocket channel, on its event loop: decodes frames, performs what
/// ``MultiplexerStateMachine`` decides, and writes frames for the streams' owners.
///
/// It sits after NIO's WebSocket codec and ``NIOWebSocketFrameAggregator`` and is the whole
/// connection: it answers pings, sends its own on a timer of the loop (no task while idle), and runs
/// the close handshake. Stream owners (``TunnelStreamDelegate``) live on the same loop; other code
/// reaches the handler through ``TunnelConnection``, which hops there.
///
/// Writes are not flushed one by one. During a read they are flushed at `channelReadComplete`;
/// otherwise the first write of a loop tick schedules one flush at its end, so the frames of a
/// webhook written together (head, body, END_STREAM) leave in one `writev`.
/// docs/architecture.md describes one webhook's path through it.
public final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = WebSocketFrame
    public typealias OutboundIn = Never
    public typealias OutboundOut = WebSocketFrame

    /// Called for each stream the peer opens (acceptor side); returns its owner, or nil to refuse it
    /// (the stream is reset).
    public typealias Acceptor = (TunnelHandler, UInt32, RequestHead, _ endStream: Bool) -> (any TunnelStreamDelegate)?

    public struct Settings: Sendable {
        /// Send a ping this often and close the connection when a ping is still unanswered at the
        /// next one (nil: no pings of our own).
        public var pingInterval: TimeAmount?
        /// How long to wait for the peer's close frame after sending ours.
        public var closeTimeout: TimeAmount
        /// Clients mask their frames (RFC 6455 §5.3); servers do not.
        public var masksFrames: Bool

        public init(pingInterval: TimeAmount? = .seconds(15), closeTimeout: TimeAmount = .seconds(5), masksFrames: Bool) {
            self.pingInterval = pingInterval
            self.closeTimeout = closeTimeout
            self.masksFrames = masksFrames
        }
    }

    /// Body bytes an owner wrote that wait for window, with whether the body ends after them.
    private struct PendingBody {
        var chunks: CircularBuffer<ByteBuffer> = []
        var endStream = false
        var isEmpty: Bool { self.chunks.isEmpty && !self.endStream }
    }

    private var machine: MultiplexerStateMachine
    private let settings: Settings
    private let acceptor: Acceptor?
    private let onClose: (StreamResetReason) -> Void
    private var owners: [UInt32: any TunnelStreamDelegate] = [:]
    private var pending: [UInt32: PendingBody] = [:]
    private var context: ChannelHandlerContext?
    /// The stream whose acceptor is running, and how it ended if it did meanwhile.
    private var accepting: UInt32?
    private var endedWhileAccepting: StreamResetReason??

    private var inRead = false
    private var maskingKeys = MaskingKeyGenerator()
    private var needsFlush = false
    private var flushScheduled = false
    private var pingTask: RepeatedTask?
    private var awaitingPong = false
    private var closeSent = false
    private var closeReason: String?

    /// - Parameters:
    ///   - onClose: called once when the connection has ended, after every stream's owner was told.
    public init(
        role: MultiplexerStateMachine.Role,
        configuration: TunnelConfiguration = .init(),
        settings: Settings,
        acceptor: Acceptor? = nil,
        onClose: @escaping (StreamResetReason) -> Void = { _ in }
    ) {
        self.machine = MultiplexerStateMachine(role: role, configuration: configuration)
        self.settings = settings
        self.acceptor = acceptor
        self.onClose = onClose
    }

    /// Streams open now.
    public var openStreamCount: Int { self.machine.openStreamCount }

    /// Whether `id` is still open.
    public func isOpen(_ id: UInt32) -> Bool { self.machine.isOpen(id) }

    /// The connection's limits.
    public var configuration: TunnelConfiguration { self.machine.configuration }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { self.schedulePing(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        self.schedulePing(context: context)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.connectionEnded(StreamResetReason(.connectionLost, "the tunnel connection was lost"))
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        self.connectionEnded(StreamResetReason(.connectionLost, self.closeReason ?? "the tunnel connection was lost"))
        context.fireChannelInactive()
    }

    /// The peer closed its side (the server's listener allows half-closure, so a FIN arrives as an
    /// event rather than as the end of the channel): a WebSocket has nothing more to say, so it ends.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            self.closeReason = self.closeReason ?? "the peer closed the connection"
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.closeReason = "\(error)"
        self.fail(code: .protocolError, reason: "protocol error")
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        self.inRead = true
        switch frame.opcode {
        case .binary:
            do {
                let decoded = try Frame(decoding: frame.unmaskedData)
                try self.perform(self.machine.receive(decoded))
            } catch {
                self.closeReason = "\(error)"
                self.fail(code: .protocolError, reason: "protocol error")
            }
        case .ping:
            self.send(WebSocketFrame(fin: true, opcode: .pong, maskKey: self.maskKey(), data: frame.unmaskedData))
        case .pong:
            self.awaitingPong = false
        case .connectionClose:
            if self.closeSent {
                context.close(promise: nil)
            } else {
                // Echo the peer's code, then hang up (RFC 6455 §5.5.1).
                var data = frame.unmaskedData
                let code = data.readWebSocketErrorCode() ?? .normalClosure
                self.closeReason = "closed by the peer (\(code))"
                self.sendClose(code: code, reason: nil, hangUp: true)
            }
        case .text:
            self.closeReason = "a text message on a v2 connection"
            self.fail(code: .protocolError, reason: "protocol error")
        default:
            break
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        self.inRead = false
        if self.needsFlush {
            self.needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    // MARK: Performing the state machine's decisions

    private func perform(_ action: MultiplexerStateMachine.ReceiveAction) {
        switch action {
        case .open(let id, let head, let endStream):
            self.accepting = id
            let made = self.acceptor?(self, id, head, endStream)
            self.accepting = nil
            let endedWhileAccepting = self.endedWhileAccepting
            self.endedWhileAccepting = nil
            guard let owner = made else {
                self.reset(id, StreamResetReason(.cancelled, "the client refused the stream"))
                return
            }
            if self.machine.isOpen(id) {
                self.owners[id] = owner
            } else if case .some(let reason) = endedWhileAccepting {
                // The owner ended the stream while being made (answered it whole, or reset it): it is
                // told like any owner, once.
                owner.tunnelStream(id, didCloseWith: reason)
            }
        case .deliver(let id, let part, let closesStream):
            guard let owner = self.owners[id] else { return }
            owner.tunnelStream(id, didReceive: part)
            if closesStream { self.streamEnded(id, reason: nil) }
        case .credit(let id):
            self.drainPending(id)
        case .resetByPeer(let id, let reason):
            self.streamEnded(id, reason: reason)
        case .resetStream(let id, let reason):
            self.writeFrame(Self.resetFrame(id, reason))
            self.streamEnded(id, reason: reason)
        case .ignore:
            break
        }
    }

    /// The one place a stream ends: its pending body is dropped and its owner told, once.
    private func streamEnded(_ id: UInt32, reason: StreamResetReason?) {
        self.pending[id] = nil
        guard let owner = self.owners.removeValue(forKey: id) else {
            if id == self.accepting { self.endedWhileAccepting = .some(reason) }
            return
        }
        owner.tunnelStream(id, didCloseWith: reason)
    }

    private func connectionEnded(_ reason: StreamResetReason) {
        guard self.machine.connectionClosedReason == nil else { return }
        self.pingTask?.cancel()
        self.pingTask = nil
        for id in self.machine.closeConnection(reason) {
            self.streamEnded(id, reason: reason)
        }
        // Owners registered for streams the machine no longer has cannot exist; this is belt and braces.
        for id in Array(self.owners.keys) { self.streamEnded(id, reason: reason) }
        self.onClose(reason)
    }

    // MARK: Streams (call on the event loop)

    /// Opens a stream owned by `owner` (opener side). Throws when the connection ended or too many
    /// streams are open.
    public func openStream(owner: any TunnelStreamDelegate) throws(StreamResetReason) -> UInt32 {
        let id = try self.machine.openStream()
        self.owners[id] = owner
        return id
    }

    /// Sends REQUEST_HEAD; false when the stream already ended.
    @discardableResult
    public func writeHead(_ head: RequestHead, endStream: Bool, on id: UInt32) -> Bool {
        var payload = Self.frameHeader(.requestHead, endStream ? .endStream : [], id)
        do {
            try head.encode(into: &payload)
        } catch {
            self.reset(id, StreamResetReason(.protocolError, "the request head cannot be encoded: \(error)"))
            return false
        }
        return self.sendHead(payload, endStream: endStream, on: id)
    }

    /// Sends RESPONSE_HEAD; false when the stream already ended.
    @discardableResult
    public func writeHead(_ head: ResponseHead, endStream: Bool, on id: UInt32) -> Bool {
        var payload = Self.frameHeader(.responseHead, endStream ? .endStream : [], id)
        do {
            try head.encode(into: &payload)
        } catch {
            self.reset(id, StreamResetReason(.protocolError, "the response head cannot be encoded: \(error)"))
            return false
        }
        return self.sendHead(payload, endStream: endStream, on: id)
    }

    private func sendHead(_ payload: ByteBuffer, endStream: Bool, on id: UInt32) -> Bool {
        switch self.machine.sendHead(on: id, endStream: endStream) {
        case .drop:
            return false
        case .send:
            self.writeFrame(payload)
        case .sendClosing:
            self.writeFrame(payload)
            self.streamEnded(id, reason: nil)
        }
        return true
    }

    /// Writes body bytes (any size; they go out as DATA frames of at most the chunk size, as the
    /// peer's window allows) and, with `endStream`, ends the body. Returns whether the producer may
    /// go on: false when bytes wait for window, in which case it should stop reading until
    /// ``TunnelStreamDelegate/tunnelStreamDidGainCredit(_:)``. Bytes for a stream that ended are dropped.
    @discardableResult
    public func writeBody(_ buffer: ByteBuffer, endStream: Bool, on id: UInt32) -> Bool {
        guard self.machine.isOpen(id) else { return true }
        var body = self.pending[id] ?? PendingBody()
        if buffer.readableBytes > 0 { body.chunks.append(buffer) }
        if endStream { body.endStream = true }
        self.pending[id] = body
        return self.drainPending(id, notify: false)
    }

    /// Sends what waits for `id` as far as the window allows; returns whether everything went.
    @discardableResult
    private func drainPending(_ id: UInt32, notify: Bool = true) -> Bool {
        guard var body = self.pending.removeValue(forKey: id) else {
            if notify, let owner = self.owners[id] { owner.tunnelStreamDidGainCredit(id) }
            return true
        }
        let maxChunk = self.machine.configuration.maxDataChunk
        while var chunk = body.chunks.first {
            let window = self.machine.sendWindow(id)
            guard window > 0 else { break }
            let size = min(chunk.readableBytes, window, maxChunk)
            let slice = chunk.readSlice(length: size)!
            if chunk.readableBytes == 0 {
                body.chunks.removeFirst()
            } else {
                body.chunks[body.chunks.startIndex] = chunk
            }
            let last = body.endStream && body.chunks.isEmpty
            switch self.machine.sendData(on: id, count: size, endStream: last) {
            case .drop:
                return true
            case .send:
                self.writeData(slice, endStream: last, on: id)
            case .sendClosing:
                self.writeData(slice, endStream: last, on: id)
                self.streamEnded(id, reason: nil)
                return true
            }
            if last { return true }
        }
        if body.chunks.isEmpty && body.endStream {
            switch self.machine.sendEnd(on: id) {
            case .drop: break
            case .send: self.writeFrame(Self.frameHeader(.end, [], id))
            case .sendClosing:
                self.writeFrame(Self.frameHeader(.end, [], id))
                self.streamEnded(id, reason: nil)
            }
            return true
        }
        if body.chunks.isEmpty {
            if notify, let owner = self.owners[id] { owner.tunnelStreamDidGainCredit(id) }
            return true
        }
        self.pending[id] = body
        return false
    }

    /// Body bytes written for `id` that still wait for window.
    public func pendingBytes(on id: UInt32) -> Int {
        self.pending[id]?.chunks.reduce(0) { $0 + $1.readableBytes } ?? 0
    }

    /// The owner took `count` received body bytes: credit goes back to the peer as it piles up.
    public func consume(_ count: Int, on id: UInt32) {
        guard let increment = self.machine.consume(count, on: id) else { return }
        self.writeWindowUpdate(increment, on: id)
    }

    /// The body coming on `id` declares `length` bytes (nil: unknown, chunked). If that is more than
    /// the initial window, the peer may send a widened window before waiting for credit
    /// (``MultiplexerStateMachine/widenReceiveWindow(on:)``); small bodies cost no extra frame.
    public func widenReceiveWindow(on id: UInt32, forBodyOf length: Int?) {
        if let length, length <= self.machine.configuration.initialWindow { return }
        guard let increment = self.machine.widenReceiveWindow(on: id) else { return }
        self.writeWindowUpdate(increment, on: id)
    }

    private func writeWindowUpdate(_ increment: UInt32, on id: UInt32) {
        var payload = Self.frameHeader(.windowUpdate, [], id)
        payload.writeInteger(increment)
        self.writeFrame(payload)
    }

    /// Abandons `id`: RESET goes to the peer if the stream was still open, and its owner is told
    /// (`didCloseWith` the reason), once. A no-op for a stream that already ended.
    public func reset(_ id: UInt32, _ reason: StreamResetReason) {
        guard self.machine.resetStream(id) else { return }
        self.writeFrame(Self.resetFrame(id, reason))
        self.streamEnded(id, reason: reason)
    }

    /// Fails the connection (RFC 6455 §7.1.7): a peer that broke the protocol gets the close frame and
    /// the TCP connection ends once it is written, without waiting for an echo a flooding or broken
    /// peer may never send, so its channel is free again at once.
    /// The client keeps the handshake (the server's answer tells it why); the server does not wait.
    func fail(code: WebSocketErrorCode, reason: String) {
        self.sendClose(code: code, reason: reason, hangUp: !self.settings.masksFrames)
    }

    /// Starts the WebSocket close handshake; the connection closes when the peer answers, or after
    /// ``Settings/closeTimeout``.
    public func close(code: WebSocketErrorCode, reason: String?) {
        self.sendClose(code: code, reason: reason, hangUp: false)
    }

    /// Sends a close frame; `hangUp` when it answers the peer's close, which completes the
    /// handshake: the connection closes once the echo is out (RFC 6455 §5.5.1), with no timeout.
    private func sendClose(code: WebSocketErrorCode, reason: String?, hangUp: Bool) {
        guard let context = self.context, !self.closeSent else { return }
        self.closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2 + (reason?.utf8.count ?? 0))
        data.write(webSocketErrorCode: code)
        if let reason { data.writeString(reason) }
        let channel = context.channel
        let written = hangUp ? channel.eventLoop.makePromise(of: Void.self) : nil
        context.writeAndFlush(
            self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: self.maskKey(), data: data)),
            promise: written
        )
        if let written {
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.eventLoop.scheduleTask(in: self.settings.closeTimeout) { channel.close(promise: nil) }
        }
    }

    // MARK: Writing frames

    private func maskKey() -> WebSocketMaskingKey? {
        self.settings.masksFrames ? .random(using: &self.maskingKeys) : nil
    }

    /// Room in front of a frame header for the WebSocket header NIO prepends (at most 14 bytes), so
    /// a frame's two headers share one small buffer.
    private static let webSocketHeaderRoom = 14

    /// A buffer holding a v2 frame header, with room in front for the WebSocket header.
    static func frameHeader(_ type: FrameType, _ flags: FrameFlags, _ id: UInt32, payloadCapacity: Int = 64) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: Self.webSocketHeaderRoom + Frame.headerSize + payloadCapacity)
        buffer.moveWriterIndex(forwardBy: Self.webSocketHeaderRoom)
        buffer.moveReaderIndex(forwardBy: Self.webSocketHeaderRoom)
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(id)
        return buffer
    }

    static func resetFrame(_ id: UInt32, _ reason: StreamResetReason) -> ByteBuffer {
        var payload = Self.frameHeader(.reset, [], id)
        reason.encode(into: &payload)
        return payload
    }

    /// A whole v2 frame (header and payload in one buffer) as one binary message.
    private func writeFrame(_ frame: ByteBuffer) {
        self.send(WebSocketFrame(fin: true, opcode: .binary, maskKey: self.maskKey(), data: frame))
    }

    /// DATA without copying the body: the v2 header travels as the WebSocket frame's extension data,
    /// which NIO writes, masked if need be, in front of the payload in the same message.
    private func writeData(_ payload: ByteBuffer, endStream: Bool, on id: UInt32) {
        let header = Self.frameHeader(.data, endStream ? .endStream : [], id, payloadCapacity: 0)
        self.send(WebSocketFrame(fin: true, opcode: .binary, maskKey: self.maskKey(), data: payload, extensionData: header))
    }

    private func send(_ frame: WebSocketFrame) {
        guard let context = self.context, !self.closeSent || frame.opcode == .connectionClose else { return }
        context.write(self.wrapOutboundOut(frame), promise: nil)
        self.scheduleFlush(context: context)
    }

    private func scheduleFlush(context: ChannelHandlerContext) {
        if self.inRead {
            self.needsFlush = true
            return
        }
        guard !self.flushScheduled else { return }
        self.flushScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let handler = loopBound.value
            handler.flushScheduled = false
            handler.context?.flush()
        }
    }

    // MARK: Keepalive

    private func schedulePing(context: ChannelHandlerContext) {
        guard let interval = self.settings.pingInterval, self.pingTask == nil else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            loopBound.value.ping()
        }
    }

    private func ping() {
        guard let context = self.context else { return }
        if self.awaitingPong {
            self.closeReason = "the peer did not answer a ping"
            context.close(promise: nil)
            return
        }
        self.awaitingPong = true
        let data = context.channel.allocator.buffer(integer: UInt64.random(in: .min ... .max))
        self.send(WebSocketFrame(fin: true, opcode: .ping, maskKey: self.maskKey(), data: data))
    }
}
