import Logging
import ServiceLifecycle

/// Sweeps idle channels every cleanup period, for as long as the server runs.
struct ChannelSweeper: Service {
    let registry: ChannelRegistry
    let period: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.period) }
            } catch {
                return
            }
            let removed = await self.registry.sweep()
            if !removed.isEmpty {
                self.logger.info("swept idle channels", metadata: ["count": "\(removed.count)"])
            }
        }
    }
}
