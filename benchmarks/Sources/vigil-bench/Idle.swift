import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// What a process has used so far, from /proc.
struct ProcessUsage {
    /// utime + stime of the whole thread group, in clock ticks (`/proc/PID/stat` fields 14 and 15).
    var ticks: Int = 0
    /// Time on CPU summed over the threads, in ns (`/proc/PID/task/TID/schedstat`, first field).
    var runNanoseconds: UInt64 = 0
    /// voluntary + nonvoluntary context switches summed over the threads (`/proc/PID/task/TID/status`).
    var contextSwitches: Int = 0
    var threads: Int = 0
    /// `VmRSS` and `VmHWM` in KiB (`/proc/PID/status`).
    var rssKiB: Int = 0
    var hwmKiB: Int = 0

    /// Reads the usage of `pid`; nil when it is gone.
    static func read(_ pid: Int32) -> ProcessUsage? {
        guard let stat = ProcFile.readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm)" the fields start at 3 (state): utime is field 14, stime field 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let utime = Int(fields[11]), let stime = Int(fields[12]) else { return nil }
        var usage = ProcessUsage()
        usage.ticks = utime + stime
        if let status = ProcFile.readText("/proc/\(pid)/status") {
            usage.rssKiB = field(status, "VmRSS:") ?? 0
            usage.hwmKiB = field(status, "VmHWM:") ?? 0
        }
        // /proc/PID/status counts the context switches of the main thread only: add up every thread's.
        guard let dir = opendir("/proc/\(pid)/task") else { return nil }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard Int(tid) != nil else { continue }
            usage.threads += 1
            if let status = ProcFile.readText("/proc/\(pid)/task/\(tid)/status") {
                usage.contextSwitches +=
                    (field(status, "voluntary_ctxt_switches:") ?? 0)
                    + (field(status, "nonvoluntary_ctxt_switches:") ?? 0)
            }
            if let schedstat = ProcFile.readText("/proc/\(pid)/task/\(tid)/schedstat"),
                let first = schedstat.split(separator: " ").first, let ns = UInt64(first)
            {
                usage.runNanoseconds += ns
            }
        }
        return usage
    }

    /// The integer after `name` on its line of a /proc status file.
    static func field(_ text: String, _ name: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let rest = line.dropFirst(name.count).drop(while: { $0 == " " || $0 == "\t" })
            return Int(rest.prefix(while: \.isNumber))
        }
        return nil
    }
}

/// Idle cost of `vigil run` with the seed rules: CPU and wake-ups over `seconds` with nothing happening,
/// and the same for each peer daemon watching the same seed files over the same window.
struct IdleResult {
    var seconds = 0
    var before = ProcessUsage()
    var after = ProcessUsage()
    var failures: [String] = []
    /// The peers, measured over the same window (empty with `peers: false`).
    var peers: [PeerIdle] = []
    /// The same window with event-only rules: the seed rules less those that sample on a timer
    /// (`idleSamplingRules`, disabled through a local rule file). Nil when not measured.
    var eventOnly: (before: ProcessUsage, after: ProcessUsage)?

    var cpuMillisecondsFromTicks: Double {
        Double(after.ticks - before.ticks) * 1_000 / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
    var cpuNanosecondsFromSchedstat: UInt64 { after.runNanoseconds &- before.runNanoseconds }
    var wakeups: Int { after.contextSwitches - before.contextSwitches }
}

/// The seed rules that poll by design: `above:` rules sample CPU and memory every `sample:` (1 s), and
/// `listening:` rules reread the sockets every 500 ms. The event-only idle window disables them.
let idleSamplingRules = ["cpu-hog", "memory-hog", "unexpected-listener", "postgres-listening"]

/// Starts vigil (to READY) on a seed sandbox and reads its usage before and after `seconds` of nothing
/// happening. Then, with `peers`, stops it and starts every peer daemon on the same sandbox, gives them 1 s
/// to settle and measures them over a window as long. One after the other, so that neither side hears the
/// other (vigil watches processes; Monit reads the config every second).
func runIdle(vigil: String, rules: String, seconds: Int, peers withPeers: Bool = true) -> IdleResult {
    var result = IdleResult(seconds: seconds)
    do {
        let sandbox = try SeedSandbox(label: "bench-idle")
        defer { sandbox.remove() }
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
        do {
            let daemon = try DaemonProcess(
                executable: vigil,
                arguments: ["--rules", rules, "--root", sandbox.root, "--alerts", work + "/alerts.jsonl"],
                workDirectory: work
            )
            defer { daemon.stop() }
            guard let before = ProcessUsage.read(daemon.process.pid) else {
                result.failures.append("idle: /proc/\(daemon.process.pid) could not be read after READY")
                return result
            }
            // The wait is the measurement: the daemon is left alone for the interval.
            pause(milliseconds: seconds * 1_000)
            guard let after = ProcessUsage.read(daemon.process.pid) else {
                result.failures.append("idle: vigil exited during the idle interval; its log:\n\(daemon.log())")
                return result
            }
            result.before = before
            result.after = after
        }
        // Event-only: the same rules less the sampling ones, disabled by id as an admin would.
        let local = work + "/local.d"
        mkdir(local, 0o755)
        try FileSaves.inPlace(
            local + "/idle-event-only.yaml",
            "# vigil-bench, idle: the seed rules without the ones that sample on a timer.\n- disable: ["
                + idleSamplingRules.joined(separator: ", ") + "]\n"
        )
        do {
            let daemon = try DaemonProcess(
                executable: vigil,
                arguments: [
                    "--rules", rules, "--local-rules", local, "--root", sandbox.root, "--alerts",
                    work + "/alerts-event-only.jsonl",
                ],
                workDirectory: work
            )
            defer { daemon.stop() }
            if let before = ProcessUsage.read(daemon.process.pid) {
                // The wait is the measurement, as above.
                pause(milliseconds: seconds * 1_000)
                if let after = ProcessUsage.read(daemon.process.pid) { result.eventOnly = (before, after) }
            }
            if result.eventOnly == nil {
                result.failures.append("idle (event-only rules): vigil exited; its log:\n\(daemon.log())")
            }
        }
        guard withPeers else { return result }
        let peers = IdlePeers(sandbox: sandbox)
        defer { peers.stop() }
        // Settling time for the peers (start-up reads, the first Monit cycle), not a synchronisation.
        pause(milliseconds: 1_000)
        let peersBefore = peers.read()
        pause(milliseconds: seconds * 1_000)
        result.peers = peers.results(before: peersBefore, after: peers.read(), sandbox: sandbox)
    } catch {
        result.failures.append("idle: \(error.description)")
    }
    return result
}

extension IdleResult {
    /// One console line per peer.
    func peerLines() -> [String] {
        peers.map { peer in
            "idle: \(peer.subject): "
                + (peer.failure
                    ?? "\(milliseconds(peer.cpuNanoseconds)) ms CPU, \(peer.wakeups) wake-ups, \(peer.after.threads) threads, VmRSS \(peer.after.rssKiB) KiB")
        }
    }

    /// vigil's own row, for the idle-only report.
    func vigilLines() -> [String] {
        failures.isEmpty
            ? [
                "vigil over \(seconds) s: \(milliseconds(cpuNanosecondsFromSchedstat)) ms CPU (schedstat), \(wakeups) wake-ups, "
                    + "\(after.threads) threads, VmRSS \(after.rssKiB) KiB, VmHWM \(after.hwmKiB) KiB."
            ]
                + (eventOnly.map { (before, after) in
                    [
                        "vigil with event-only rules (\(idleSamplingRules.joined(separator: ", ")) disabled) over \(seconds) s: \(milliseconds(after.runNanoseconds &- before.runNanoseconds)) ms CPU (schedstat), \(after.contextSwitches - before.contextSwitches) wake-ups."
                    ]
                } ?? []) : ["Failed: \(failures.joined(separator: "; "))"]
    }

    /// The peers' table: each against vigil over the same window (ratios are peer ÷ vigil).
    func peerMarkdown() -> [String] {
        guard !peers.isEmpty else { return [] }
        var out = [
            "",
            "Peers over a window as long (\(seconds) s), right after vigil's, all started together in the same sandbox and "
                + "watching the same seed files (config directory, unified log), given 1 s to settle first. A peer's figures add up its process "
                + "tree (VmHWM: the sum of each process's peak). Ratios are peer ÷ vigil. forkstat hears every process "
                + "exit on the machine, so its cost grows with whatever else runs; fail2ban's `backend = auto` picks pyinotify "
                + "when python3-pyinotify is installed (polling otherwise); Monit wakes every second by design.",
            "",
            "| subject | command | CPU over the window (schedstat) | wake-ups | threads | VmRSS | VmHWM | CPU ÷ vigil | wake-ups ÷ vigil | VmRSS ÷ vigil |",
            "|---|---|---|---|---|---|---|---|---|---|",
            "| vigil | `vigil run --rules rules/` | \(milliseconds(cpuNanosecondsFromSchedstat)) ms | \(wakeups) | \(after.threads) | \(after.rssKiB) KiB | \(after.hwmKiB) KiB | 1 | 1 | 1 |",
        ]
        func ratio(_ peer: Double, _ vigil: Double) -> String {
            guard vigil > 0 else { return "–" }
            let tenths = Int((peer / vigil * 10).rounded())
            return "\(tenths / 10).\(tenths % 10)×"
        }
        for peer in peers {
            guard peer.failure == nil else {
                out.append("| \(peer.subject) | `\(peer.command)` | \(peer.failure ?? "") | | | | | | | |")
                continue
            }
            out.append(
                "| \(peer.subject) | `\(peer.command.replacingPipes())` | \(milliseconds(peer.cpuNanoseconds)) ms | \(peer.wakeups) | \(peer.after.threads) | \(peer.after.rssKiB) KiB | \(peer.after.hwmKiB) KiB | \(ratio(Double(peer.cpuNanoseconds), Double(cpuNanosecondsFromSchedstat))) | \(ratio(Double(peer.wakeups), Double(wakeups))) | \(ratio(Double(peer.after.rssKiB), Double(after.rssKiB))) |"
            )
        }
        return out
    }
}
