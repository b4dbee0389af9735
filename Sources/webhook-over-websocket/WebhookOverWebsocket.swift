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
/// the event loop that finished a webhook never waits on a terminal or a pipe, and lines that pile
/// up under load leave in one write. A line is handed to the queue at once, so nothing waits for
/// more lines to come; ``flush()`` on the way out writes what is still queued.
enum ConsoleOutput {
    private static let pending = Mutex<(bytes: [UInt8], scheduled: Bool)>(([], false))
    private static let queue = DispatchQueue(label: "webhook-over-websocket.console")

    static func write(_ text: String) {
        let schedule = Self.pending.withLock { state in
            state.bytes.append(contentsOf: text.utf8)
            state.bytes.append(UInt8(ascii: "\n"))
            defer { state.scheduled = true }
            return !state.scheduled
        }
        if schedule { Self.queue.async { Self.drain() } }
    }

    private static func drain() {
        let bytes = Self.pending.withLock { state in
            defer { state = ([], false) }
            return state.bytes
        }
        if !bytes.isEmpty { FileHandle.standardOutput.write(Data(bytes)) }
    }

    /// Writes whatever is still queued, before the process exits.
    static func flush() {
        Self.queue.sync { Self.drain() }
    }
}
