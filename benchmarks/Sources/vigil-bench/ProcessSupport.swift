import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A small deterministic generator (SplitMix64), so that every run draws the same poll-loop phases.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound` (bound > 0); the modulo bias is negligible for the bounds used here.
    mutating func next(below bound: UInt64) -> UInt64 { next() % bound }
}

/// Sleeps for `milliseconds` (retrying after signals). Only the harness's own pacing uses this, never
/// to wait for a subject.
func pause(milliseconds: Int) {
    var request = timespec(tv_sec: milliseconds / 1_000, tv_nsec: (milliseconds % 1_000) * 1_000_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// The first executable called `name` on `$PATH` (or in /usr/sbin and /sbin, where apt puts forkstat).
func findExecutable(_ name: String) -> String? {
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") + ["/usr/sbin", "/sbin", "/usr/bin"] {
        let candidate = "\(dir)/\(name)"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
}

/// A fresh seed sandbox for one subject; when it cannot be made, the reason goes into `failures` and the
/// subject is skipped.
func freshSandbox(_ label: String, failures: inout [String]) -> SeedSandbox? {
    do {
        return try SeedSandbox(label: label)
    } catch {
        failures.append(error.description)
        return nil
    }
}

/// `vigil run --rules SANDBOX/bench/FILE --root SANDBOX` on a scenario's own rule file (written there and
/// checked first), following the alert lines of the rules' sink, SANDBOX/alerts.jsonl. Ready when it returns.
func startScenarioVigil(
    _ vigil: String,
    sandbox: SeedSandbox,
    rulesFile: String,
    rules: String
) throws(HarnessError) -> (daemon: DaemonProcess, follower: LineFollower) {
    try sandbox.makeDirectories("/bench")
    let work = sandbox.hostPath("/bench")
    let path = work + "/" + rulesFile
    try FileSaves.inPlace(path, rules)
    let follower = try LineFollower(path: sandbox.hostPath("/alerts.jsonl"))
    try checkRules(vigil: vigil, rules: path, work: work)
    let daemon = try DaemonProcess(
        executable: vigil,
        arguments: ["--rules", path, "--root", sandbox.root],
        workDirectory: work
    )
    return (daemon, follower)
}

/// `vigil check RULES` (with `--root ROOT` when given: user and group names are then looked up there):
/// fails fast, with vigil's diagnostics, when this vigil does not accept the rule file (a build without
/// process rules would otherwise be noticed only when READY=1 never comes).
func checkRules(vigil: String, rules: String, work: String, root: String? = nil) throws(HarnessError) {
    let output = work + "/check.out"
    let process = try ChildProcess(
        executable: vigil,
        arguments: ["check"] + (root.map { ["--root", $0] } ?? []) + [rules],
        standardOutput: output,
        standardError: output
    )
    guard let status = process.wait(timeoutMilliseconds: 20_000) else {
        process.signal(SIGKILL)
        _ = process.wait(timeoutMilliseconds: 2_000)
        throw HarnessError("'vigil check \(rules)' did not finish within 20 s")
    }
    guard ChildProcess.exitCode(status) == 0 else {
        throw HarnessError("vigil rejects the scenario's rules:\n\(ProcFile.readText(output) ?? "")")
    }
}

/// How busy the machine was while a subject ran: the kernel's CPU pressure (`/proc/pressure/cpu`, `some`
/// line, `total=` µs during which at least one runnable task waited for a CPU). Other work on this shared
/// 2-core VM (builds) shows here and in every subject's tail latencies.
struct CPUPressure {
    var waitingMicroseconds: UInt64 = 0
    var wallNanoseconds: UInt64 = 0

    /// `some … total=N` from /proc/pressure/cpu; nil where PSI is unavailable.
    static func total() -> UInt64? {
        guard let text = ProcFile.readText("/proc/pressure/cpu"),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("some") }),
            let field = line.split(separator: " ").first(where: { $0.hasPrefix("total=") })
        else { return nil }
        return UInt64(field.dropFirst("total=".count))
    }

    /// Runs `body` and adds its wall time and the CPU pressure during it.
    mutating func measure<T>(_ body: () -> T) -> T {
        let before = Self.total()
        let start = Clock.monotonicNanoseconds()
        let value = body()
        wallNanoseconds += Clock.monotonicNanoseconds() - start
        if let before, let after = Self.total(), after >= before { waitingMicroseconds += after - before }
        return value
    }

    /// Adds the wall time since `start` (monotonic ns) and the pressure since `before` (a `total()`).
    mutating func add(since start: UInt64, pressureBefore before: UInt64?) {
        wallNanoseconds += Clock.monotonicNanoseconds() - start
        if let before, let after = Self.total(), after >= before { waitingMicroseconds += after - before }
    }

    mutating func merge(_ other: CPUPressure) {
        waitingMicroseconds += other.waitingMicroseconds
        wallNanoseconds += other.wallNanoseconds
    }

    /// "12.3 %" of the wall time some task waited for a CPU, or "n/a".
    var share: String {
        guard wallNanoseconds > 0, Self.total() != nil else { return "n/a" }
        let tenths = Int((Double(waitingMicroseconds) * 1_000 / (Double(wallNanoseconds) / 1_000)).rounded())
        return "\(tenths / 10).\(tenths % 10) %"
    }
}

/// Ends a peer pipeline started under `setsid` (the shell is a process-group leader): SIGTERM to the whole
/// group, then SIGKILL if it has not exited within two seconds.
func stopProcessGroup(_ process: ChildProcess?) {
    guard let process else { return }
    kill(-process.pid, SIGTERM)
    if process.wait(timeoutMilliseconds: 2_000) == nil {
        kill(-process.pid, SIGKILL)
        _ = process.wait(timeoutMilliseconds: 2_000)
    }
}
