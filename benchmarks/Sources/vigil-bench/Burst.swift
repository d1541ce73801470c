import Synchronization
import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// Scenario "process burst": many short-lived processes at once while `vigil run` watches for the exit of
// one name. Every 100th process is a stand-in called `vq-burst` (a copy of /bin/true), the rest /bin/true.
// Does vigil keep up (an alert for every `vq-burst` exit), report what it could not (`vigil.process_events_lost`),
// stay alive, and how much memory does it take?

/// The rule the burst exercises.
let burstRule = "vq-burst-exited"

/// Server path of the burst's stand-in inside the sandbox.
let burstStandInPath = "/usr/local/bin/vq-burst"

/// The cookie: a copy of /bin/sleep, also called `vq-burst`, that lives 100 ms, so that vigil reads its
/// details from /proc while it runs however far behind the burst left it (a `vq-burst` that is gone
/// before vigil reads /proc cannot be named, see the report).
let burstCookiePath = "/usr/local/sbin/vq-burst"

/// The alert kind vigil writes when the kernel dropped process events (netlink `ENOBUFS`).
let eventsLostKind = "vigil.process_events_lost"

/// Every `burstStandInEvery`-th spawned process is the stand-in.
let burstStandInEvery = 100

/// Threads that spawn the burst.
let burstThreads = 2

/// Children a spawning thread leaves unreaped before it waits for the oldest (a shell reaps as it goes; a
/// few in flight keep the spawner from waiting on each child in turn).
let burstReapWindow = 32

let burstRules = """
    # vigil-bench, scenario "process burst": the exit of every vq-burst among many short-lived processes.
    - sink: alerts-file
      type: jsonl
      path: /alerts.jsonl
    - rule: \(burstRule)
      severity: info
      process: { name: vq-burst }
      on: [exit]
      message: "{name} (pid {pid}) {status}"

    """

/// What the burst measured.
struct BurstResult {
    var processes = 0
    /// Stand-ins spawned (expected alerts).
    var standIns = 0
    var spawnFailures = 0
    /// First spawn error, for the report.
    var spawnError: String?
    /// First spawn → last child reaped.
    var wallNanoseconds: UInt64 = 0
    /// vigil's usage right after READY, right after the burst, and once its alerts are in.
    var before: ProcessUsage?
    var afterBurst: ProcessUsage?
    var settled: ProcessUsage?
    /// Still running after the burst (and its cookie alert came).
    var alive = false
    /// Distinct stand-in pids alerted.
    var alerted = 0
    /// After the burst: the stand-in run this many times one at a time, each reaped at once; and how many
    /// of those exits were alerted.
    var sequentialRuns = 0
    var sequentialAlerted = 0
    /// A second alert for a pid.
    var doubled = 0
    /// Alerts of the rule for a pid that was none of our stand-ins.
    var strangers = 0
    /// Alert lines of kind `vigil.process_events_lost`, and the first of them.
    var lostEventAlerts = 0
    var lostEventAlert: String?
    /// Burst end (last child reaped) → the last stand-in alert seen.
    var catchUpNanoseconds: UInt64?
    /// vigil's last "Stopped" log line, and the losses it counts (nil when the line names none).
    var stopLine: String?
    var losses: Int?
    var failures: [String] = []

    var missed: Int { standIns - alerted }
    var sequentialMissed: Int { sequentialRuns - sequentialAlerted }
    /// Every exit of a vq-burst must be alerted, in the burst and one at a time: a process reaped before its
    /// /proc entry is read at exec is named by its taskstats exit record.
    var detectedEverything: Bool {
        failures.isEmpty && alive && missed == 0 && sequentialMissed == 0 && doubled == 0 && strangers == 0
    }
}

/// Counters shared by the spawning threads.
final class BurstCounters: Sendable {
    let failed = Atomic<Int>(0)
    let firstError = Atomic<Int32>(0)
    /// Pids of the stand-ins spawned, so that alerts can be checked against them.
    let standInPids = Locked<[Int32]>([])
}

/// Spawns `total` processes from `burstThreads` threads with posix_spawn (process i is the stand-in when
/// i is a multiple of `burstStandInEvery`) and reaps them; returns the wall time, first spawn to last reap.
func spawnBurst(total: Int, standIn: String, counters: BurstCounters) -> UInt64 {
    let start = Clock.monotonicNanoseconds()
    let threads = (0..<burstThreads).map { index in
        Threads.spawn(name: "bench-spawn-\(index)") {
            spawnShare(thread: index, total: total, standIn: standIn, counters: counters)
        }
    }
    for thread in threads { Threads.join(thread) }
    return Clock.monotonicNanoseconds() - start
}

/// One thread's share of the burst: processes `thread`, `thread + burstThreads`, …
private func spawnShare(thread: Int, total: Int, standIn: String, counters: BurstCounters) {
    let standInArgv: [UnsafeMutablePointer<CChar>?] = [strdup("vq-burst"), nil]
    let trueArgv: [UnsafeMutablePointer<CChar>?] = [strdup("true"), nil]
    let emptyEnvironment: [UnsafeMutablePointer<CChar>?] = [nil]
    defer {
        free(standInArgv[0])
        free(trueArgv[0])
    }
    var outstanding: [pid_t] = []
    outstanding.reserveCapacity(burstReapWindow)
    var mine: [Int32] = []
    func reapOldest() {
        var status: Int32 = 0
        while waitpid(outstanding[0], &status, 0) < 0 && errno == EINTR {}
        outstanding.removeFirst()
    }
    var i = thread
    while i < total {
        let isStandIn = i % burstStandInEvery == 0
        var pid = pid_t()
        let rc =
            isStandIn
            ? posix_spawn(&pid, standIn, nil, nil, standInArgv, emptyEnvironment)
            : posix_spawn(&pid, "/bin/true", nil, nil, trueArgv, emptyEnvironment)
        if rc == 0 {
            outstanding.append(pid)
            if isStandIn { mine.append(pid) }
        } else {
            counters.failed.add(1, ordering: .relaxed)
            _ = counters.firstError.compareExchange(expected: 0, desired: rc, ordering: .relaxed)
        }
        if outstanding.count >= burstReapWindow { reapOldest() }
        i += burstThreads
    }
    while !outstanding.isEmpty { reapOldest() }
    counters.standInPids.withLock { $0 += mine }
}

/// Runs the burst against `vigil run --rules burst.yaml --root SANDBOX`.
func runBurst(vigil: String, processes: Int) -> BurstResult {
    var result = BurstResult(processes: processes)
    result.sequentialRuns = max(processes / 100, 1)
    guard let sandbox = freshSandbox("bench-burst", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    do {
        try sandbox.makeDirectories("/usr/local/bin")
        let standIn = sandbox.hostPath(burstStandInPath)
        try StandIn.install("/bin/true", at: standIn)
        try StandIn.install("/bin/sleep", at: sandbox.hostPath(burstCookiePath))
        let (daemon, follower) = try startScenarioVigil(
            vigil,
            sandbox: sandbox,
            rulesFile: "burst.yaml",
            rules: burstRules
        )
        var stopped = false
        defer { if !stopped { daemon.stop() } }
        let pid = daemon.process.pid
        _ = follower.drain()
        result.before = ProcessUsage.read(pid)

        let counters = BurstCounters()
        result.wallNanoseconds = spawnBurst(total: processes, standIn: standIn, counters: counters)
        let burstEnd = Clock.monotonicNanoseconds()
        result.afterBurst = ProcessUsage.read(pid)
        result.spawnFailures = counters.failed.load(ordering: .relaxed)
        let rc = counters.firstError.load(ordering: .relaxed)
        if rc != 0 { result.spawnError = String(cString: strerror(rc)) }
        let expected = Set(counters.standInPids.withLock { $0 })
        result.standIns = expected.count

        /// Starts a cookie and reads alerts until its own comes (vigil handles process events in order, so
        /// once the cookie's alert is in, every alert about what ran before it that will ever come is in).
        /// Returns the alerted pids of `expected`, and the arrival time of the last of them.
        func collect(_ expected: Set<Int32>) throws(HarnessError) -> (alerted: Set<Int32>, last: UInt64?) {
            // Reaped after the loop, so that alerts arriving meanwhile are timed as they come.
            let cookie = try ChildProcess(executable: sandbox.hostPath(burstCookiePath), arguments: ["0.1"])
            defer { _ = cookie.wait(timeoutMilliseconds: 5_000) }
            var alerted = Set<Int32>()
            var last: UInt64?
            let deadline = Clock.monotonicNanoseconds() + 30_000_000_000
            while true {
                let now = Clock.monotonicNanoseconds()
                guard now < deadline,
                    let (line, at) = follower.next(timeoutMilliseconds: Int((deadline - now) / 1_000_000))
                else {
                    result.failures.append("vigil: the cookie's exit (pid \(cookie.pid)) was not alerted within 30 s")
                    break
                }
                if JSONField.string(line, "kind") == eventsLostKind {
                    result.lostEventAlerts += 1
                    if result.lostEventAlert == nil { result.lostEventAlert = line }
                    continue
                }
                guard JSONField.string(line, "rule") == burstRule,
                    let alertedPid = JSONField.label(line, "pid").flatMap({ Int32($0) })
                else { continue }
                if alertedPid == cookie.pid { break }
                if !expected.contains(alertedPid) {
                    result.strangers += 1
                } else if !alerted.insert(alertedPid).inserted {
                    result.doubled += 1
                } else {
                    last = at
                }
            }
            return (alerted, last)
        }

        let burstAlerts = try collect(expected)
        result.alerted = burstAlerts.alerted.count
        result.catchUpNanoseconds = burstAlerts.last.map { $0 > burstEnd ? $0 - burstEnd : 0 }

        // The same stand-in, one at a time (started, then reaped at once, as a shell loop does): what is
        // missed here is missed without any load.
        var sequential = Set<Int32>()
        for _ in 0..<result.sequentialRuns {
            let child = try ChildProcess(executable: standIn, arguments: [])
            _ = child.wait(timeoutMilliseconds: 5_000)
            sequential.insert(child.pid)
        }
        result.sequentialAlerted = try collect(sequential).alerted.count
        for line in follower.drain() where JSONField.string(line, "kind") == eventsLostKind {
            result.lostEventAlerts += 1
            if result.lostEventAlert == nil { result.lostEventAlert = line }
        }
        result.settled = ProcessUsage.read(pid)
        result.alive = kill(pid, 0) == 0 && daemon.process.wait(timeoutMilliseconds: 0) == nil && result.settled != nil
        if !result.alive { result.failures.append("vigil: exited during the burst; its log:\n\(daemon.log())") }

        stopped = true
        if daemon.stop() != 0 { result.failures.append("vigil: did not stop cleanly on SIGTERM") }
        let log = daemon.log()
        result.stopLine = log.split(separator: "\n").last(where: { $0.contains("Stopped") }).map(String.init)
        result.losses = result.stopLine.flatMap { numberNear("loss", in: $0) }
    } catch {
        result.failures.append("burst: \(error.description)")
    }
    return result
}

/// The number written just before the first word starting with `word` in `line` ("3 losses", "3 process
/// event losses"), or right after it ("losses: 3", "losses=3").
func numberNear(_ word: String, in line: String) -> Int? {
    let tokens = line.split(whereSeparator: { $0 == " " || $0 == "," || $0 == ";" || $0 == "(" || $0 == ")" })
    guard let index = tokens.firstIndex(where: { $0.lowercased().hasPrefix(word) }) else { return nil }
    var j = index
    while j > tokens.startIndex && index - j < 3 {
        j -= 1
        if let n = Int(tokens[j]) { return n }
    }
    let after = tokens[index].drop(while: { !$0.isNumber })
    if let n = Int(after.prefix(while: \.isNumber)), !after.isEmpty { return n }
    if index + 1 < tokens.endIndex { return Int(tokens[index + 1].filter(\.isNumber)) }
    return nil
}

// MARK: Report

extension BurstResult {
    /// Rows for the report's Targets table.
    func targetRows() -> [String] {
        [
            "| burst of \(processes) processes: vq-burst exits alerted | all \(standIns) | \(alerted) | \(missed == 0 && standIns > 0 ? "yes" : "**no**") |",
            "| vq-burst run one at a time: exits alerted | all \(sequentialRuns) | \(sequentialAlerted) | \(sequentialMissed == 0 ? "yes" : "**no**") |",
            "| burst: vigil still running | yes | \(alive ? "yes" : "no") | \(alive ? "yes" : "**no**") |",
        ]
    }

    func markdown() -> [String] {
        var out: [String] = []
        out.append("## Process burst: \(processes) short-lived processes\n")
        out.append(
            """
            `vigil run --rules burst.yaml --root SANDBOX` watches for the exit of processes named `vq-burst`. The \
            harness spawns \(processes) processes with `posix_spawn` from \(burstThreads) threads, reaping as it \
            goes (at most \(burstReapWindow) unreaped per thread): every \(burstStandInEvery)th is the stand-in \
            `SANDBOX\(burstStandInPath)` (a copy of `/bin/true`), the rest `/bin/true`. Then a cookie, \
            `SANDBOX\(burstCookiePath) 0.1` (a copy of `/bin/sleep` by the same name, alive 100 ms): vigil \
            handles process events in order, so once the cookie's alert is in, every alert about the burst \
            that will come is in. Then the stand-in again \(sequentialRuns) times one at a time, each reaped \
            at once as a shell loop does, and a second cookie: what is missed there is missed without load.

            """
        )
        out.append("| measure | value |")
        out.append("|---|---|")
        let seconds = Double(wallNanoseconds) / 1e9
        out.append(
            "| processes spawned (failures) | \(processes - spawnFailures) (\(spawnFailures)\(spawnError.map { ": \($0)" } ?? "")) |"
        )
        out.append(
            "| burst wall time (first spawn → last reap) | \(milliseconds(wallNanoseconds)) ms (\(seconds > 0 ? Int(Double(processes) / seconds) : 0) processes/s) |"
        )
        out.append(
            "| vq-burst exits alerted, burst | \(alerted) of \(standIns) (missed \(missed), doubled \(doubled), unknown pids \(strangers)) |"
        )
        out.append(
            "| vq-burst exits alerted, one at a time afterwards | \(sequentialAlerted) of \(sequentialRuns) (missed \(sequentialMissed)) |"
        )
        out.append(
            "| burst end → last vq-burst alert seen | \(catchUpNanoseconds.map { "\(milliseconds($0)) ms" } ?? "–") |"
        )
        if let stopLine, let gone = numberNear("gone", in: stopLine) {
            let named = numberNear("named", in: stopLine).map(String.init) ?? "not stated"
            out.append(
                "| processes gone before vigil could read /proc at their exec (all processes) → named by their taskstats exit record | \(gone) → \(named) |"
            )
        }
        out.append("| `\(eventsLostKind)` alerts | \(lostEventAlerts) |")
        out.append("| losses in vigil's stop line | \(losses.map(String.init) ?? "not stated") |")
        out.append("| vigil still running afterwards | \(alive ? "yes" : "**no**") |")
        if let before, let settled {
            out.append(
                "| vigil VmRSS: after READY → after the burst → alerts in | \(before.rssKiB) → \(afterBurst?.rssKiB ?? 0) → \(settled.rssKiB) KiB |"
            )
            out.append("| vigil VmHWM (peak RSS) after | \(settled.hwmKiB) KiB |")
            out.append(
                "| vigil CPU from READY until its alerts were in (schedstat, all threads) | \(milliseconds(settled.runNanoseconds &- before.runNanoseconds)) ms |"
            )
            out.append("| vigil threads | \(settled.threads) |")
        }
        if let stopLine { out.append("| vigil's stop line | `\(stopLine.replacingPipes())` |") }
        if let lostEventAlert { out.append("| first lost-events alert | `\(lostEventAlert.replacingPipes())` |") }
        if !failures.isEmpty {
            out.append("| problems | \(failures.joined(separator: "; ").replacingPipes().replacingNewlines()) |")
        }
        out.append("")
        if (missed > 0 || sequentialMissed > 0) && lostEventAlerts == 0 && (losses ?? 0) == 0 {
            out.append(
                """
                Exits were missed while vigil reported no lost event: silent misses. vigil names a process from \
                `/proc/PID` when it handles the exec event (the kernel's exec event carries no name); a \
                `vq-burst` (a `/bin/true`) that has exited and been reaped by then is named by the kernel's \
                taskstats exit record instead. A miss here means that record was missing too: see the stop line \
                and vigil's log (`No taskstats exit records` names the cause).

                """
            )
        }
        out.append("The rule file:\n")
        out.append("```yaml")
        out.append(burstRules.trimmingTrailingNewlines())
        out.append("```\n")
        return out
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = self
        while s.hasSuffix("\n") { s.removeLast() }
        return s
    }
}
