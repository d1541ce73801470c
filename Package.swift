// swift-tools-version: 6.1
// Vigil: an event-driven host watcher for Linux. See README.md and docs/.
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "vigil",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vigil", targets: ["vigil"]),
        .library(name: "VigilCore", targets: ["VigilCore"]),
        .library(name: "VigilSystem", targets: ["VigilSystem"]),
        .library(name: "VigilRules", targets: ["VigilRules"]),
        .library(name: "VigilDaemon", targets: ["VigilDaemon"]),
        .library(name: "VigilHarness", targets: ["VigilHarness"]),
        .library(name: "VigilReceivers", targets: ["VigilReceivers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The HTTP side of `/metrics` and `/status` (loopback TCP and the status socket), on one event loop.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // Kernel headers, macros as functions, layout asserts; links cap, z, hs, pcre2-8, curl, crypto.
        .target(
            name: "CVigilLinux",
            linkerSettings: [
                .linkedLibrary("cap"), .linkedLibrary("z"), .linkedLibrary("hs"), .linkedLibrary("pcre2-8"),
                .linkedLibrary("curl"), .linkedLibrary("crypto"),
            ]
        ),
        // Policy-free syscall wrappers.
        .target(
            name: "VigilSystem",
            dependencies: ["CVigilLinux", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strictSettings
        ),
        // Event records, rings, config parsing, alert records, matching tables. No I/O, no Foundation.
        .target(name: "VigilCore", swiftSettings: strictSettings),
        // YAML rule files -> validated rule set, with compiler-style diagnostics.
        .target(
            name: "VigilRules",
            dependencies: ["VigilCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strictSettings
        ),
        // Threads, wiring, sources, matcher, action workers, sinks.
        .target(
            name: "VigilDaemon",
            dependencies: [
                "VigilCore", "VigilSystem", "VigilRules",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "vigil",
            dependencies: [
                "VigilDaemon", "VigilRules", "VigilCore", "VigilSystem", "VigilHarness",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Drives Vigil from outside, as a user would: spawn `vigil run`, wait for READY=1, follow the alert
        // file, build the seed's sandbox. Shared by `vigil demo`, the end-to-end tests and the benchmarks.
        .target(name: "VigilHarness", dependencies: ["VigilSystem"], swiftSettings: strictSettings),
        // Real receivers for the alert sinks, on 127.0.0.1: an SMTP server (aiosmtpd) with msmtp as its
        // sendmail, a webhook receiver, Debian's Alertmanager, a syslog socket. For the tests and the
        // benchmarks; kept out of `vigil` (it uses Foundation).
        .target(name: "VigilReceivers", dependencies: ["VigilHarness", "VigilSystem"], swiftSettings: strictSettings),
        .target(
            name: "VigilTestSupport",
            dependencies: [
                "VigilCore", "VigilSystem", "VigilHarness", "VigilReceivers",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VigilCoreTests",
            dependencies: ["VigilCore", "VigilTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VigilRulesTests",
            dependencies: ["VigilRules", "VigilCore"],
            resources: [.copy("Fixtures")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VigilSystemTests",
            dependencies: ["VigilSystem", "VigilCore", "VigilTestSupport", "VigilHarness", "VigilReceivers"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VigilDaemonTests",
            dependencies: [
                "VigilDaemon", "VigilRules", "VigilCore", "VigilSystem", "VigilTestSupport", "VigilHarness",
                "VigilReceivers", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "VigilIntegrationTests",
            dependencies: [
                "VigilTestSupport", "VigilSystem", "VigilCore", "VigilHarness", "VigilRules", "VigilReceivers",
            ],
            swiftSettings: strictSettings
        ),
    ]
)
