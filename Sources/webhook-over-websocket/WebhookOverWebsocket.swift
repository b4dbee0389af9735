import ArgumentParser
import Dispatch
import Foundation
import Synchronization

@main
struct WebhookOverWebsocket: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "webhook-over-websocket",
        abstract: "Deliver webhooks to a local app through a WebSocket tunnel.",
        version: Self.version,
        subcommands: [ServerCommand.self, ClientCommand.self, ReplayCommand.self, EchoCommand.self, VersionCommand.self]
    )
}

/// Output meant for people (start-up lines, one line per webhook) goes to
/// standard output, one write per line, so it is never held in a buffer
/// when the output is a pipe.
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// The client's console (start-up lines and one line per webhook), written from a queue of its own:
/// the event loop that finished a webhook never waits on a terminal or a pipe. A line after a quiet
/// spell is handed to the queue at once; lines that follow within ``pacing`` of the last write wait
/// for the rest of it and leave in one write. Waking the queue for every line cost a busy client
/// about two `futex` calls and one `write` per webhook, a third of its system calls
/// (docs/performance.md). ``flush()`` on the way out writes what is still queued.
enum ConsoleOutput {
    private struct Pending {
        var bytes: [UInt8] = []
        var scheduled = false
        /// When the queue last wrote.
        var written = ContinuousClock.now - Self.pacing

        /// How long after a write the next one waits at least: at most 50 writes a second.
        static let pacing = Duration.milliseconds(20)
    }

    private static let pending = Mutex(Pending())
    private static let queue = DispatchQueue(label: "webhook-over-websocket.console")

    static func write(_ text: String) {
        let wait = Self.pending.withLock { state -> Duration? in
            state.bytes.append(contentsOf: text.utf8)
            state.bytes.append(UInt8(ascii: "\n"))
            guard !state.scheduled else { return nil }
            state.scheduled = true
            return max(.zero, state.written + Pending.pacing - ContinuousClock.now)
        }
        guard let wait else { return }
        if wait == .zero {
            Self.queue.async { Self.drain() }
        } else {
            let (seconds, attoseconds) = wait.components
            let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
            Self.queue.asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { Self.drain() }
        }
    }

    private static func drain() {
        let bytes = Self.pending.withLock { state in
            defer {
                state.bytes = []
                state.scheduled = false
                state.written = ContinuousClock.now
            }
            return state.bytes
        }
        if !bytes.isEmpty { FileHandle.standardOutput.write(Data(bytes)) }
    }

    /// Writes whatever is still queued, before the process exits.
    static func flush() {
        Self.queue.sync { Self.drain() }
    }
}
