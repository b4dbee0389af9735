/// How a ``Memberlist`` node binds, names and describes itself.
public struct MemberlistConfiguration: Sendable {
    /// Unique in the cluster; Go nodes key their member list by it.
    public var name: String
    /// Address the UDP socket and TCP listener bind to (both on the same port).
    public var bindHost: String
    /// 0 picks a free port (the same one for UDP and TCP).
    public var bindPort: Int
    /// The IP other nodes reach us at; it must be a literal IPv4 or IPv6 address.
    public var advertiseHost: String
    /// Advertised port; `nil` means the bound one.
    public var advertisePort: Int?
    /// Node metadata, at most 512 bytes (our replicas carry their HTTP URL).
    public var meta: [UInt8]
    public var swim: SWIMConfiguration
    /// How long a graceful leave waits for the leave announcement to go out.
    public var leaveTimeout: Duration

    public init(
        name: String,
        bindHost: String,
        bindPort: Int,
        advertiseHost: String,
        advertisePort: Int? = nil,
        meta: [UInt8],
        swim: SWIMConfiguration = .lan,
        leaveTimeout: Duration = .seconds(2)
    ) {
        self.name = name
        self.bindHost = bindHost
        self.bindPort = bindPort
        self.advertiseHost = advertiseHost
        self.advertisePort = advertisePort
        self.meta = meta
        self.swim = swim
        self.leaveTimeout = leaveTimeout
    }
}

/// Why a ``Memberlist`` node could not start.
public struct MemberlistError: Error, CustomStringConvertible {
    public var description: String

    init(_ description: String) { self.description = description }
}
