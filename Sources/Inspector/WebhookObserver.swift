public import HTTPTypes
public import NIOCore
public import NIOHTTP1

/// The one seam between the client's data path and the inspector: it sees
/// each webhook's exchange with the local app as it streams (request head,
/// request body chunks, response head, response body chunks, end or error).
///
/// The client's `LocalForwarder` calls it for live webhooks and for replays.
/// Whatever the data path becomes (docs/inspector.md, "The capture seam"), it
/// must keep calling these methods in this order for every exchange. None of
/// them awaits: an implementation hands the data off and returns, so
/// observing never slows the tunnel.
public protocol WebhookObserver: Sendable {
    /// A webhook's request head arrived; the returned exchange gets the rest.
    func webhookStarted(_ head: ObservedRequestHead) -> any WebhookExchangeObserver
}

/// The rest of one exchange, after its request head.
public protocol WebhookExchangeObserver: Sendable {
    /// The id the inspector gave this webhook (`/api/webhooks/{id}`).
    var id: String { get }
    /// One chunk of the request body, in order, as it is sent to the local app.
    func requestBody(_ chunk: ByteBuffer)
    /// The local app's (or the tunnel's own error) response head. `headers` are the data path's
    /// own; the inspector reads them off the event loop.
    func responseHead(status: Int, headers: any ObservedHeaders)
    /// One chunk of the response body, in order, as it goes back to the sender.
    func responseBody(_ chunk: ByteBuffer)
    /// The exchange ended; `error` is set when it did not end normally
    /// (the local app unreachable or too slow, the sender gone).
    func finished(error: String?)
}

/// One header line exactly as received: name case, order and repeats kept.
public struct HeaderField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension WebhookExchangeObserver {
    public func responseHead(status: Int, headers: [HeaderField]) {
        self.responseHead(status: status, headers: headers as any ObservedHeaders)
    }
}

/// A head's fields as the data path holds them (swift-http-types' `HTTPFields`, NIO's
/// `HTTPHeaders`, or a list). The capture keeps the value as it is, a reference to storage
/// the data path already built, and turns it into ``HeaderField``s only when the history's
/// writer reads the exchange, off the event loop (docs/inspector.md, "Cost").
public protocol ObservedHeaders: Sendable {
    /// Every field in order, names in their case, repeats kept.
    var headerFields: [HeaderField] { get }
    /// The `Content-Length`, if there is exactly one and it is a number: what the capture
    /// reserves for the body it keeps.
    var declaredLength: Int? { get }
}

extension Array: ObservedHeaders where Element == HeaderField {
    public var headerFields: [HeaderField] { self }
    public var declaredLength: Int? { BodyCapture.declaredLength(self) }
}

extension HTTPFields: ObservedHeaders {
    public var headerFields: [HeaderField] { self.map { HeaderField($0.name.rawName, $0.value) } }
    public var declaredLength: Int? {
        BodyCapture.declaredLength(self, isLength: { $0.name == .contentLength }, value: \.value)
    }
}

extension HTTPHeaders: ObservedHeaders {
    public var headerFields: [HeaderField] { self.map { HeaderField($0.name, $0.value) } }
    public var declaredLength: Int? {
        // Not `self["Content-Length"]`: that builds an array of the values, for every answer.
        BodyCapture.declaredLength(self, isLength: { HeaderField.isNamed($0.name, "content-length") }, value: \.value)
    }
}

/// What the observer learns when a webhook starts.
public struct ObservedRequestHead: Sendable {
    public var method: String
    /// Path and query after the channel (`/github?x=1`).
    public var path: String
    public var headers: any ObservedHeaders
    /// The webhook this one replays, if it is a replay.
    public var replayOf: String?

    public init(method: String, path: String, headers: some ObservedHeaders, replayOf: String? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.replayOf = replayOf
    }

    public init(method: String, path: String, headers: [HeaderField], replayOf: String? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.replayOf = replayOf
    }
}

extension [HeaderField] {
    /// The server's delivery id for a webhook it queued while the client was away.
    var deliveryID: String? {
        self.first { $0.isNamed("x-webhook-delivery-id") }?.value
    }
}

extension HeaderField {
    /// Whether this header's name is `lowercased` (given in lower case), ignoring ASCII case
    /// without building a lower-cased copy: the capture asks this of every header of every
    /// webhook, on the event loop.
    func isNamed(_ lowercased: String) -> Bool {
        Self.isNamed(self.name, lowercased)
    }

    /// Whether `name` is `lowercased` (given in lower case), ignoring ASCII case.
    static func isNamed(_ name: String, _ lowercased: String) -> Bool {
        let name = name.utf8
        guard name.count == lowercased.utf8.count else { return false }
        return zip(name, lowercased.utf8).allSatisfy { byte, wanted in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == wanted
        }
    }
}
