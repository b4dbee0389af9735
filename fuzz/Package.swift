// swift-tools-version:6.2
import PackageDescription

// libFuzzer targets for the decoders a hostile peer reaches. Built and run
// by `fuzz/run.sh`; see "Fuzzing" in docs/operations.md.
//
// A separate package keeps the main one untouched and lets the fuzzers build
// only what they need: `Sources/TunnelProtocol` and `Sources/MembershipWire`
// are symlinks to the real sources (../../Sources/...), compiled here as
// their own modules over NIOCore and HTTPTypes only.
let package = Package(
    name: "webhook-over-websocket-fuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .target(
            name: "TunnelProtocol",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .target(
            name: "MembershipWire",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(name: "FuzzSupport"),
        .executableTarget(
            name: "FuzzFrames",
            dependencies: [
                "FuzzSupport", "TunnelProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .executableTarget(
            name: "FuzzLegacy",
            dependencies: [
                "FuzzSupport", "TunnelProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .executableTarget(
            name: "FuzzMemberlist",
            dependencies: ["FuzzSupport", "MembershipWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
    ]
)
