import Testing

@testable import Inspector

@Suite struct InspectorModuleTests {
    @Test func moduleBuilds() { #expect(Bool(true)) }
}
