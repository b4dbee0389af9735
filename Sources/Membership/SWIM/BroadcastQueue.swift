/// Gossip waiting to be piggybacked or sent in gossip rounds (docs/memberlist-wire.md §9.3).
///
/// A newer message about a node replaces any queued one about the same node; each message goes out a
/// bounded number of times, least-sent first, so fresh news spreads before old news is repeated.
struct BroadcastQueue {
    private struct Entry {
        var node: String
        var message: WireMessage
        var size: Int
        var transmits: Int
        /// Insertion order, to break ties in favour of newer news.
        var serial: Int
    }

    private var entries: [Entry] = []
    private var serial = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// Queues `message` about `node`, replacing what was queued about that node.
    mutating func enqueue(_ message: WireMessage, about node: String) {
        entries.removeAll { $0.node == node }
        serial += 1
        entries.append(Entry(node: node, message: message, size: message.encoded().count, transmits: 0, serial: serial))
    }

    /// Takes messages that fit in `budget` bytes, where each costs `overhead` bytes more than its
    /// encoding (a compound's length field), and counts a transmission for each.
    mutating func take(budget: Int, overhead: Int, transmitLimit: Int, maxCount: Int = 127) -> [WireMessage] {
        guard !entries.isEmpty, budget > 0 else { return [] }
        let order = entries.indices.sorted {
            entries[$0].transmits != entries[$1].transmits
                ? entries[$0].transmits < entries[$1].transmits : entries[$0].serial > entries[$1].serial
        }
        var remaining = budget
        var taken: [WireMessage] = []
        var spent: Set<Int> = []
        for index in order where taken.count < maxCount {
            let cost = entries[index].size + overhead
            guard cost <= remaining else { continue }
            remaining -= cost
            taken.append(entries[index].message)
            entries[index].transmits += 1
            if entries[index].transmits >= transmitLimit { spent.insert(index) }
        }
        if !spent.isEmpty {
            entries = entries.indices.filter { !spent.contains($0) }.map { entries[$0] }
        }
        return taken
    }

    /// True while a message about `node` is still waiting to go out; a leaving node waits for this.
    func contains(node: String) -> Bool { entries.contains { $0.node == node } }
}
