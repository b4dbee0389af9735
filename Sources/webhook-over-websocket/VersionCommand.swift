import ArgumentParser

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        printLine("webhook-over-websocket \(WebhookOverWebsocket.version)")
    }
}
