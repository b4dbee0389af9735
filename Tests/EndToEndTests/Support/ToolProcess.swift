import Foundation
import Synchronization

/// The real `webhook-over-websocket` binary, started as a child process.
///
/// Its standard output is collected line by line so tests can wait for what
/// it prints (the listening line, the client's start-up lines). Every process
/// is stopped by PID when the test's scope ends.
final class ToolProcess: Sendable {
    struct Timeout: Error, CustomStringConvertible {
        var waitingFor: String
        var output: [String]
        var description: String { "timed out waiting for \(self.waitingFor); output so far:\n\(self.output.joined(separator: "\n"))" }
    }

    private struct State {
        var lines: [String] = []
        var partial = ""
        var waiters: [(id: Int, predicate: @Sendable (String) -> Bool, continuation: CheckedContinuation<String, any Error>)] = []
        var nextWaiter = 0
        var exited = false
    }

    private let process: Process
    private let state = Mutex(State())
    let pid: Int32

    /// The binary built beside the test bundle (or `$WOW_BINARY`).
    static var binaryPath: String {
        if let path = ProcessInfo.processInfo.environment["WOW_BINARY"] { return path }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test bundle may sit inside a folder of its own (macOS .xctest).
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("webhook-over-websocket").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("webhook-over-websocket").path
    }

    /// Starts `executable` (our binary unless told otherwise) with `arguments`.
    init(_ arguments: [String], environment: [String: String] = [:], executable: String = ToolProcess.binaryPath) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        if ProcessInfo.processInfo.environment["WOW_TEST_STDERR"] != nil {
            process.standardError = FileHandle.standardError
        }
        self.process = process
        try process.run()
        self.pid = process.processIdentifier
        stdout.fileHandleForReading.readabilityHandler = { [self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                self.finish()
                return
            }
            self.consume(data)
        }
    }

    private func consume(_ data: Data) {
        let ready: [(CheckedContinuation<String, any Error>, String)] = self.state.withLock { state in
            state.partial += String(decoding: data, as: UTF8.self)
            var matched: [(CheckedContinuation<String, any Error>, String)] = []
            while let newline = state.partial.firstIndex(of: "\n") {
                let line = String(state.partial[..<newline])
                state.partial = String(state.partial[state.partial.index(after: newline)...])
                state.lines.append(line)
                state.waiters.removeAll { waiter in
                    guard waiter.predicate(line) else { return false }
                    matched.append((waiter.continuation, line))
                    return true
                }
            }
            return matched
        }
        for (continuation, line) in ready { continuation.resume(returning: line) }
    }

    private func finish() {
        let waiters = self.state.withLock { state in
            state.exited = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        let output = self.state.withLock { $0.lines }
        for waiter in waiters { waiter.continuation.resume(throwing: Timeout(waitingFor: "a line (process output ended)", output: output)) }
    }

    var output: [String] { self.state.withLock { $0.lines } }

    /// Waits for a printed line matching `predicate` (already printed ones count).
    @discardableResult
    func waitForLine(
        _ description: String,
        timeout: Duration = .seconds(30),
        where predicate: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        let waiterID = self.state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withThrowingTaskGroup(of: String.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    let immediate: Result<String, any Error>? = self.state.withLock { state in
                        if let line = state.lines.first(where: predicate) { return .success(line) }
                        if state.exited { return .failure(Timeout(waitingFor: description + " (process exited)", output: state.lines)) }
                        state.waiters.append((waiterID, predicate, continuation))
                        return nil
                    }
                    if let immediate { continuation.resume(with: immediate) }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw Timeout(waitingFor: description, output: self.output)
            }
            defer { group.cancelAll() }
            do {
                let line = try await group.next()!
                return line
            } catch {
                let waiter = self.state.withLock { state in
                    let index = state.waiters.firstIndex { $0.id == waiterID }
                    return index.map { state.waiters.remove(at: $0) }
                }
                waiter?.continuation.resume(throwing: error)
                throw error
            }
        }
    }

    func waitForLine(containing text: String, timeout: Duration = .seconds(30)) async throws -> String {
        try await self.waitForLine("'\(text)'", timeout: timeout) { $0.contains(text) }
    }

    /// Counts printed lines matching `predicate`.
    func count(where predicate: (String) -> Bool) -> Int {
        self.state.withLock { $0.lines.filter(predicate).count }
    }

    func signal(_ signal: Int32) {
        if self.process.isRunning { kill(self.pid, signal) }
    }

    /// Waits for the process to exit and returns its exit status.
    func waitForExit() async -> Int32 {
        let process = self.process
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }
        }
    }

    /// Stops the process (SIGKILL) and reaps it.
    func stop() async {
        self.signal(SIGKILL)
        _ = await self.waitForExit()
    }

    /// Peak resident memory (VmHWM) in bytes, from /proc.
    func peakResidentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(self.pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kib = line.split(separator: " ").compactMap { Int($0) }.first
            return kib.map { $0 * 1024 }
        }
        return nil
    }
}

/// Runs `body` with a started process and stops it afterwards, even on failure.
func withProcess<T>(_ arguments: [String], environment: [String: String] = [:], _ body: (ToolProcess) async throws -> T) async throws -> T {
    let process = try ToolProcess(arguments, environment: environment)
    do {
        let result = try await body(process)
        await process.stop()
        return result
    } catch {
        await process.stop()
        throw error
    }
}
