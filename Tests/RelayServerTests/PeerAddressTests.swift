import Membership
import Testing

@testable import RelayServer

struct PeerAddressTests {
    @Test func peersEntriesSplitIntoHostAndPort() {
        #expect(NodeAddress.splitHostPort("10.0.0.2", defaultPort: 7946) == ("10.0.0.2", 7946))
        #expect(NodeAddress.splitHostPort("10.0.0.2:8000", defaultPort: 7946) == ("10.0.0.2", 8000))
        #expect(NodeAddress.splitHostPort("wow-peers.default.svc", defaultPort: 7946) == ("wow-peers.default.svc", 7946))
        #expect(NodeAddress.splitHostPort("[fd00::1]:7000", defaultPort: 7946) == ("fd00::1", 7000))
        #expect(NodeAddress.splitHostPort("[fd00::1]", defaultPort: 7946) == ("fd00::1", 7946))
        // A bare IPv6 address has more than one colon: it is all host.
        #expect(NodeAddress.splitHostPort("fd00::1", defaultPort: 7946) == ("fd00::1", 7946))
    }

    @Test func gossipAddressesAreRawIPBytes() {
        #expect(NodeAddress.parseIP("127.0.0.3") == [127, 0, 0, 3])
        #expect(NodeAddress.parseIP("::1")?.count == 16)
        #expect(NodeAddress.parseIP("example.com") == nil)
        #expect(NodeAddress("127.0.0.3:7000", defaultPort: 7946) == NodeAddress(ip: [127, 0, 0, 3], port: 7000))
        #expect(NodeAddress("[::1]:7000", defaultPort: 7946)?.port == 7000)
        #expect(NodeAddress(ip: [127, 0, 0, 3], port: 7946).description == "127.0.0.3:7946")
        // IPv4-mapped IPv6, as Go writes its own address when it picks it, reads as IPv4.
        #expect(NodeAddress(ip: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 1, 2, 3], port: 1).host == "10.1.2.3")
    }

    @Test func hostNamesResolveAndLiteralsPassThrough() async {
        #expect(await HostResolver.resolve("127.0.0.9") == ["127.0.0.9"])
        #expect(await HostResolver.resolve("localhost").contains { $0 == "127.0.0.1" || $0 == "::1" })
        #expect(await HostResolver.resolve("no-such-host.invalid").isEmpty)
    }
}
