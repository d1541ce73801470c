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

/// Idle cost of `vigil run` with the seed rules: CPU and wake-ups over `seconds` with nothing happening.
struct IdleResult {
    var seconds = 0
    var before = ProcessUsage()
    var after = ProcessUsage()
    var failures: [String] = []

    var cpuMillisecondsFromTicks: Double {
        Double(after.ticks - before.ticks) * 1_000 / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
    var cpuNanosecondsFromSchedstat: UInt64 { after.runNanoseconds &- before.runNanoseconds }
    var wakeups: Int { after.contextSwitches - before.contextSwitches }
}

func runIdle(vigil: String, rules: String, seconds: Int) -> IdleResult {
    var result = IdleResult(seconds: seconds)
    do {
        let sandbox = try SeedSandbox(label: "bench-idle")
        defer { sandbox.remove() }
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
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
    } catch {
        result.failures.append("idle: \(error.description)")
    }
    return result
}
