// vigil-bench: the end-to-end harness. Config drift latency (write → alert line) of the release `vigil run`
// against two shell peers, process death latency (SIGKILL → alert line) against forkstat and a poll loop,
// a burst of short-lived processes, the daemon's idle cost, log matching throughput (`vigil match` vs
// grep, fail2ban-regex, SEC), the mode and owner rules (chmod → restored against an inotifywait loop, an
// overflow burst, the start-up scan of a large tree against chown -R/chmod -R), and the rotation and
// compression of a 1 GiB log (against gzip -6 and logrotate); writes RESULTS.md.
//
//     swift run -c release --package-path benchmarks vigil-bench [--quick] [--flips N] [--kills N] [--burst N]
//         [--no-process | --process-only] [--no-logs | --logs-only] [--torture-seconds S] [--torture-rate N]
//         [--no-throughput | --throughput-only] [--no-permissions | --permissions-only] [--restores N]
//         [--overflow-files N] [--scan-files N] [--no-rotation | --rotation-only] [--rotation-bytes N]
//         [--vigil PATH] [--results FILE]
//
//     --permissions-only runs the mode and owner scenarios alone and writes benchmarks/out/RESULTS-permissions.md
//     (-quick.md with --quick); --restores 0, --overflow-files 0 or --scan-files 0 leaves one of them out.
//     --rotation-only runs the rotation scenario alone (a 1 GiB log; 64 MiB with --quick; --rotation-bytes N)
//     and writes benchmarks/out/RESULTS-rotation.md (-quick.md). --rotation-keep-capabilities runs vigil there
//     with --keep-capabilities (a workaround, named in the report, for a capability its drop leaves out).
//     swift run -c release --package-path benchmarks vigil-bench generate [--lines N] [--patterns 1,10,100,1000] DIR
//         (the throughput scenario's log and rule sets: DIR/log.txt, DIR/rules-N.yaml, DIR/patterns-N.txt)
//
// Exits non-zero only when a scenario fails to detect what it should (a missed or doubled alert, no READY),
// never because of absolute times.
import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `benchmarks/`, from this file's path at build time (…/benchmarks/Sources/vigil-bench/main.swift).
let benchmarksDirectory: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

func usage() -> Never {
    print(
        "usage: vigil-bench [--quick] [--flips N] [--kills N] [--burst N] [--no-process | --process-only] [--no-logs] [--logs-only] [--torture-seconds S] [--torture-rate N] [--no-throughput | --throughput-only] [--no-permissions | --permissions-only] [--restores N] [--overflow-files N] [--scan-files N] [--no-rotation | --rotation-only] [--rotation-bytes N] [--rotation-keep-capabilities] [--no-delivery | --delivery-only] [--deliveries N] [--no-system | --system-only] [--system-trials N] [--no-thresholds | --thresholds-only] [--no-reload | --reload-only] [--reloads N] [--idle-only] [--pipeline-files N] [--no-exec-subject] [--vigil PATH] [--results FILE]"
    )
    print("       vigil-bench generate [--lines N] [--patterns N,N,...] DIR")
    exit(2)
}

/// `vigil-bench generate`: writes the throughput scenario's corpus and exits.
func generateCommand(_ arguments: ArraySlice<String>) -> Never {
    var lines = 1_000_000
    var sizes = [1, 10, 100, 1000]
    var directory: String?
    var iterator = arguments.makeIterator()
    while let argument = iterator.next() {
        switch argument {
        case "--lines":
            guard let value = iterator.next().flatMap({ Int($0) }), value > 0 else { usage() }
            lines = value
        case "--patterns":
            guard let value = iterator.next() else { usage() }
            let parsed = value.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
            guard !parsed.isEmpty else { usage() }
            sizes = parsed
        default:
            guard directory == nil, !argument.hasPrefix("-") else { usage() }
            directory = argument
        }
    }
    guard let directory else { usage() }
    guard LogCorpus.generate(directory: directory, lines: lines, sizes: sizes) else {
        print("vigil-bench: Failed to write the corpus into '\(directory)'")
        exit(1)
    }
    print(
        "vigil-bench: wrote \(directory)/log.txt (\(lines) lines) and rules-N.yaml, patterns-N.txt for N = \(sizes.map(String.init).joined(separator: ", "))"
    )
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "generate" { generateCommand(CommandLine.arguments.dropFirst(2)) }

func absolute(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buffer = [UInt8](repeating: 0, count: 4097)
    guard
        buffer.withUnsafeMutableBufferPointer({
            getcwd($0.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) }, 4096)
        }) != nil
    else { return path }
    return String(decoding: buffer.prefix(while: { $0 != 0 }), as: UTF8.self) + "/" + path
}

var quick = false
var flipOverride: Int?
var killOverride: Int?
var burstOverride: Int?
var processScenarios = true
/// Process death and the burst alone.
var processOnly = false
var throughputScenario = true
var throughputOnly = false
var logScenarios = true
var logsOnly = false
var tortureSecondsOverride: Double?
var tortureRateOverride: Int?
var permissionScenarios = true
var permissionsOnly = false
var restoreOverride: Int?
var overflowFilesOverride: Int?
var scanFilesOverride: Int?
var rotationScenario = true
var rotationOnly = false
var rotationBytesOverride: Int?
var rotationKeepCapabilities = false
var deliveryScenario = true
var deliveryOnly = false
var deliveryTrialsOverride: Int?
var systemScenario = true
var systemOnly = false
var systemTrialsOverride: Int?
var thresholdScenario = true
var thresholdsOnly = false
var reloadScenario = true
var reloadOnly = false
/// Idle cost (vigil and the peer daemons) and the pipeline burst alone.
var idleOnly = false
var pipelineFilesOverride: Int?
var reloadsOverride: Int?
var vigilPath = benchmarksDirectory + "/../.build/release/vigil"
var resultsPath: String?
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--quick":
        quick = true
        PeerTrials.quick = true
    case "--no-exec-subject": ExecSubject.enabled = false
    case "--flips":
        guard let value = arguments.next().flatMap({ Int($0) }), value > 0 else { usage() }
        flipOverride = value
    case "--kills":
        guard let value = arguments.next().flatMap({ Int($0) }), value > 0 else { usage() }
        killOverride = value
    case "--burst":
        guard let value = arguments.next().flatMap({ Int($0) }), value > 0 else { usage() }
        burstOverride = value
    case "--no-process": processScenarios = false
    case "--process-only": processOnly = true
    case "--no-throughput": throughputScenario = false
    case "--throughput-only": throughputOnly = true
    case "--no-logs": logScenarios = false
    case "--logs-only": logsOnly = true
    case "--torture-seconds":
        guard let value = arguments.next().flatMap({ Double($0) }), value > 0 else { usage() }
        tortureSecondsOverride = value
    case "--torture-rate":
        guard let value = arguments.next().flatMap({ Int($0) }), value > 0 else { usage() }
        tortureRateOverride = value
    case "--no-permissions": permissionScenarios = false
    case "--permissions-only": permissionsOnly = true
    case "--restores":
        guard let value = arguments.next().flatMap({ Int($0) }), value >= 0 else { usage() }
        restoreOverride = value
    case "--overflow-files":
        guard let value = arguments.next().flatMap({ Int($0) }), value >= 0 else { usage() }
        overflowFilesOverride = value
    case "--scan-files":
        guard let value = arguments.next().flatMap({ Int($0) }), value >= 0 else { usage() }
        scanFilesOverride = value
    case "--no-rotation": rotationScenario = false
    case "--rotation-only": rotationOnly = true
    case "--rotation-keep-capabilities": rotationKeepCapabilities = true
    case "--rotation-bytes":
        guard let value = arguments.next().flatMap({ Int($0) }), value > 0 else { usage() }
        rotationBytesOverride = value
    case "--no-delivery": deliveryScenario = false
    case "--no-system": systemScenario = false
    case "--system-only": systemOnly = true
    case "--system-trials":
        guard let value = arguments.next().flatMap({ Int($0) }), value > 0 else { usage() }
        systemTrialsOverride = value
    case "--delivery-only": deliveryOnly = true
    case "--deliveries":
        guard let value = arguments.next().flatMap({ Int($0) }), value > 0 else { usage() }
        deliveryTrialsOverride = value
    case "--no-thresholds": thresholdScenario = false
    case "--thresholds-only": thresholdsOnly = true
    case "--no-reload": reloadScenario = false
    case "--reload-only": reloadOnly = true
    case "--idle-only": idleOnly = true
    case "--pipeline-files":
        guard let value = arguments.next().flatMap({ Int($0) }), value > 0 else { usage() }
        pipelineFilesOverride = value
    case "--reloads":
        guard let value = arguments.next().flatMap({ Int($0) }), value > 0 else { usage() }
        reloadsOverride = value
    case "--vigil":
        guard let value = arguments.next() else { usage() }
        vigilPath = absolute(value)
    case "--results":
        guard let value = arguments.next() else { usage() }
        resultsPath = absolute(value)
    case "-h", "--help": usage()
    default:
        print("vigil-bench: unknown argument '\(argument)'")
        usage()
    }
}
// Raw samples for benchmarks/plot: a quick run keeps its own, so it never overwrites a reference run's.
if quick { Samples.directory = benchmarksDirectory + "/out/samples-quick" }
let results =
    resultsPath ?? (quick ? benchmarksDirectory + "/out/RESULTS-quick.md" : benchmarksDirectory + "/RESULTS.md")
let rulesDirectory = benchmarksDirectory + "/../rules"
guard access(vigilPath, X_OK) == 0 else {
    print(
        "vigil-bench: Failed to find the vigil binary at '\(vigilPath)'; build it with 'swift build -c release --product vigil' at the repository root, or pass --vigil PATH"
    )
    exit(1)
}
// How this run was started, for the report (benchmarks/run passes its own command line).
let command =
    getenv("VIGIL_BENCH_COMMAND").map { String(cString: $0) }
    ?? (["swift run -c release --package-path benchmarks vigil-bench"] + CommandLine.arguments.dropFirst()).joined(
        separator: " "
    )

/// The throughput scenario: its corpus lives under $TMPDIR (1 M lines are about 100 MB) and is removed after.
@MainActor
func runThroughputScenario() -> ThroughputResult {
    let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    let directory = "\(base)/vigil-bench-throughput-\(getpid())"
    defer { FileTree.remove(directory) }
    let result = Throughput.run(vigil: vigilPath, quick: quick, directory: directory)
    result.recordSamples()
    return result
}

if throughputOnly {
    let throughput = runThroughputScenario()
    let text =
        ([
            "# Vigil benchmark results: log matching throughput only\n", "- Date: \(Machine.utcNow())",
            "- Machine: Linux \(Machine.kernelRelease()), \(Machine.processors()) CPUs (nproc), \(Machine.cpuModel())",
            "- Command: `\(command)`\n", "## Targets\n", "| target | required | measured | met |", "|---|---|---|---|",
        ]
        + throughput.targetRows() + [""] + throughput.markdown()).joined(separator: "\n") + "\n"
    let path =
        resultsPath
        ?? (quick
            ? benchmarksDirectory + "/out/RESULTS-throughput-quick.md"
            : benchmarksDirectory + "/out/RESULTS-throughput.md")
    mkdir(benchmarksDirectory + "/out", 0o755)
    if LogCorpus.write(text, to: path) { print("vigil-bench: wrote \(path)") }
    if !throughput.detectedEverything {
        print("vigil-bench: FAILED: \(throughput.failures.joined(separator: "; "))")
        exit(1)
    }
    exit(0)
}

let flipCount = flipOverride ?? (quick ? 100 : 1_000)
let killCount = killOverride ?? (quick ? 50 : 500)
let burstCount = burstOverride ?? (quick ? 2_000 : 20_000)
let idleSeconds = quick ? 3 : 30
let pipelineFiles = pipelineFilesOverride ?? (quick ? 1_000 : 20_000)
let flips = Flip.plan(count: flipCount)

/// Whether `path` is on a tmpfs (`statfs` magic `TMPFS_MAGIC`).
func isTmpfs(_ path: String) -> Bool {
    FileSystemType.magic(of: path) == 0x0102_1994
}

func summaryLine(_ result: DriftResult) -> String {
    let s = LatencySummary(result.samples())
    let figures = s.map { "p50 \(milliseconds($0.p50)) ms, p99 \(milliseconds($0.p99)) ms" } ?? "no samples"
    return
        "\(result.subject): \(result.latencies.count)/\(result.expected) seen, \(result.missed) missed, \(result.doubled) doubled; \(figures)"
        + (result.failures.isEmpty ? "" : "; problems: \(result.failures.joined(separator: "; "))")
}

/// The flips are run in rounds, each subject in turn within a round, so that a slow patch of the machine
/// (this is a VM) falls on every subject alike instead of on whichever ran then.
let rounds = quick ? 1 : 4
let roundSize = ((flipCount / rounds) / 2) * 2
let roundFlips = (0..<rounds).map { round in
    Array(flips[(round * roundSize)..<(round == rounds - 1 ? flipCount : (round + 1) * roundSize)])
}

/// Runs every subject over the flips in rounds; returns vigil's and each peer's merged results.
@MainActor
func runDriftRounds(tmpfs: Bool) -> (vigil: DriftResult, peers: [DriftResult]) {
    let saved = getenv("TMPDIR").map { String(cString: $0) }
    if tmpfs { setenv("TMPDIR", "/dev/shm", 1) }
    defer {
        if tmpfs { if let saved { setenv("TMPDIR", saved, 1) } else { unsetenv("TMPDIR") } }
    }
    let peerKinds: [Peer] = tmpfs ? [.notice] : Peer.allCases
    var vigil: DriftResult?
    var peers: [DriftResult?] = Array(repeating: nil, count: peerKinds.count)
    var exec: DriftResult?
    for chunk in roundFlips {
        let mine = runVigilDrift(vigil: vigilPath, rules: rulesDirectory, flips: chunk)
        if vigil == nil { vigil = mine } else { vigil!.merge(mine) }
        if !tmpfs && ExecSubject.enabled {
            let mineExec = runVigilDrift(vigil: vigilPath, rules: rulesDirectory, flips: chunk, exec: true)
            if exec == nil { exec = mineExec } else { exec!.merge(mineExec) }
        }
        for (i, peer) in peerKinds.enumerated() {
            let theirs = runPeerDrift(peer, flips: chunk)
            if peers[i] == nil { peers[i] = theirs } else { peers[i]!.merge(theirs) }
        }
    }
    let others = (exec.map { [$0] } ?? []) + peers.map { $0! }
    recordDriftSamples([vigil!] + others, tmpfs: tmpfs)
    return (vigil!, others)
}

/// The log scenarios: appended line → alert against `tail -F | grep`, and the rotation torture.
@MainActor
func runLogScenarios() -> LogResults {
    let lines = quick ? 100 : 1_000
    print("log latency: \(lines) appended lines per subject in \(rounds) round\(rounds == 1 ? "" : "s")…")
    let latency = runLogLatency(vigil: vigilPath, rules: rulesDirectory, lines: lines, rounds: rounds)
    print("log latency across a rotation: \(PeerTrials.rotationPerRound) lines per subject per round…")
    let rotated = runLogLatency(vigil: vigilPath, rules: rulesDirectory, lines: lines, rounds: rounds, rotation: true)
    for result in latency + rotated.map({ LogLatencyResult(subject: "(rotation) " + $0.subject, from: $0) }) {
        let s = LatencySummary(result.latencies)
        print(
            "log latency: \(result.subject): \(result.latencies.count)/\(result.expected) seen, \(result.missed) missed, \(result.doubled) extra; "
                + (s.map { "p50 \(milliseconds($0.p50)) ms, p99 \(milliseconds($0.p99)) ms" } ?? "no samples")
                + (result.failures.isEmpty ? "" : "; problems: \(result.failures.joined(separator: "; "))")
        )
    }
    var torture: [(settings: RotationTorture.Settings, result: RotationTorture.Result?, failure: String?)] = []
    let rotations: [RotationTorture.Rotation] = quick ? [.rename] : [.rename, .copyTruncate]
    for rotation in rotations {
        let settings = RotationTorture.Settings(
            linesPerSecond: tortureRateOverride ?? (quick ? 5_000 : 50_000),
            seconds: tortureSecondsOverride ?? (quick ? 4 : (rotation == .rename ? 60 : 20)),
            rotateEveryMilliseconds: 500,
            kills: 3,
            rotation: rotation
        )
        print(
            "log torture (\(rotation.rawValue)): \(settings.linesPerSecond) lines/s for \(settings.seconds) s, 3 SIGKILLs…"
        )
        let (result, failure) = runLogTorture(vigil: vigilPath, settings: settings)
        print("log torture (\(rotation.rawValue)): \(result.map(\.description) ?? failure ?? "failed")")
        torture.append((settings, result, failure))
    }
    return LogResults(latency: latency, rotation: rotated, torture: torture)
}

if logsOnly {
    let logs = runLogScenarios()
    exit(logs.detectedEverything ? 0 : 1)
}

/// "Date …; machine …; command …", for the sections a developer may rerun alone and paste.
let provenance =
    "Date: \(Machine.utcNow()); machine: Linux \(Machine.kernelRelease()), \(Machine.processors()) CPUs (nproc), \(Machine.cpuModel()); command: `\(command)`"

/// The mode and owner scenarios (issue 5): chmod → restored, the overflow burst, the start-up scan.
@MainActor
func runPermissionScenarios() -> PermissionResults {
    let restores = restoreOverride ?? (quick ? 30 : 1_000)
    let overflowFiles = overflowFilesOverride ?? (quick ? 2_000 : 50_000)
    let scanFiles = scanFilesOverride ?? (quick ? 3_000 : 100_000)
    var results = PermissionResults(
        quick: quick,
        provenance: provenance,
        filesystem: FileSystemType.name(of: getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp")
    )
    if restores > 0 {
        print("mode and owner: \(restores) chmod restores per subject in \(rounds) round\(rounds == 1 ? "" : "s")…")
        let restore = RestoreLatency.run(vigil: vigilPath, trials: restores, rounds: rounds)
        for result in restore {
            let s = LatencySummary(result.latencies)
            print(
                "mode and owner: \(result.subject): \(result.latencies.count)/\(result.expected) seen, \(result.missed) missed, \(result.doubled) doubled, \(result.wrongAfter) wrong after, \(result.extraLines) extra lines; "
                    + (s.map {
                        "p50 \(milliseconds($0.p50)) ms, p99 \(milliseconds($0.p99)) ms, max \(milliseconds($0.max)) ms"
                    }
                        ?? "no samples")
                    + (result.failures.isEmpty ? "" : "; problems: \(result.failures.joined(separator: "; "))")
            )
        }
        results.restore = restore
        results.restoreRounds = rounds
    }
    if overflowFiles > 0 {
        let burstRounds = quick ? 1 : 3
        print(
            "mode and owner: overflow burst of \(overflowFiles) files, \(burstRounds) round\(burstRounds == 1 ? "" : "s")…"
        )
        let bursts = OverflowBurst.run(
            vigil: vigilPath,
            files: overflowFiles,
            rounds: burstRounds,
            vigilWindow: quick ? 30 : 60,
            peerWindow: quick ? 2 : 10,
            ordinaryWriter: !quick
        )
        for b in bursts {
            print(
                "mode and owner: burst, \(b.isVigil ? "vigil" : b.subject) (writer at nice \(b.writerNice)): chmod of \(b.files) files in \(milliseconds(b.burstNanoseconds)) ms; all right after \(b.allRightNanoseconds.map { "\(milliseconds($0)) ms" } ?? "–"), confirmed \(b.confirmedNanoseconds.map { "\(milliseconds($0)) ms" } ?? "–"); \(b.overflows) overflows, \(b.restoredLines) lines (\(b.restoredDistinct) files), \(b.wrongAtEnd) wrong at the end"
                    + (b.failures.isEmpty ? "" : "; problems: \(b.failures.joined(separator: "; "))")
            )
        }
        results.burst = bursts
    }
    if scanFiles > 0 {
        let leaves = max(1, scanFiles / StartupScan.filesPerDirectory)
        let starts = quick ? 2 : 3
        print("mode and owner: start-up scan of \(scanFiles) files in \(leaves) directories, \(starts) starts…")
        let scan = StartupScan.run(vigil: vigilPath, files: scanFiles, leaves: leaves, trials: starts)
        for (index, t) in scan.trials.enumerated() {
            print(
                "mode and owner: scan start \(index + 1): READY after \(milliseconds(t.readyNanoseconds)) ms (vigil says \(t.loggedMilliseconds.map { "\($0)" } ?? "?") ms), \(t.watches.map(String.init) ?? "?") watches, VmRSS \(t.rssKiB) KiB, VmHWM \(t.hwmKiB) KiB, \(t.restoredAlerts) restored alerts, wrong at READY \(t.wrongAtReady), after \(t.wrongAfterWait); peer \(index < scan.peerNanoseconds.count ? milliseconds(scan.peerNanoseconds[index]) : "–") ms"
            )
        }
        for failure in scan.failures { print("mode and owner: scan: \(failure)") }
        results.scan = scan
    }
    results.recordSamples()
    return results
}

/// Writes a report of some scenarios alone (`--permissions-only`, `--rotation-only`) to `path`.
@MainActor
func writeOnlyReport(title: String, targets: [String], sections: [String], path: String) {
    let text =
        ([
            "# Vigil benchmark results: \(title)\n", "- Date: \(Machine.utcNow())",
            "- Machine: Linux \(Machine.kernelRelease()), \(Machine.processors()) CPUs (nproc), \(Machine.cpuModel())",
            "- Swift: \(Machine.swiftVersion(scratch: "/tmp"))", "- Command: `\(command)`",
            "- Vigil binary: `\(vigilPath)` (release)\n", "## Targets\n", "| target | required | measured | met |",
            "|---|---|---|---|",
        ]
        + targets + [""] + sections).joined(separator: "\n") + "\n"
    mkdir(benchmarksDirectory + "/out", 0o755)
    if LogCorpus.write(text, to: path) { print("vigil-bench: wrote \(path)") }
}

/// The rotation scenario: its log lives under $TMPDIR (1 GiB, and a copy per tool) and is removed after.
@MainActor
func runRotationScenario() -> RotationResult {
    let bytes = rotationBytesOverride ?? (quick ? 32 << 20 : 1 << 30)
    let rotationRounds = quick ? 1 : 3
    let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    print(
        "rotation: a \(bytes)-byte log rotated and compressed by vigil, gzip -6 and logrotate, \(rotationRounds) round\(rotationRounds == 1 ? "" : "s")…"
    )
    let result = RotationBench.run(
        vigil: vigilPath,
        bytes: bytes,
        rounds: rotationRounds,
        directory: "\(base)/vigil-bench-rotation-\(getpid())",
        provenance: provenance,
        filesystem: FileSystemType.name(of: base),
        quick: quick,
        keepCapabilities: rotationKeepCapabilities
    )
    for problem in result.problems { print("rotation: \(problem)") }
    result.recordSamples()
    return result
}

/// The alert delivery scenario (issue 6): latency to each remote sink, then a burst.
@MainActor
func runDeliveryScenario() -> DeliveryResult {
    let trials = deliveryTrialsOverride ?? (quick ? 10 : 200)
    let burst = quick ? 1_000 : 10_000
    print(
        "delivery: \(trials) alerts one at a time to syslog, e-mail, a webhook and Alertmanager, then a burst of \(burst)…"
    )
    let result = DeliveryBench.run(vigil: vigilPath, trials: trials, burst: burst)
    for sink in DeliveryResult.sinks {
        let s = LatencySummary(result.latencies[sink, default: []])
        let burstTime = (result.burstNanoseconds[sink] ?? nil).map { "\(milliseconds($0)) ms" } ?? "–"
        print(
            "delivery: \(sink): "
                + (s.map { "p50 \(milliseconds($0.p50)) ms, p99 \(milliseconds($0.p99)) ms, \($0.count) samples" }
                    ?? "no samples")
                + "; burst of \(result.burst) all delivered after \(burstTime), \(result.burstMissing[sink] ?? 0) missing"
        )
    }
    for failure in result.failures.prefix(5) { print("delivery: \(failure)") }
    result.recordSamples()
    return result
}

/// The system-health scenarios (issue 7): a filesystem crossing 85 % and a new listener, against poll loops.
@MainActor
func runSystemScenario() -> SystemHealthResult {
    let trials = systemTrialsOverride ?? (quick ? 2 : 100)
    print("system health: \(trials) tmpfs crossings and \(trials) new listeners, against df and ss poll loops…")
    let result = SystemHealthBench.run(vigil: vigilPath, trials: trials)
    for (name, samples) in [
        ("disk → alert", result.diskVigil), ("disk peer", result.diskPeer), ("listen → alert", result.listenVigil),
        ("listen peer", result.listenPeer), ("program listens → alert", result.execListenVigil),
    ] {
        let s = LatencySummary(samples)
        print(
            "system health: \(name): "
                + (s.map { "p50 \(milliseconds($0.p50)) ms, p99 \(milliseconds($0.p99)) ms, \($0.count) samples" }
                    ?? "no samples")
        )
    }
    for failure in result.failures.prefix(5) { print("system health: \(failure)") }
    result.recordSamples()
    return result
}

if systemOnly {
    let system = runSystemScenario()
    writeOnlyReport(
        title: "system health only",
        targets: [],
        sections: system.markdown(provenance: provenance),
        path: resultsPath ?? benchmarksDirectory + (quick ? "/out/RESULTS-system-quick.md" : "/out/RESULTS-system.md")
    )
    exit(system.detectedEverything ? 0 : 1)
}

/// The process thresholds scenario (issue 7): vigil's CPU sampling 1,000 processes every second, and its
/// wake-ups with no threshold rule loaded. Quick: 300 processes, 2 s of sampling and 1 s idle instead of 30 s
/// and 10 s.
@MainActor
func runThresholdScenario() -> ThresholdResult {
    let (sampling, idle) = quick ? (2, 1) : (30, 10)
    let processes = quick ? 300 : 1000
    print(
        "thresholds: \(processes) sleeping processes, vigil sampling them for \(sampling) s, then \(idle) s without threshold rules…"
    )
    let result = ThresholdBench.run(
        vigil: vigilPath,
        processes: processes,
        samplingSeconds: sampling,
        idleSeconds: idle,
        settleMilliseconds: quick ? 500 : 2_000
    )
    for line in result.lines() { print(line) }
    return result
}

if thresholdsOnly {
    let thresholds = runThresholdScenario()
    writeOnlyReport(
        title: "process thresholds only",
        targets: [],
        sections: ["## Process thresholds\n"] + thresholds.lines().map { "- " + $0 },
        path: resultsPath
            ?? benchmarksDirectory + (quick ? "/out/RESULTS-thresholds-quick.md" : "/out/RESULTS-thresholds.md")
    )
    exit(thresholds.failures.isEmpty ? 0 : 1)
}

/// Hot reload under load (issue 8): 100 saves of a rule file (quick: 8), half of them broken, under
/// 10,000 events a second (quick: 5,000).
@MainActor
func runReloadScenario() -> ReloadResult {
    let settings = ReloadStorm.Settings(
        linesPerSecond: quick ? 4500 : 9000,
        reloads: reloadsOverride ?? (quick ? 8 : 100)
    )
    print(
        "reload: \(settings.reloads) saves of a rule file under \(settings.linesPerSecond + settings.linesPerSecond / 10) events a second…"
    )
    let result = ReloadBench.run(vigil: vigilPath, settings: settings)
    for line in result.lines() { print(line) }
    result.recordSamples()
    return result
}

/// The pipeline burst: vigil and inotifywait, results printed.
@MainActor
func runPipelineScenario() -> [PipelineResult] {
    print("pipeline: a burst of \(pipelineFiles) file creations…")
    let results = PipelineBench.run(vigil: vigilPath, files: pipelineFiles)
    for line in results.lines() { print(line) }
    return results
}

if idleOnly {
    print("idle: measuring \(idleSeconds) s, vigil and the peer daemons…")
    let idle = runIdle(vigil: vigilPath, rules: rulesDirectory, seconds: idleSeconds)
    for line in idle.peerLines() { print(line) }
    let pipeline = runPipelineScenario()
    writeOnlyReport(
        title: "idle cost and pipeline only",
        targets: [],
        sections: ["## Idle cost\n"] + idle.vigilLines() + idle.peerMarkdown() + [""] + pipeline.markdown(),
        path: resultsPath ?? benchmarksDirectory + (quick ? "/out/RESULTS-idle-quick.md" : "/out/RESULTS-idle.md")
    )
    exit(idle.failures.isEmpty && pipeline.detectedEverything ? 0 : 1)
}

if reloadOnly {
    let reload = runReloadScenario()
    writeOnlyReport(
        title: "hot reload only",
        targets: [],
        sections: ["## Hot reload under load\n"] + reload.lines().map { "- " + $0 },
        path: resultsPath ?? benchmarksDirectory + (quick ? "/out/RESULTS-reload-quick.md" : "/out/RESULTS-reload.md")
    )
    exit(reload.detectedEverything ? 0 : 1)
}

if deliveryOnly {
    let delivery = runDeliveryScenario()
    writeOnlyReport(
        title: "alert delivery only",
        targets: [],
        sections: delivery.markdown(provenance: provenance),
        path: resultsPath
            ?? benchmarksDirectory + (quick ? "/out/RESULTS-delivery-quick.md" : "/out/RESULTS-delivery.md")
    )
    exit(delivery.detectedEverything ? 0 : 1)
}

if rotationOnly {
    let rotation = runRotationScenario()
    writeOnlyReport(
        title: "rotation and compression only",
        targets: rotation.targetRows(),
        sections: rotation.markdown(),
        path: resultsPath
            ?? benchmarksDirectory + (quick ? "/out/RESULTS-rotation-quick.md" : "/out/RESULTS-rotation.md")
    )
    if !rotation.detectedEverything {
        print("vigil-bench: FAILED: \(rotation.problems.joined(separator: "; "))")
        exit(1)
    }
    exit(0)
}

if permissionsOnly {
    let permissions = runPermissionScenarios()
    writeOnlyReport(
        title: "mode and owner rules only",
        targets: permissions.targetRows(),
        sections: permissions.markdown(),
        path: resultsPath
            ?? benchmarksDirectory + (quick ? "/out/RESULTS-permissions-quick.md" : "/out/RESULTS-permissions.md")
    )
    if !permissions.detectedEverything {
        print("vigil-bench: FAILED: \(permissions.failures.joined(separator: "; "))")
        exit(1)
    }
    exit(0)
}

/// Process death against its peers, then the burst; printed as they end.
@MainActor
func runProcessScenarios() -> (ProcessDeathResults, BurstResult) {
    print("process death: \(killCount) kills per subject in \(rounds) round\(rounds == 1 ? "" : "s")…")
    let death = runProcessDeath(vigil: vigilPath, trials: killCount, rounds: rounds)
    for result in death.everyone {
        let s = LatencySummary(result.latencies)
        let figures =
            s.map { "p50 \(milliseconds($0.p50)) ms, p99 \(milliseconds($0.p99)) ms, max \(milliseconds($0.max)) ms" }
            ?? "no samples"
        print(
            "process death: \(result.subject): \(result.latencies.count)/\(result.expected) seen, \(result.missed) missed, \(result.doubled) doubled, \(result.wrongFields) wrong; \(figures)"
                + (result.failures.isEmpty ? "" : "; problems: \(result.failures.joined(separator: "; "))")
        )
    }
    print("process burst: \(burstCount) processes…")
    let b = runBurst(vigil: vigilPath, processes: burstCount)
    print(
        "process burst: \(milliseconds(b.wallNanoseconds)) ms; vq-burst alerted \(b.alerted)/\(b.standIns), one at a time \(b.sequentialAlerted)/\(b.sequentialRuns), lost-event alerts \(b.lostEventAlerts), losses \(b.losses.map(String.init) ?? "not stated"), alive \(b.alive), VmRSS \(b.before?.rssKiB ?? 0) → \(b.settled?.rssKiB ?? 0) KiB, VmHWM \(b.settled?.hwmKiB ?? 0) KiB"
            + (b.failures.isEmpty ? "" : "; problems: \(b.failures.joined(separator: "; "))")
    )
    return (death, b)
}

if processOnly {
    let (death, burst) = runProcessScenarios()
    writeOnlyReport(
        title: "process death and burst only",
        targets: death.targetRows() + burst.targetRows(),
        sections: death.markdown() + burst.markdown(),
        path: resultsPath
            ?? benchmarksDirectory + (quick ? "/out/RESULTS-process-quick.md" : "/out/RESULTS-process.md")
    )
    exit(death.detectedEverything && burst.detectedEverything ? 0 : 1)
}

print(
    "vigil-bench: \(flipCount) flips in \(rounds) round\(rounds == 1 ? "" : "s"), \(idleSeconds) s idle; vigil at '\(vigilPath)'"
)
ScenarioClock.start()
let (vigil, peers) = runDriftRounds(tmpfs: false)
print(summaryLine(vigil))
for result in peers { print(summaryLine(result)) }

// The same flips with the sandbox on tmpfs: the filesystem's own cost of a truncating write or a rename
// (ext4 flushes the data of a file replaced that way) leaves the path, which shows what the watcher adds.
var onTmpfs: [DriftResult] = []
if isTmpfs("/dev/shm") {
    let (vigilOnTmpfs, peersOnTmpfs) = runDriftRounds(tmpfs: true)
    onTmpfs = [vigilOnTmpfs] + peersOnTmpfs
    for result in onTmpfs { print("on tmpfs: " + summaryLine(result)) }
}
ScenarioClock.lap("config drift")

var processDeath: ProcessDeathResults?
var burst: BurstResult?
if processScenarios {
    (processDeath, burst) = runProcessScenarios()
}
ScenarioClock.lap("process death and burst")

let logs: LogResults? = logScenarios ? runLogScenarios() : nil
ScenarioClock.lap("logs")

let permissions: PermissionResults? = permissionScenarios ? runPermissionScenarios() : nil
if let permissions, !permissions.detectedEverything {
    print("mode and owner: FAILED: \(permissions.failures.joined(separator: "; "))")
}
ScenarioClock.lap("mode and owner")

let rotation: RotationResult? = rotationScenario ? runRotationScenario() : nil
ScenarioClock.lap("rotation")

let delivery: DeliveryResult? = deliveryScenario ? runDeliveryScenario() : nil
ScenarioClock.lap("delivery")

let system: SystemHealthResult? = systemScenario ? runSystemScenario() : nil
ScenarioClock.lap("system health")
// Printed here; the lead adds the figures to RESULTS.md.
let thresholds: ThresholdResult? = thresholdScenario ? runThresholdScenario() : nil
ScenarioClock.lap("thresholds")
let reload: ReloadResult? = reloadScenario ? runReloadScenario() : nil
ScenarioClock.lap("reload")

print("idle: measuring \(idleSeconds) s…")
let idle = runIdle(vigil: vigilPath, rules: rulesDirectory, seconds: idleSeconds)
if idle.failures.isEmpty {
    print(
        "idle: \(milliseconds(idle.cpuNanosecondsFromSchedstat)) ms CPU (schedstat), \(idle.cpuMillisecondsFromTicks) ms (ticks), \(idle.wakeups) context switches, VmRSS \(idle.after.rssKiB) KiB, VmHWM \(idle.after.hwmKiB) KiB"
    )
    if let (before, after) = idle.eventOnly {
        print(
            "idle, event-only rules: \(milliseconds(after.runNanoseconds &- before.runNanoseconds)) ms CPU (schedstat), \(after.contextSwitches - before.contextSwitches) context switches"
        )
    }
} else {
    print("idle: \(idle.failures.joined(separator: "; "))")
}
ScenarioClock.lap("idle")

for line in idle.peerLines() { print(line) }
let pipeline = runPipelineScenario()

var throughput: ThroughputResult?
if throughputScenario {
    let result = runThroughputScenario()
    for failure in result.failures { print("throughput: \(failure)") }
    throughput = result
}
ScenarioClock.lap("throughput")
print("vigil-bench: scenario times: \(ScenarioClock.summary())")

let scratch = "/tmp"
let report = Report(
    command: command,
    quick: quick,
    flips: flipCount,
    vigilPath: vigilPath,
    vigil: vigil,
    peers: peers,
    idle: idle,
    scratch: scratch,
    onTmpfs: onTmpfs,
    processDeath: processDeath,
    burst: burst,
    throughput: throughput,
    logs: logs,
    permissions: permissions,
    rotation: rotation,
    delivery: delivery,
    system: system,
    thresholds: thresholds,
    reload: reload,
    pipeline: pipeline
)
let text = report.markdown()
let directory = String(results[..<(results.lastIndex(of: "/") ?? results.startIndex)])
if !directory.isEmpty { mkdir(directory, 0o755) }
let fd = open(results, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
if fd >= 0 {
    let bytes = Array(text.utf8)
    do {
        try bytes.withUnsafeBytes { raw in try Syscall.writeAll(fd, raw) }
    } catch {
        print("vigil-bench: Failed to write '\(results)': \(error)")
    }
    close(fd)
    print("vigil-bench: wrote \(results)")
} else {
    print("vigil-bench: Failed to write '\(results)': errno \(errno)")
}

let detectionFailed =
    !([vigil] + peers + onTmpfs).allSatisfy(\.detectedEverything) || !idle.failures.isEmpty
    || !(processDeath?.detectedEverything ?? true) || !(burst?.detectedEverything ?? true)
    || !(throughput?.detectedEverything ?? true)
    || !(logs?.detectedEverything ?? true) || !(permissions?.detectedEverything ?? true)
    || !(rotation?.detectedEverything ?? true) || !(delivery?.detectedEverything ?? true)
    || !(system?.detectedEverything ?? true) || !(thresholds?.failures.isEmpty ?? true)
    || !(reload?.detectedEverything ?? true) || !pipeline.detectedEverything
if detectionFailed { print("vigil-bench: FAILED: a scenario did not detect exactly what it should (see above)") }
exit(detectionFailed ? 1 : 0)
