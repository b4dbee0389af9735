import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a node receives gossip: its advertised IP (raw bytes, as on the wire) and port.
public struct NodeAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6 (or IPv4-mapped IPv6, as Go writes when it picks its own address).
    public var ip: [UInt8]
    public var port: UInt16

    public init(ip: [UInt8], port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// The address in text form, IPv4-mapped addresses shown as plain IPv4.
    public var host: String {
        if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
        if ip.count == 16, ip[0..<10].allSatisfy({ $0 == 0 }), ip[10] == 0xFF, ip[11] == 0xFF {
            return ip[12...].map(String.init).joined(separator: ".")
        }
        guard ip.count == 16 else { return "invalid" }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]), radix: 16) }.joined(separator: ":")
    }

    public var description: String { ip.count == 16 && !host.contains(".") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension NodeAddress {
    /// The raw bytes of a literal IPv4 or IPv6 address, or nil for anything else (host names included).
    public static func parseIP(_ text: String) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &bytes) == 1 { return Array(bytes.prefix(4)) }
        if inet_pton(AF_INET6, text, &bytes) == 1 { return bytes }
        return nil
    }

    /// Splits `host`, `host:port`, `[v6]` or `[v6]:port`; a bare IPv6 address (more than one colon)
    /// is all host. The host may be a name.
    public static func splitHostPort(_ text: String, defaultPort: UInt16) -> (host: String, port: UInt16) {
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            return (host, rest.hasPrefix(":") ? UInt16(rest.dropFirst()) ?? defaultPort : defaultPort)
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2, let port = UInt16(parts[1]) { return (String(parts[0]), port) }
        return (text, defaultPort)
    }

    /// `host:port`, `host` (with `defaultPort`) or `[v6]:port`, where host is a literal IP.
    public init?(_ text: String, defaultPort: UInt16) {
        let (host, port) = Self.splitHostPort(text, defaultPort: defaultPort)
        guard let ip = Self.parseIP(host) else { return nil }
        self.init(ip: ip, port: port)
    }

    /// The address a datagram came from.
    init?(_ socketAddress: SocketAddress) {
        guard let host = socketAddress.ipAddress, let port = socketAddress.port, let ip = Self.parseIP(host) else { return nil }
        self.init(ip: ip, port: UInt16(truncatingIfNeeded: port))
    }
}
