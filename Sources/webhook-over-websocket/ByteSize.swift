import ArgumentParser
import Foundation

/// A size in bytes: `1048576`, `512KiB`, `100MiB`, `1GiB` (also KB/MB/GB as
/// powers of ten, and K/M/G as powers of two).
struct ByteSize: ExpressibleByArgument, Sendable, Equatable {
    var bytes: Int

    init(bytes: Int) {
        self.bytes = bytes
    }

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        let number = text.prefix { $0.isNumber || $0 == "." }
        let unit = text.dropFirst(number.count).trimmingCharacters(in: .whitespaces).lowercased()
        guard let value = Double(number), value >= 0 else { return nil }
        let scale: Double
        switch unit {
        case "", "b": scale = 1
        case "kib", "k": scale = 1024
        case "mib", "m": scale = 1024 * 1024
        case "gib", "g": scale = 1024 * 1024 * 1024
        case "kb": scale = 1e3
        case "mb": scale = 1e6
        case "gb": scale = 1e9
        default: return nil
        }
        let bytes = value * scale
        guard bytes.isFinite, bytes <= Double(Int.max / 2) else { return nil }
        self.bytes = Int(bytes)
    }

    var defaultValueDescription: String {
        if self.bytes % (1024 * 1024) == 0 { return "\(self.bytes / (1024 * 1024))MiB" }
        if self.bytes % 1024 == 0 { return "\(self.bytes / 1024)KiB" }
        return "\(self.bytes)"
    }
}
