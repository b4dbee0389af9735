/// `operation`'s result, or nil when `deadline` comes first; the loser is
/// cancelled. The one deadline race of the webhook paths (the offline hold,
/// the legacy framing's request timeout).
func result<T: Sendable>(
    before deadline: ContinuousClock.Instant,
    of operation: @escaping @Sendable () async throws -> T
) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(until: deadline)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
