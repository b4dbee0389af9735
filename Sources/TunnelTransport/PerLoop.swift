public import NIOCore
import NIOPosix

/// Objects kept per event loop and key, in the loop thread's own storage: found without a lock,
/// and only ever touched on that loop. NIO runs one loop per thread; tests may run several
/// embedded loops on one thread, hence the loop in the key.
public final class PerLoop<Key: Hashable & Sendable, Value: AnyObject>: Sendable {
    /// Unchecked: each table is only ever touched by its own thread.
    private final class Table: @unchecked Sendable {
        struct Entry: Hashable {
            var loop: ObjectIdentifier
            var key: Key
        }

        var values: [Entry: Value] = [:]
    }

    private let tables = ThreadSpecificVariable<Table>()

    public init() {}

    /// The value of `eventLoop` (which must be the calling thread's) for `key`, made on first use.
    public func value(on eventLoop: any EventLoop, for key: Key, make: () -> Value) -> Value {
        eventLoop.preconditionInEventLoop()
        let table: Table
        if let existing = self.tables.currentValue {
            table = existing
        } else {
            table = Table()
            self.tables.currentValue = table
        }
        let entry = Table.Entry(loop: ObjectIdentifier(eventLoop), key: key)
        if let value = table.values[entry] { return value }
        let value = make()
        table.values[entry] = value
        return value
    }
}
