import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real PostgreSQL server for tests: Debian's `initdb` and `pg_ctl` (from
/// the `postgresql` package) in a temp directory, listening on 127.0.0.1 at a
/// free port with trust authentication, its unix socket in that directory.
///
/// PostgreSQL refuses to run as root, so as root the directory belongs to the
/// `postgres` system user (or `nobody`) and the tools run through `runuser`.
/// ``stop()`` stops the server at once (`-m immediate`) and removes the
/// directory.
public final class PostgresTestServer: Sendable {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    public let url: String
    public let port: Int
    /// The superuser's name.
    public let user = "postgres"
    /// The temp directory holding the cluster (`data/`), its log and socket.
    public let directory: String
    private let binDirectory: String
    private let runAs: String?

    /// The directory with `initdb` and `pg_ctl`, the newest version installed.
    public static var binDirectory: String? {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return versions.sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
            .map { "\(root)/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") && FileManager.default.isExecutableFile(atPath: "\($0)/pg_ctl") }
    }

    /// Whether PostgreSQL is installed here; tests that need it are skipped
    /// otherwise, saying so.
    public static var isAvailable: Bool { binDirectory != nil }

    public static let unavailableMessage = "PostgreSQL is not installed (no initdb/pg_ctl in /usr/lib/postgresql/*/bin): apt-get install postgresql"

    private init(url: String, port: Int, directory: String, binDirectory: String, runAs: String?) {
        self.url = url
        self.port = port
        self.directory = directory
        self.binDirectory = binDirectory
        self.runAs = runAs
    }

    /// Creates a cluster in a new temp directory and starts it.
    public static func start() async throws -> PostgresTestServer {
        guard let bin = binDirectory else { throw PostgresTestServerError(message: unavailableMessage) }
        let runAs: String? = getuid() == 0 ? (getpwnam("postgres") != nil ? "postgres" : "nobody") : nil
        let parent = getuid() == 0 ? "/tmp" : NSTemporaryDirectory()
        let directory = (parent as NSString).appendingPathComponent("pg-\(UUID().uuidString.prefix(8).lowercased())")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if let runAs, let account = getpwnam(runAs) {
            guard chown(directory, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                throw PostgresTestServerError(message: "chown \(directory) to \(runAs): \(String(cString: strerror(errno)))")
            }
        }
        let data = directory + "/data"
        do {
            try await tool(
                bin + "/initdb",
                ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                runAs: runAs
            )
            // A free port can be taken by someone else before the server binds
            // it: try a few.
            var lastError: (any Error)?
            for _ in 0..<5 {
                let port = try freePort()
                do {
                    try await tool(
                        bin + "/pg_ctl",
                        [
                            "-D", data, "-l", directory + "/log", "-w", "-t", "60",
                            "-o", "-c listen_addresses=127.0.0.1 -p \(port) -k \(directory) -c max_connections=200 -c fsync=on",
                            "start",
                        ],
                        runAs: runAs
                    )
                    return PostgresTestServer(
                        url: "postgres://postgres@127.0.0.1:\(port)/postgres",
                        port: port,
                        directory: directory,
                        binDirectory: bin,
                        runAs: runAs
                    )
                } catch {
                    lastError = error
                }
            }
            throw lastError ?? PostgresTestServerError(message: "pg_ctl start failed")
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// `url` with another database name.
    public func url(database: String) -> String {
        "postgres://\(user)@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// Creates an empty database (with Debian's `createdb`) and returns its URL.
    public func createDatabase(_ name: String) async throws -> String {
        try await Self.tool(binDirectory + "/createdb", ["-h", "127.0.0.1", "-p", "\(port)", "-U", user, name], runAs: runAs)
        return url(database: name)
    }

    /// Stops the server at once and removes its directory.
    public func stop() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await Self.tool(binDirectory + "/pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"], runAs: runAs)
    }

    /// Runs a PostgreSQL tool to its end; throws with its output when it fails.
    @discardableResult
    private static func tool(_ path: String, _ arguments: [String], runAs: String?) async throws -> String {
        let process = Process()
        // Foundation learns that a child ended only once every holder of a
        // descriptor it gives the child has closed it, and `pg_ctl start`
        // leaves the server running with everything it inherited: the tool
        // would never be seen to end. So bash closes what is above stderr
        // before it becomes the tool.
        let command = (runAs.map { ["/usr/sbin/runuser", "-u", $0, "--"] } ?? []) + [path] + arguments
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments =
            [
                "-c", #"for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-"; done; exec "$@""#, "bash",
            ] + command
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("pg-tool-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        // Run from a directory every user may enter.
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw PostgresTestServerError(message: "\((path as NSString).lastPathComponent) exited \(status): \(text)")
        }
        return text
    }

    private static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw PostgresTestServerError(message: "socket: \(String(cString: strerror(errno)))") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw PostgresTestServerError(message: "bind: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard named == 0 else { throw PostgresTestServerError(message: "getsockname: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A PostgreSQL tool failed; the message carries its output.
public struct PostgresTestServerError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
