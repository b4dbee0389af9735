import Testing

@testable import OfflineQueue

@Suite struct OfflineQueueModuleTests {
    @Test func moduleBuilds() { #expect(Bool(true)) }
}
