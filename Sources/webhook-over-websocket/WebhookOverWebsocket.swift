import ArgumentParser
import Foundation

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
