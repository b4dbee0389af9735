import Logging
import ServiceLifecycle

/// Sweeps idle channels every cleanup period, for as long as the server runs.
struct ChannelSweeper: Service {
    let registry: ChannelRegistry
    let period: Duration
    let logger: Logger
    /// Channels with queued webhooks stay reserved until they are delivered or expire.
    var offline: OfflineDelivery?

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.period) }
            } catch {
                return
            }
            let removed = await self.registry.sweep(keeping: await self.offline?.reservedChannels() ?? [])
            if !removed.isEmpty {
                self.logger.info("swept idle channels", metadata: ["count": "\(removed.count)"])
            }
        }
    }
}
