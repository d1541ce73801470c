/// CPU and memory of a set of processes between two samples (cold path: a few pids every few seconds).
///
/// CPU is the growth of `utime + stime` (`/proc/PID/stat` fields 14 and 15, in clock ticks) over the
/// `CLOCK_MONOTONIC` time between this sample and the previous one of the same process, as a percentage of
/// one core: 100 is one core busy, a process with four busy threads shows 400, as in `top`. Memory is the
/// resident set (`/proc/PID/statm` field 2, pages × page size) and its share of `MemTotal`
/// (`/proc/meminfo`).
///
/// A pid can be reused by a new process once the old one is reaped. The process's start time (stat field
/// 22, ticks since boot) tells them apart: a pid whose start time changed is a new process, with no
/// previous sample and so no `cpuPercent`, rather than an old one whose CPU time went backwards.
///
/// Only the previous sample of each pid sampled in the last round is kept; a pid left out of a round, or
/// gone, is forgotten, so the state never outgrows the largest round. The two tables are reused, so a
/// round allocates nothing once they have grown to the round's size (apart from the result array).
///
/// One instance is used by one thread at a time: it owns a `ProcFS` read buffer. See `man 5 proc`
/// (`/proc/pid/stat`, `/proc/pid/statm`, `/proc/meminfo`).
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

    /// A sampler reading `proc` (`/proc`, or a directory laid out like it for tests).
    public init(proc: String = "/proc") {
        procFS = ProcFS(root: proc, bufferSize: 4096)
    }

    /// `sysconf(_SC_CLK_TCK)`: the unit of the stat CPU times and start time (100 on every Linux
    /// architecture Vigil runs on).
    public static var clockTicksPerSecond: Int { ProcFS.clockTicksPerSecond }

    /// `sysconf(_SC_PAGESIZE)`: the unit of `/proc/PID/statm`.
    public static var pageSize: Int { ProcFS.pageSize }

    /// How many pids the sampler holds a previous sample for: the pids found in the last round.
    var trackedCount: Int { previous.count }

    /// Samples `pids` now, in the order given. A process that vanished (no `stat` or `statm`) is left out;
    /// a zombie is kept, with its final CPU time and no resident memory. Pids not in `pids` are forgotten.
    public func sample(_ pids: [Int32]) -> [Sample] {
        let memoryTotal = procFS.memoryTotal() ?? 0
        let pageSize = UInt64(Self.pageSize)
        var samples: [Sample] = []
        samples.reserveCapacity(pids.count)
        current.removeAll(keepingCapacity: true)
        for pid in pids {
            guard let stat = procFS.stat(pid) else { continue }
            // The time is read right after stat so the ticks and the time describe the same moment even when
            // reading many pids takes a while.
            let now = Clock.monotonicNanoseconds()
            guard let statm = procFS.statm(pid) else { continue }
            let ticks = stat.userTicks &+ stat.systemTicks
            var cpuPercent: Double?
            if let before = previous[pid], before.startTime == stat.startTime {
                cpuPercent = Self.cpuPercent(
                    ticks: ticks,
                    previousTicks: before.ticks,
                    nanoseconds: now,
                    previousNanoseconds: before.nanoseconds,
                    ticksPerSecond: Self.clockTicksPerSecond
                )
            }
            current[pid] = Previous(startTime: stat.startTime, ticks: ticks, nanoseconds: now)
            let rss = statm.residentPages &* pageSize
            let memoryPercent = memoryTotal > 0 ? Double(rss) / Double(memoryTotal) * 100 : 0
            samples.append(
                Sample(
                    pid: pid,
                    startTime: stat.startTime,
                    cpuPercent: cpuPercent,
                    rssBytes: rss,
                    memoryPercent: memoryPercent
                )
            )
        }
        swap(&previous, &current)
        return samples
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
