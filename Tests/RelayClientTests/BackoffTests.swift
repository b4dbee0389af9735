import Testing

@testable import RelayClient

@Suite struct BackoffTests {
    @Test func growsExponentiallyAndIsCapped() {
        let backoff = Backoff()
        let ceilings = (1...8).map { backoff.ceiling(attempt: $0) }
        #expect(ceilings == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(30), .seconds(30), .seconds(30)])
        #expect(backoff.ceiling(attempt: 1000) == .seconds(30))
    }

    @Test func jitterStaysInTheUpperHalf() {
        let backoff = Backoff()
        #expect(backoff.delay(attempt: 3, random: 0) == .seconds(2))
        #expect(backoff.delay(attempt: 3, random: 1) == .seconds(4))
        for _ in 0..<100 {
            let delay = backoff.delay(attempt: 2)
            #expect(delay >= .seconds(1) && delay <= .seconds(2))
        }
    }
}

@Suite struct TargetURLTests {
    @Test func appendsSuffixesToTheBasePath() {
        let cases: [(String, String, String)] = [
            ("http://localhost:3000", "/github?x=1", "http://localhost:3000/github?x=1"),
            ("http://localhost:3000", "?a=b", "http://localhost:3000/?a=b"),
            ("http://localhost:3000", "", "http://localhost:3000/"),
            ("http://localhost:3000/api", "/github?x=1", "http://localhost:3000/api/github?x=1"),
            ("http://localhost:3000/api/", "?a=b", "http://localhost:3000/api?a=b"),
            ("http://localhost:3000/api", "", "http://localhost:3000/api"),
        ]
        for (target, suffix, expected) in cases {
            let (origin, base) = LocalForwarder.split(target)
            #expect(LocalForwarder.join(origin: origin, basePath: base, suffix: suffix) == expected, "\(target) + \(suffix)")
        }
    }
}
