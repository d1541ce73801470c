import Testing
import VigilTestSupport

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `ProcessSampler` against real children (a busy loop, an idle sleep) and against a hand-made proc root
/// for pid reuse, which cannot be forced on a real host; `HoldThreshold` as the pure state machine it is.
@Suite struct ProcessSamplerTests {
    // MARK: Real processes

    @Test(.timeLimit(.minutes(1)))
    func aBusyChildUsesACoreAndAnIdleOneNone() throws {
        let busy = try Spawn.start("/bin/sh", arguments: ["-c", "while :; do :; done"], streams: .null)
        let idle = try Spawn.start("/bin/sleep", arguments: ["60"], streams: .null)
        defer {
            for child in [busy, idle] {
                kill(child, SIGKILL)
                _ = try? Spawn.wait(child)
            }
        }
        // The test machine has 2 cores shared with compilers: at nice 0 the loop could get a fifth of a core.
        // Nice -10 weighs it about nine times a nice-0 task, close to a whole core (root has CAP_SYS_NICE
        // here; without it the loop stays at nice 0 and the lenient bound below still usually holds).
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(busy), -10)
        let gone = try Spawn.start("/bin/true")
        _ = try Spawn.wait(gone)

        let sampler = ProcessSampler()
        let first = sampler.sample([busy, gone, idle])
        #expect(first.map(\.pid) == [busy, idle], "a reaped child is left out")
        #expect(first.allSatisfy { $0.cpuPercent == nil }, "no CPU figure on a first sample")
        #expect(sampler.trackedCount == 2)

        // Wait at least a second of monotonic time: Spawn.wait with a deadline returns nil when it passes
        // (the idle child does not exit), and the loop guards against an early return.
        let start = Clock.monotonicNanoseconds()
        while Clock.monotonicNanoseconds() - start < 1_000_000_000 {
            #expect(try Spawn.wait(idle, timeoutMilliseconds: 1000) == nil, "sleep 60 exited early")
        }
        let second = sampler.sample([busy, idle])
        try #require(second.count == 2)
        let busyCPU = try #require(second[0].cpuPercent)
        let idleCPU = try #require(second[1].cpuPercent)
        #expect(busyCPU > 30, "busy loop: \(busyCPU) %")
        // One process cannot use more than every core (plus a tick of rounding at each end).
        #expect(busyCPU <= Double(sysconf(CInt(_SC_NPROCESSORS_ONLN))) * 100 + 5)
        #expect(idleCPU < 5, "sleep: \(idleCPU) %")
        for sample in second {
            #expect(sample.rssBytes > 0 && sample.rssBytes % UInt64(ProcessSampler.pageSize) == 0)
            #expect(sample.memoryPercent > 0 && sample.memoryPercent < 100)
            #expect(sample.startTime == first.first { $0.pid == sample.pid }?.startTime)
        }
    }

    @Test func ownMemoryMatchesStatus() throws {
        let sampler = ProcessSampler()
        // VmRSS in /proc/self/status is the same counter in KiB. Other tests in this process allocate and
        // free meanwhile, so it is read before and after the sample, and only the order of magnitude is
        // compared: enough to catch a unit mistake (pages for bytes is 4096 times off).
        let before = try Self.residentKiB()
        let sample = try #require(sampler.sample([getpid()]).first)
        let after = try Self.residentKiB()
        #expect(sample.rssBytes > min(before, after) * 1024 / 2 && sample.rssBytes < max(before, after) * 1024 * 2)
        let total = try #require(ProcFS().memoryTotal())
        #expect(abs(sample.memoryPercent - Double(sample.rssBytes) / Double(total) * 100) < 1e-9)
    }

    /// `VmRSS:` of `/proc/self/status`, in KiB.
    private static func residentKiB() throws -> UInt64 {
        let status = try #require(ProcFile.readText("/proc/self/status"))
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return try #require(UInt64(line.split(separator: " ")[1]))
    }

    // MARK: A hand-made proc root

    /// A proc root with `meminfo` and, per pid, a `stat` and a `statm` holding the given values.
    struct FakeProc {
        let tree = TempTree("sampler-proc")

        init(memTotalKiB: UInt64) {
            tree.write("meminfo", "MemTotal:       \(memTotalKiB) kB\nMemFree:         1 kB\n")
        }

        func process(_ pid: Int32, user: UInt64, system: UInt64, start: UInt64, residentPages: UInt64) {
            tree.makeDirectory("\(pid)")
            // A comm with a space and a ')' to go through ProcFS's last-')' parsing.
            var fields = ["S", "1", "\(pid)", "\(pid)", "0", "-1", "4194560", "0", "0", "0", "0"]
            fields += ["\(user)", "\(system)", "0", "0", "20", "0", "1", "0", "\(start)", "1000", "\(residentPages)"]
            tree.write("\(pid)/stat", "\(pid) (a b) c) " + fields.joined(separator: " ") + "\n")
            tree.write("\(pid)/statm", "1000 \(residentPages) 10 1 0 100 0\n")
        }

        func remove(_ pid: Int32) {
            tree.unlinkFile("\(pid)/stat")
            tree.unlinkFile("\(pid)/statm")
        }
    }

    @Test func aReusedPidStartsAfresh() throws {
        let proc = FakeProc(memTotalKiB: 1000)
        defer { proc.tree.remove() }
        let page = UInt64(ProcessSampler.pageSize)
        proc.process(4242, user: 100, system: 50, start: 5000, residentPages: 10)
        let sampler = ProcessSampler(proc: proc.tree.root)

        let first = try #require(sampler.sample([4242]).first)
        #expect(first.cpuPercent == nil && first.startTime == 5000)
        #expect(first.rssBytes == 10 * page)
        #expect(first.memoryPercent == Double(10 * page) / Double(1000 * 1024) * 100)

        // Same process, more CPU time: a figure (its size depends on the real time between the samples).
        proc.process(4242, user: 120, system: 60, start: 5000, residentPages: 12)
        let second = try #require(sampler.sample([4242]).first)
        let cpu = try #require(second.cpuPercent)
        #expect(cpu > 0)
        #expect(second.rssBytes == 12 * page)

        // The pid now names a new process (another start time) with less CPU time than the old one had: no
        // figure computed from the old process's ticks.
        proc.process(4242, user: 3, system: 1, start: 9000, residentPages: 5)
        let reused = try #require(sampler.sample([4242]).first)
        #expect(reused.cpuPercent == nil && reused.startTime == 9000)

        // The new process's next sample is measured against its own first one.
        proc.process(4242, user: 3, system: 1, start: 9000, residentPages: 5)
        let idle = try #require(sampler.sample([4242]).first)
        #expect(idle.cpuPercent == 0)
    }

    @Test func staleAndVanishedPidsAreForgotten() throws {
        let proc = FakeProc(memTotalKiB: 4096)
        defer { proc.tree.remove() }
        for pid: Int32 in 1...3 { proc.process(pid, user: 1, system: 1, start: 77, residentPages: 1) }
        let sampler = ProcessSampler(proc: proc.tree.root)
        #expect(sampler.sample([1, 2, 3]).count == 3 && sampler.trackedCount == 3)

        // Pid 2 is not asked for and pid 3 vanished: both forgotten, so pid 2 asked again is new.
        proc.remove(3)
        let round = sampler.sample([1, 3])
        #expect(round.map(\.pid) == [1] && round[0].cpuPercent != nil && sampler.trackedCount == 1)
        #expect(sampler.sample([1, 2]).map(\.cpuPercent).map { $0 == nil } == [false, true])

        // Without meminfo the memory share is 0, not a division by zero.
        proc.tree.unlinkFile("meminfo")
        let noTotal = try #require(sampler.sample([1]).first)
        #expect(noTotal.memoryPercent == 0 && noTotal.rssBytes == UInt64(ProcessSampler.pageSize))
    }

    @Test func cpuPercentArithmetic() {
        // 50 ticks at 100 Hz in one second: half a core.
        #expect(
            ProcessSampler.cpuPercent(
                ticks: 150,
                previousTicks: 100,
                nanoseconds: 2_000_000_000,
                previousNanoseconds: 1_000_000_000,
                ticksPerSecond: 100
            ) == 50
        )
        // Two busy threads for half a second: 200 %.
        #expect(
            ProcessSampler.cpuPercent(
                ticks: 100,
                previousTicks: 0,
                nanoseconds: 500_000_000,
                previousNanoseconds: 0,
                ticksPerSecond: 100
            ) == 200
        )
        // No time passed, or ticks went backwards: no figure.
        #expect(
            ProcessSampler.cpuPercent(
                ticks: 10,
                previousTicks: 0,
                nanoseconds: 5,
                previousNanoseconds: 5,
                ticksPerSecond: 100
            ) == nil
        )
        #expect(
            ProcessSampler.cpuPercent(
                ticks: 0,
                previousTicks: 10,
                nanoseconds: 9,
                previousNanoseconds: 5,
                ticksPerSecond: 100
            ) == nil
        )
        #expect(ProcessSampler.clockTicksPerSecond == ProcFS.clockTicksPerSecond && ProcessSampler.pageSize >= 4096)
    }

    // MARK: HoldThreshold

    @Test func firesExactlyAtTheHoldNotBefore() {
        var hold = HoldThreshold(threshold: 80, holdNanoseconds: 5_000)
        #expect(hold.feed(50, at: 0) == nil)
        #expect(hold.feed(81, at: 1_000) == nil)
        #expect(hold.feed(90, at: 5_999) == nil, "4 999 ns above: not yet")
        #expect(hold.feed(85, at: 6_000) == .fired(since: 1_000), "5 000 ns above: fires")
        #expect(hold.isFiring)
        #expect(hold.feed(99, at: 7_000) == nil, "fires once per run")
        #expect(hold.feed(80, at: 8_000) == .cleared, "at the threshold is not above it")
        #expect(!hold.isFiring)
        #expect(hold.feed(10, at: 9_000) == nil, "clears once")
    }

    @Test func anIntervalValueCountsFromTheIntervalStart() {
        // CPU between samples at 1 000 and 2 000 was above: the process was busy since 1 000, so a 1 500 ns
        // hold is reached at the sample at 2 500, one interval after 1 000 + 1 500, not at 3 500.
        var hold = HoldThreshold(threshold: 80, holdNanoseconds: 1_500)
        #expect(hold.feed(50, at: 1_000, intervalStart: 0) == nil)
        #expect(hold.feed(95, at: 2_000, intervalStart: 1_000) == nil)
        #expect(hold.feed(95, at: 2_500, intervalStart: 2_000) == .fired(since: 1_000))
        #expect(hold.feed(10, at: 3_000, intervalStart: 2_500) == .cleared)
    }

    @Test func aYoungProcessGetsACPUFigureFromItsStart() throws {
        let busy = try Spawn.start("/bin/sh", arguments: ["-c", "while :; do :; done"], streams: .null)
        defer {
            kill(busy, SIGKILL)
            _ = try? Spawn.wait(busy)
        }
        let before = Clock.monotonicNanoseconds()
        var sample: ProcessSampler.Sample?
        // Until the loop has run a few ticks (a figure of 0 % right after the spawn is possible).
        let deadline = before + 10_000_000_000
        repeat {
            let fresh = ProcessSampler(youngNanoseconds: 60_000_000_000)
            sample = fresh.sample([busy]).first
        } while (sample?.cpuPercent ?? 0) == 0 && Clock.monotonicNanoseconds() < deadline
        let first = try #require(sample)
        #expect(first.cpuPercent != nil, "a process younger than the window has a figure at its first sample")
        #expect(first.intervalStart <= Clock.monotonicNanoseconds())
        #expect(first.intervalStart + 1_000_000_000 >= before, "the interval starts at the spawn, moments ago")
        // Any process is older than a 1 ms window: its first sample carries no figure.
        let strict = ProcessSampler(youngNanoseconds: 1_000_000)
        let old = try #require(strict.sample([getpid()]).first)
        #expect(old.cpuPercent == nil, "an old process's first sample has no figure")
    }

    @Test func aDipRestartsTheHoldAndItReArms() {
        var hold = HoldThreshold(threshold: 0.5, holdNanoseconds: 100)
        #expect(hold.feed(1, at: 0) == nil)
        #expect(hold.feed(0.5, at: 50) == nil, "a dip before the hold: nothing to clear")
        #expect(hold.feed(1, at: 60) == nil)
        #expect(hold.feed(1, at: 150) == nil, "the hold counts from 60, not 0")
        #expect(hold.feed(1, at: 160) == .fired(since: 60))
        #expect(hold.feed(.nan, at: 170) == .cleared, "NaN is not above")
        // Re-armed: a new run fires again after its own hold.
        #expect(hold.feed(2, at: 200) == nil)
        #expect(hold.feed(2, at: 300) == .fired(since: 200))
    }

    @Test func aZeroHoldFiresAtTheFirstSampleAbove() {
        var hold = HoldThreshold(threshold: 80, holdNanoseconds: 0)
        #expect(hold.feed(80, at: 10) == nil)
        #expect(hold.feed(80.1, at: 20) == .fired(since: 20))
        #expect(hold.feed(0, at: 30) == .cleared)
        // A clock read out of order counts as no time elapsed, never as a huge one.
        var late = HoldThreshold(threshold: 1, holdNanoseconds: 10)
        #expect(late.feed(2, at: 100) == nil)
        #expect(late.feed(2, at: 50) == nil)
        #expect(late.feed(2, at: 110) == .fired(since: 100))
    }
}
