import ArgumentParser
import NIOCore

/// How many event loops the process runs. Everything on the hot path (HTTP connections, tunnels,
/// calls to the local app) runs on them, so on a small machine fewer loops can mean fewer hops
/// between threads (docs/performance.md, "Event loops").
struct RuntimeOptions: ParsableArguments {
    @Option(help: "Event loop threads (default: one per core).")
    var eventLoops: Int?

    /// Sets the count before anything uses NIO's shared event loop group.
    func apply() throws {
        guard let count = self.eventLoops else { return }
        guard count >= 1 else { throw ValidationError("--event-loops must be at least 1") }
        NIOSingletons.groupLoopCountSuggestion = count
    }
}
