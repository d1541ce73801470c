import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The cost of process thresholds (issue 7): `vigil run` with `process: any` + `above: { cpu: 80%, for: 5s }`
/// + `sample: 1s` over 1,000 sleeping processes (target ≤ 1 % of one core), and the same binary with only
/// rules that have no threshold (an `expect:` process rule and a file rule), whose idle wake-ups must be 0:
/// nothing samples unless a threshold rule is loaded. Also the sampler alone on the same 1,000 pids, with
/// kept descriptors (what the daemon does) and with open/read/close per file, and the older
/// `stat` + `statm` reads, to show where the cost goes.
struct ThresholdResult {
    /// One measured daemon run.
    struct Run {
        var seconds = 0
        var before = ProcessUsage()
        var after = ProcessUsage()
        /// Context switches per thread name over the interval (`comm` of each task).
        var wakeupsByThread: [String: Int] = [:]
        /// Processes the host forked during the interval (`processes` in /proc/stat): each one is a proc
        /// connector event that wakes vigil-proc, whatever rules are loaded.
        var hostForks = 0
        var cpuNanoseconds: UInt64 { after.runNanoseconds &- before.runNanoseconds }
        var wakeups: Int { after.contextSwitches - before.contextSwitches }
        /// CPU as a percentage of one core.
        var corePercent: Double { seconds > 0 ? Double(cpuNanoseconds) / (Double(seconds) * 1e9) * 100 : 0 }
    }

    var processes = 0
    var sampling = Run()
    var idle = Run()
    /// Rules with no timer and no process events at all (a file rule, a pressure rule, a disk rule, an
    /// escalation rule): every one waits on the kernel, so an idle host wakes vigil 0 times.
    var quiet = Run()
    /// Mean nanoseconds per sampler round over `processes` pids: kept descriptors, open/read/close, and
    /// stat + statm through ProcFS (the reads before this issue).
    var roundKept: UInt64 = 0
    var roundOpened: UInt64 = 0
    var roundStatAndStatm: UInt64 = 0
    var failures: [String] = []

    /// Lines for the console and the report.
    func lines() -> [String] {
        func threads(_ run: Run) -> String {
            run.wakeupsByThread.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        return [
            "thresholds: sampler round over \(processes) processes: \(milliseconds(roundKept)) ms with kept descriptors (pread), \(milliseconds(roundOpened)) ms with open/read/close, \(milliseconds(roundStatAndStatm)) ms reading stat + statm",
            "thresholds: vigil with process: any, above: { cpu: 80%, for: 5s }, sample: 1s over \(processes) sleeping processes: \(milliseconds(sampling.cpuNanoseconds)) ms CPU in \(sampling.seconds) s = \(percent(sampling.corePercent)) of one core (target ≤ 1 %); ticks \(sampling.after.ticks - sampling.before.ticks); \(sampling.wakeups) context switches (\(threads(sampling))); host forks \(sampling.hostForks); VmRSS \(sampling.after.rssKiB) KiB",
            "thresholds: vigil without threshold rules (expect: + file rule), idle \(idle.seconds) s: \(idle.wakeups) context switches (\(threads(idle))), \(milliseconds(idle.cpuNanoseconds)) ms CPU; host forks meanwhile \(idle.hostForks) (each wakes vigil-proc through the proc connector)",
            "thresholds: vigil with event-only rules (file, pressure, disk, escalation; no process rule), idle \(quiet.seconds) s: \(quiet.wakeups) context switches (\(threads(quiet))), \(milliseconds(quiet.cpuNanoseconds)) ms CPU",
        ]
            + (sampling.corePercent > 1
                ? [
                    "thresholds: note: sampling cost \(percent(sampling.corePercent)) of one core is above the 1 % target"
                ]
                : []) + failures.map { "thresholds: problem: \($0)" }
    }

    private func percent(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100) %"
    }
}

enum ThresholdBench {
    static let samplingRules = """
        - rule: cpu-hog
          severity: warning
          process: any
          above: { cpu: 80%, for: 5s }
          sample: 1s

        """

    static let quietRules = """
        - rule: passwd-written
          file: /etc/passwd
          on: [written]
        - rule: memory-pressure
          pressure: memory
          stall: 10%
          within: 10s
        - rule: disk-usage
          disk: /
          above: 99.9%
        - rule: root-runs-user-writable
          escalation: [cron]

        """

    static let plainRules = """
        - rule: sshd-running
          process: { name: sshd }
          expect: running
        - rule: passwd-written
          file: /etc/passwd
          on: [written]

        """

    /// Starts `processes` sleepers, measures the sampler alone, then vigil with and without a threshold rule;
    /// each vigil is left `settleMilliseconds` after READY first (its start-up is not what is measured).
    static func run(
        vigil: String,
        processes: Int,
        samplingSeconds: Int,
        idleSeconds: Int,
        settleMilliseconds: Int = 2_000
    ) -> ThresholdResult {
        var result = ThresholdResult(processes: processes)
        var sleepers: [Int32] = []
        defer {
            for pid in sleepers { kill(pid, SIGKILL) }
            for pid in sleepers { _ = try? Spawn.wait(pid) }
        }
        for _ in 0..<processes {
            guard let pid = try? Spawn.start("/bin/sleep", arguments: ["3600"], streams: .null) else {
                result.failures.append(
                    "could not start sleeper \(sleepers.count + 1): \(String(cString: strerror(errno)))"
                )
                return result
            }
            sleepers.append(pid)
        }
        measureSampler(&result, pids: sleepers)
        do {
            let sandbox = try SeedSandbox(label: "bench-thresholds")
            defer { sandbox.remove() }
            try sandbox.makeDirectories("/bench")
            try sandbox.write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
            try sandbox.write("/bench/sampling.yaml", samplingRules)
            try sandbox.write("/bench/plain.yaml", plainRules)
            try sandbox.write("/bench/quiet.yaml", quietRules)
            let work = sandbox.hostPath("/bench")
            result.sampling = try measure(
                vigil: vigil,
                rules: work + "/sampling.yaml",
                sandbox: sandbox,
                work: work,
                seconds: samplingSeconds,
                settleMilliseconds: settleMilliseconds
            )
            result.idle = try measure(
                vigil: vigil,
                rules: work + "/plain.yaml",
                sandbox: sandbox,
                work: work,
                seconds: idleSeconds,
                settleMilliseconds: settleMilliseconds
            )
            result.quiet = try measure(
                vigil: vigil,
                rules: work + "/quiet.yaml",
                sandbox: sandbox,
                work: work,
                seconds: idleSeconds,
                settleMilliseconds: settleMilliseconds
            )
        } catch {
            result.failures.append(error.description)
        }
        return result
    }

    /// Mean round time of the sampler over `pids`, three ways (five rounds each after a first).
    private static func measureSampler(_ result: inout ThresholdResult, pids: [Int32]) {
        let rounds = 5
        func timed(_ body: () -> Void) -> UInt64 {
            body()  // the first round opens descriptors and has no CPU figures
            let start = Clock.monotonicNanoseconds()
            for _ in 0..<rounds { body() }
            return (Clock.monotonicNanoseconds() - start) / UInt64(rounds)
        }
        let kept = ProcessSampler()
        result.roundKept = timed { _ = kept.sample(pids) }
        let opened = ProcessSampler(keepDescriptors: false)
        result.roundOpened = timed { _ = opened.sample(pids) }
        let procfs = ProcFS()
        result.roundStatAndStatm = timed {
            for pid in pids {
                _ = procfs.stat(pid)
                _ = procfs.statm(pid)
            }
        }
    }

    /// Starts vigil with `rules`, waits `settleMilliseconds` for it to settle, then measures it for `seconds`.
    private static func measure(
        vigil: String,
        rules: String,
        sandbox: SeedSandbox,
        work: String,
        seconds: Int,
        settleMilliseconds: Int
    ) throws(HarnessError) -> ThresholdResult.Run {
        let daemon = try DaemonProcess(
            executable: vigil,
            arguments: ["--rules", rules, "--root", sandbox.root, "--alerts", work + "/alerts.jsonl"],
            workDirectory: work
        )
        defer { _ = daemon.stop() }
        pause(milliseconds: settleMilliseconds)
        let pid = daemon.process.pid
        guard let before = ProcessUsage.read(pid) else { throw HarnessError("/proc/\(pid) unreadable after READY") }
        let threadsBefore = threadSwitches(pid)
        let forksBefore = hostForks()
        // The wait is the measurement: the daemon is left alone for the interval.
        pause(milliseconds: seconds * 1_000)
        guard let after = ProcessUsage.read(pid) else {
            throw HarnessError("vigil exited during the measurement; its log:\n\(daemon.log())")
        }
        var run = ThresholdResult.Run(seconds: seconds, before: before, after: after)
        run.hostForks = hostForks() - forksBefore
        for (name, count) in threadSwitches(pid) {
            let delta = count - (threadsBefore[name] ?? 0)
            if delta != 0 { run.wakeupsByThread[name] = delta }
        }
        return run
    }

    /// Context switches (voluntary + nonvoluntary) per thread name.
    private static func threadSwitches(_ pid: Int32) -> [String: Int] {
        var counts: [String: Int] = [:]
        guard let dir = opendir("/proc/\(pid)/task") else { return counts }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard Int(tid) != nil, let status = ProcFile.readText("/proc/\(pid)/task/\(tid)/status") else { continue }
            let name = status.split(separator: "\n").first { $0.hasPrefix("Name:") }.map {
                String($0.dropFirst(5).drop { $0 == " " || $0 == "\t" })
            }
            counts[name ?? tid, default: 0] +=
                (ProcessUsage.field(status, "voluntary_ctxt_switches:") ?? 0)
                + (ProcessUsage.field(status, "nonvoluntary_ctxt_switches:") ?? 0)
        }
        return counts
    }

    /// `processes` of /proc/stat: forks since boot.
    private static func hostForks() -> Int {
        guard let text = ProcFile.readText("/proc/stat") else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("processes ") {
            return Int(line.dropFirst(10)) ?? 0
        }
        return 0
    }
}

extension String {
    /// The string without `prefix` at its start (itself when it does not start with it).
    func replacingPrefix(_ prefix: String) -> String {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self
    }
}
