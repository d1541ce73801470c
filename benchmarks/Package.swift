// swift-tools-version: 6.1
// Vigil's benchmarks, a package of their own so that package-benchmark (and its malloc interposer) never
// becomes a dependency of the daemon. See README.md here and docs in the root package.
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "vigil-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "vigil", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // The daemon's initializer takes a swift-log Logger.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // Malloc-counting micro benchmarks of the hot path (read → decode → route → enqueue):
        // `swift package --allow-writing-to-package-directory benchmark`.
        .executableTarget(
            name: "HotPath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "HotPathFixtures",
            ],
            path: "Benchmarks/HotPath",
            swiftSettings: strictSettings,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Prepared input for the hot paths, shared by HotPath and vigil-instructions.
        .target(
            name: "HotPathFixtures",
            dependencies: [
                .product(name: "VigilCore", package: "vigil"),
                .product(name: "VigilRules", package: "vigil"),
                .product(name: "VigilDaemon", package: "vigil"),
                .product(name: "VigilHarness", package: "vigil"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/HotPathFixtures",
            swiftSettings: strictSettings
        ),
        // One hot path run K times, for callgrind's instruction count (`benchmarks/instructions`).
        .executableTarget(
            name: "vigil-instructions",
            dependencies: ["HotPathFixtures"],
            path: "Sources/vigil-instructions",
            swiftSettings: strictSettings
        ),
        // End-to-end harness: the release `vigil run` against shell peers, write → alert line, and idle cost.
        .executableTarget(
            name: "vigil-bench",
            dependencies: [
                .product(name: "VigilHarness", package: "vigil"),
                .product(name: "VigilReceivers", package: "vigil"),
                .product(name: "VigilCore", package: "vigil"),
                .product(name: "VigilSystem", package: "vigil"),
            ],
            path: "Sources/vigil-bench",
            swiftSettings: strictSettings
        ),
    ]
)
