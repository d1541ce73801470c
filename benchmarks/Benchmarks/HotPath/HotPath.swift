// Malloc-counting benchmarks of Vigil's hot path: read → decode → route → enqueue (STYLE.md T7, hot-path
// rule 1). One iteration is 1,000 events (`scalingFactor: .kilo`), so a raw `mallocCountTotal` reading, and
// every threshold in Thresholds/6.3/, is mallocs per 1,000 events. The interposer counts every thread of
// the process, so the daemon benchmarks count the matcher (which reads inotify) and action threads too.
// The fixtures live in Sources/HotPathFixtures, shared with vigil-instructions (callgrind).
import Benchmark
import HotPathFixtures

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration.timeUnits = .nanoseconds

    let zeroMallocs = BenchmarkThresholds(absolute: [.p90: 0])

    // 1. Pure: decode a kernel-shaped buffer of 1,000 inotify records and pass each through the SPSC ring.
    Benchmark(
        "decode-and-ring",
        configuration: .init(
            metrics: [.mallocCountTotal, .wallClock, .throughput],
            scalingFactor: .kilo,
            maxDuration: .seconds(2),
            thresholds: [.mallocCountTotal: zeroMallocs],
            setup: { DecodeFixture.shared = DecodeFixture() },
            teardown: { DecodeFixture.shared = nil }
        )
    ) { benchmark in
        guard let fixture = DecodeFixture.shared else { fatalError("decode-and-ring: setup did not run") }
        fixture.runOnce()
    }

    // 1b. Pure: decode 1,000 proc connector messages (exits, as the kernel shapes them) into records. The
    // process watcher's per-event decode must not allocate either.
    Benchmark(
        "proc-decode",
        configuration: .init(
            metrics: [.mallocCountTotal, .wallClock, .throughput],
            scalingFactor: .kilo,
            maxDuration: .seconds(2),
            thresholds: [.mallocCountTotal: zeroMallocs],
            setup: { ProcDecodeFixture.shared = ProcDecodeFixture() },
            teardown: { ProcDecodeFixture.shared = nil }
        )
    ) { benchmark in
        guard let fixture = ProcDecodeFixture.shared else { fatalError("proc-decode: setup did not run") }
        fixture.runOnce()
    }

    // 1c. Pure: 1,000 log lines in the seed's format through one Vectorscan database of 1,000 log rules
    // (`LogPatternSet.match`, rule indexes in order), as the log watcher does per line. Must not allocate.
    Benchmark(
        "log-match-1000-rules",
        configuration: .init(
            metrics: [.mallocCountTotal, .wallClock, .throughput],
            scalingFactor: .kilo,
            maxDuration: .seconds(2),
            thresholds: [.mallocCountTotal: zeroMallocs],
            setup: { LogLineFixture.shared = try LogLineFixture() },
            teardown: { LogLineFixture.shared = nil }
        )
    ) { benchmark in
        guard let fixture = LogLineFixture.shared else { fatalError("log-match-1000-rules: setup did not run") }
        blackHole(fixture.matchOnce())
    }

    // 1d. Pure: the same 1,000 lines (clean, as most are) through `SecretMasker` with every detector, as the
    // sanitize action does per line. Must not allocate.
    Benchmark(
        "secret-mask-clean-lines",
        configuration: .init(
            metrics: [.mallocCountTotal, .wallClock, .throughput],
            scalingFactor: .kilo,
            maxDuration: .seconds(2),
            thresholds: [.mallocCountTotal: zeroMallocs],
            setup: { LogLineFixture.shared = try LogLineFixture() },
            teardown: { LogLineFixture.shared = nil }
        )
    ) { benchmark in
        guard let fixture = LogLineFixture.shared else { fatalError("secret-mask-clean-lines: setup did not run") }
        blackHole(fixture.maskOnce())
    }

    // 1e. Pure: the seed's config (fixed and insecure in turn) parsed and judged against the seed's
    // `verify_ssl` rule, 1,000 times: the matcher's work on each save of a watched config. The parser builds
    // a `String` per key and value, so this allocates: 5 mallocs per file today (5,000 per iteration), pinned
    // there in Thresholds/6.3 so that a rise fails.
    Benchmark(
        "config-parse-and-judge",
        configuration: .init(
            metrics: [.mallocCountTotal, .wallClock, .throughput],
            scalingFactor: .kilo,
            maxDuration: .seconds(2),
            thresholds: [.mallocCountTotal: BenchmarkThresholds(absolute: [.p90: 5_000])],
            setup: { ConfigFixture.shared = try ConfigFixture() },
            teardown: { ConfigFixture.shared = nil }
        )
    ) { benchmark in
        guard let fixture = ConfigFixture.shared else { fatalError("config-parse-and-judge: setup did not run") }
        blackHole(fixture.runOnce())
    }

    // 1f. Pure: 1,000 alert records (a config alert with changes, a process exit with labels, a log match)
    // encoded as JSON lines into one reused buffer, as the sinks do. Must not allocate.
    Benchmark(
        "alert-json-encode",
        configuration: .init(
            metrics: [.mallocCountTotal, .wallClock, .throughput],
            scalingFactor: .kilo,
            maxDuration: .seconds(2),
            thresholds: [.mallocCountTotal: zeroMallocs],
            setup: { AlertFixture.shared = AlertFixture() },
            teardown: { AlertFixture.shared = nil }
        )
    ) { benchmark in
        guard let fixture = AlertFixture.shared else { fatalError("alert-json-encode: setup did not run") }
        blackHole(fixture.runOnce())
    }

    // 2. The real pipeline in-process: inotify events for files next to a watched config, which the matcher
    // reads, decodes and routes (and drops: no rule names them). Must not allocate.
    Benchmark(
        "daemon-unrelated-file-events",
        configuration: .init(
            metrics: [.mallocCountTotal, .wallClock, .throughput],
            warmupIterations: 20,
            scalingFactor: .kilo,
            maxDuration: .seconds(3),
            maxIterations: 2_000,
            thresholds: [.mallocCountTotal: zeroMallocs],
            setup: { PipelineFixture.shared = try PipelineFixture() },
            teardown: {
                PipelineFixture.shared?.close()
                PipelineFixture.shared = nil
            }
        )
    ) { benchmark in
        guard let fixture = PipelineFixture.shared else {
            fatalError("daemon-unrelated-file-events: setup did not run")
        }
        fixture.generateSiblingEvents(eventsPerIteration)
    }

    // 2b. Log lines through the real log watcher: 1,000 of the seed's lines appended per iteration (one
    // write, as a buffered writer does), each read, split, matched against 100 patterns that miss it and
    // passed through the in-place sanitizer (no secret in them). Must not allocate.
    Benchmark(
        "daemon-log-lines",
        configuration: .init(
            metrics: [.mallocCountTotal, .wallClock, .throughput],
            warmupIterations: 20,
            scalingFactor: .kilo,
            maxDuration: .seconds(3),
            maxIterations: 2_000,
            thresholds: [.mallocCountTotal: zeroMallocs],
            setup: { LogFixture.shared = try LogFixture() },
            teardown: {
                LogFixture.shared?.close()
                LogFixture.shared = nil
            }
        )
    ) { benchmark in
        guard let fixture = LogFixture.shared else { fatalError("daemon-log-lines: setup did not run") }
        fixture.appendLines()
    }

    // 3. Rare work, reported and not pinned: one in-place rewrite of the watched config that flips a state
    // rule, so the matcher reads and parses the file, diffs it and the worker writes one alert line.
    Benchmark(
        "daemon-config-reevaluation",
        configuration: .init(
            metrics: [.mallocCountTotal, .wallClock],
            warmupIterations: 10,
            scalingFactor: .one,
            maxDuration: .seconds(3),
            maxIterations: 1_000,
            setup: { PipelineFixture.shared = try PipelineFixture() },
            teardown: {
                PipelineFixture.shared?.close()
                PipelineFixture.shared = nil
            }
        )
    ) { benchmark in
        guard let fixture = PipelineFixture.shared else { fatalError("daemon-config-reevaluation: setup did not run") }
        fixture.rewriteConfigAndAwaitAlert()
    }
}
