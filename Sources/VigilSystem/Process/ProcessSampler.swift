#if canImport(Glibc)
import Glibc
#endif

/// CPU and memory of a set of processes between two samples: every selected process of a threshold rule
/// at every `sample:` period, so up to thousands of pids a second.
///
/// CPU is the growth of `utime + stime` (`/proc/PID/stat` fields 14 and 15, in clock ticks) over the
/// `CLOCK_MONOTONIC` time between this sample and the previous one of the same process, as a percentage of
/// one core: 100 is one core busy, a process with four busy threads shows 400, as in `top`. Memory is the
/// resident set (`/proc/PID/stat` field 24, pages × page size: the counter `statm`'s second field shows)
/// and its share of `MemTotal` (`/proc/meminfo`).
///
/// Cost: one `stat` read per process per round. On a real procfs the sampler keeps each pid's
/// `/proc/PID/stat` open and `pread`s it, which spares the path walk, the open and the close (about half
/// the cost of a read on 6.18); it raises `RLIMIT_NOFILE`'s soft limit up to the hard limit for that, keeps
/// `descriptorReserve` descriptors free for the rest of the process, and opens, reads and closes the
/// pids beyond its budget (or after `EMFILE`). A kept descriptor of an exited process reads `ESRCH`, even
/// when its pid is reused, so it never reports another process. Under a proc root that is not procfs (a
/// test's hand-made tree) every read opens the file afresh.
///
/// A pid can be reused by a new process once the old one is reaped. The process's start time (stat field
/// 22, ticks since boot) tells them apart: a pid whose start time changed is a new process, with no
/// previous sample and so no `cpuPercent`, rather than an old one whose CPU time went backwards.
///
/// Only the previous sample of each pid sampled in the last round is kept; a pid left out of a round, or
/// gone, is forgotten, so the state never outgrows the largest round. The two tables are reused, so a
/// round allocates nothing once they have grown to the round's size (apart from the result array).
///
/// One instance is used by one thread at a time: it owns a `ProcFS` read buffer and its descriptors. See
/// `man 5 proc` (`/proc/pid/stat`, `/proc/meminfo`), `man 2 getrlimit`.
public final class ProcessSampler {
    /// One process at one sample.
    public struct Sample: Sendable, Equatable {
        /// The process id.
        public var pid: Int32
        /// When the process started, in clock ticks since boot (stat field 22); with the pid it names the
        /// process across pid reuse.
        public var startTime: UInt64
        /// CPU use since this process's previous sample, in percent of one core (100 = one core busy; more
        /// than 100 for a process with several busy threads). Nil on a process's first sample (including a
        /// pid reused by a new process), or when no monotonic time passed between the two samples.
        public var cpuPercent: Double?
        /// The monotonic time the `cpuPercent` figure starts from: the previous sample's time, or the
        /// process's start for a young process's first sample; the sample's own time when there is no figure.
        /// A hold ("above 80 % for 5 s") counts from here: the process was busy over the whole interval.
        public var intervalStart: UInt64 = 0
        /// The resident set size in bytes: resident pages × page size.
        public var rssBytes: UInt64
        /// `rssBytes` as a percentage of `MemTotal`; 0 when `/proc/meminfo` could not be read.
        public var memoryPercent: Double

        /// A sample with the given values.
        public init(pid: Int32, startTime: UInt64, cpuPercent: Double?, rssBytes: UInt64, memoryPercent: Double) {
            self.pid = pid
            self.startTime = startTime
            self.cpuPercent = cpuPercent
            self.rssBytes = rssBytes
            self.memoryPercent = memoryPercent
        }
    }

    /// What is kept of a process between rounds.
    private struct Previous {
        var startTime: UInt64
        var ticks: UInt64
        var nanoseconds: UInt64
    }

    private let procFS: ProcFS
    /// The last round's samples by pid.
    private var previous: [Int32: Previous] = [:]
    /// The round being built; swapped with `previous` at the end of each round, both keeping capacity.
    private var current: [Int32: Previous] = [:]

    /// Kept `/proc/PID/stat` descriptors by pid, of the pids found in the last round.
    private var descriptors: [Int32: CInt] = [:]
    /// How many descriptors may be kept; 0 when the proc root is not procfs.
    private var descriptorBudget: Int
    /// Descriptors left to the rest of the process when the budget is set from `RLIMIT_NOFILE`.
    public static let descriptorReserve = 1024
    /// `statfs(2)` magic of procfs.
    private static let procMagic: UInt = 0x9FA0

    /// How young a process must be for its first sample to carry a CPU figure (its average since it
    /// started); 0: first samples carry none. An old process's lifetime average says nothing about now
    /// (`ps`'s `%cpu` flaw), but a process started since the previous round has no other history.
    private let youngNanoseconds: UInt64

    /// A sampler reading `proc` (`/proc`, or a directory laid out like it for tests); `keepDescriptors`
    /// false opens, reads and closes every file every round (the benchmark's comparison). A process whose
    /// first sample comes within `youngNanoseconds` of its start gets its CPU use since it started (pass
    /// the sampling period, or a little more: such a process started after the previous round).
    public init(proc: String = "/proc", keepDescriptors: Bool = true, youngNanoseconds: UInt64 = 0) {
        self.youngNanoseconds = youngNanoseconds
        procFS = ProcFS(root: proc, bufferSize: 4096)
        let keep = keepDescriptors && FileSystemType.magic(of: proc) == Self.procMagic
        descriptorBudget = keep ? Self.raiseDescriptorLimit() : 0
    }

    deinit {
        for fd in descriptors.values { Syscall.close(fd) }
    }

    /// Raises the soft `RLIMIT_NOFILE` to the hard one (no privilege needed) and returns how many
    /// descriptors the sampler may keep: the soft limit less `descriptorReserve`.
    private static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        // rlim_t.max is RLIM_INFINITY.
        let soft = limit.rlim_cur == rlim_t.max ? UInt64(Int32.max) : UInt64(limit.rlim_cur)
        return max(0, Int(min(soft, UInt64(Int32.max))) - descriptorReserve)
    }

    /// How many descriptors are kept open now.
    var keptDescriptorCount: Int { descriptors.count }

    /// One process's stat: through its kept descriptor, else by opening one (kept while the budget lasts),
    /// else by open, read and close.
    private func usage(_ pid: Int32) -> ProcFS.Usage? {
        if let fd = descriptors[pid] {
            if let usage = procFS.usage(descriptor: fd) { return usage }
            // Exited (ESRCH), perhaps with the pid already reused: drop it and look at the pid afresh.
            Syscall.close(fd)
            descriptors[pid] = nil
        }
        guard descriptors.count < descriptorBudget else { return procFS.usage(pid) }
        guard let fd = procFS.openStat(pid) else {
            if errno == EMFILE || errno == ENFILE {
                descriptorBudget = descriptors.count  // the process is out of descriptors: stop keeping
                return procFS.usage(pid)
            }
            return nil
        }
        guard let usage = procFS.usage(descriptor: fd) else {
            Syscall.close(fd)
            return nil
        }
        descriptors[pid] = fd
        return usage
    }

    /// `sysconf(_SC_CLK_TCK)`: the unit of the stat CPU times and start time (100 on every Linux
    /// architecture Vigil runs on).
    public static var clockTicksPerSecond: Int { ProcFS.clockTicksPerSecond }

    /// `sysconf(_SC_PAGESIZE)`: the unit of the resident set in `/proc/PID/stat` and `statm`.
    public static var pageSize: Int { ProcFS.pageSize }

    /// How many pids the sampler holds a previous sample for: the pids found in the last round.
    var trackedCount: Int { previous.count }

    /// Samples `pids` now, in the order given. A process that vanished (no `stat`) is left out;
    /// a zombie is kept, with its final CPU time and no resident memory. Pids not in `pids` are forgotten.
    public func sample(_ pids: [Int32]) -> [Sample] {
        let memoryTotal = procFS.memoryTotal() ?? 0
        let pageSize = UInt64(Self.pageSize)
        var samples: [Sample] = []
        samples.reserveCapacity(pids.count)
        current.removeAll(keepingCapacity: true)
        for pid in pids {
            guard let stat = usage(pid) else { continue }
            // The time is read right after stat so the ticks and the time describe the same moment even when
            // reading many pids takes a while.
            let now = Clock.monotonicNanoseconds()
            let ticks = stat.userTicks &+ stat.systemTicks
            var cpuPercent: Double?
            var intervalStart = now
            if let before = previous[pid], before.startTime == stat.startTime {
                cpuPercent = Self.cpuPercent(
                    ticks: ticks,
                    previousTicks: before.ticks,
                    nanoseconds: now,
                    previousNanoseconds: before.nanoseconds,
                    ticksPerSecond: Self.clockTicksPerSecond
                )
                if cpuPercent != nil { intervalStart = before.nanoseconds }
            } else if youngNanoseconds > 0, let age = Self.age(startTicks: stat.startTime), age <= youngNanoseconds,
                age > 0, age < now
            {
                let started = now - age
                cpuPercent = Self.cpuPercent(
                    ticks: ticks,
                    previousTicks: 0,
                    nanoseconds: now,
                    previousNanoseconds: started,
                    ticksPerSecond: Self.clockTicksPerSecond
                )
                if cpuPercent != nil { intervalStart = started }
            }
            current[pid] = Previous(startTime: stat.startTime, ticks: ticks, nanoseconds: now)
            let rss = stat.residentPages &* pageSize
            let memoryPercent = memoryTotal > 0 ? Double(rss) / Double(memoryTotal) * 100 : 0
            var sample = Sample(
                pid: pid,
                startTime: stat.startTime,
                cpuPercent: cpuPercent,
                rssBytes: rss,
                memoryPercent: memoryPercent
            )
            sample.intervalStart = intervalStart
            samples.append(sample)
        }
        swap(&previous, &current)
        // Descriptors of pids left out of this round (or gone) are closed with their previous sample.
        if descriptors.count > previous.count {
            for (pid, fd) in descriptors where previous[pid] == nil {
                Syscall.close(fd)
                descriptors[pid] = nil
            }
        }
        return samples
    }

    /// How long ago a process started, from its start time in clock ticks since boot and `CLOCK_BOOTTIME`
    /// now; nil when the clock cannot be read or the start lies in the future.
    static func age(startTicks: UInt64) -> UInt64? {
        var spec = timespec()
        guard clock_gettime(CLOCK_BOOTTIME, &spec) == 0 else { return nil }
        let bootNow = UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
        let started = ProcFS.nanosecondsSinceBoot(ticks: startTicks)
        return bootNow >= started ? bootNow - started : nil
    }

    /// CPU percent of one core from two readings of `utime + stime` (clock ticks) and the monotonic time
    /// of each. Nil when no time passed or the ticks went backwards (which the kernel never does for one
    /// process; a caller that mixed up processes gets no figure rather than a wrong one).
    static func cpuPercent(
        ticks: UInt64,
        previousTicks: UInt64,
        nanoseconds: UInt64,
        previousNanoseconds: UInt64,
        ticksPerSecond: Int
    ) -> Double? {
        guard nanoseconds > previousNanoseconds, ticks >= previousTicks, ticksPerSecond > 0 else { return nil }
        let cpuSeconds = Double(ticks - previousTicks) / Double(ticksPerSecond)
        let wallSeconds = Double(nanoseconds - previousNanoseconds) / 1e9
        return cpuSeconds / wallSeconds * 100
    }
}
