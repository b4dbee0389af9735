/// Everything the inspector is configured with; the CLI fills it from
/// `--inspect`, `--inspect-max-webhooks`, `--inspect-max-bytes` and
/// `--inspect-capture-limit`.
public struct InspectorConfiguration: Sendable {
    /// Where the page and API listen; loopback by default.
    public var address: InspectorAddress
    /// The client's state dir; the history is `inspector.sqlite` in it.
    public var stateDirectory: String
    public var limits: HistoryLimits
    /// The local app's URL, for the request URLs of a HAR export.
    public var targetURL: String
    /// Written into HAR exports as the creator's version.
    public var version: String

    public init(
        address: InspectorAddress = .default,
        stateDirectory: String,
        limits: HistoryLimits = HistoryLimits(),
        targetURL: String = "http://localhost:3000",
        version: String = "0"
    ) {
        self.address = address
        self.stateDirectory = stateDirectory
        self.limits = limits
        self.targetURL = targetURL
        self.version = version
    }
}

/// `host:port` for `--inspect` (`127.0.0.1:4040`, `localhost:0`, `[::1]:4040`).
public struct InspectorAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public static let `default` = InspectorAddress(host: "127.0.0.1", port: 4040)

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; `nil` when it is not one.
    public init?(parsing text: String) {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else { return nil }
        self.host = String(host)
        self.port = number
    }

    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// The URL to print for the bound `port` (a wildcard host shows as loopback).
    func url(port: Int) -> String {
        switch self.host {
        case "0.0.0.0": return "http://127.0.0.1:\(port)"
        case "::": return "http://[::1]:\(port)"
        default: return "http://" + InspectorAddress(host: self.host, port: port).description
        }
    }
}
