import Synchronization
import SystemPackage
import Testing
import VigilTestSupport

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Pressure stall information against this host's kernel: the files, the trigger probe, and a trigger that
/// fires. Serialized: the firing test keeps both cores busy, which would slow the others.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct PressureTests {
    /// Whether this process lacks `CAP_SYS_RESOURCE` (the kernel then accepts only 2 s multiples, or nothing).
    static let unprivileged = !Capabilities.has(.sysResource)

    /// Whether any trigger can be created here (PSI present, and Linux 6.5+ or `CAP_SYS_RESOURCE`).
    static let triggersAllowed = Pressure.support().triggersAllowed

    @Test(arguments: PressureResource.allCases)
    func readParsesTheRealFile(resource: PressureResource) throws {
        let path = "/proc/pressure/\(resource.rawValue)"
        let text = try #require(ProcFile.readText(path), "\(path) cannot be read: no PSI on this kernel")
        let before = try #require(Self.someTotal(text))
        let totals = try Pressure.read(resource).get()
        // The total only grows, so the one read later is at least the one read first.
        #expect(totals.some.total >= before)
        for line in [totals.some] + (totals.full.map { [$0] } ?? []) {
            #expect((0...100).contains(line.avg10) && (0...100).contains(line.avg60) && (0...100).contains(line.avg300))
        }
        #expect((totals.full != nil) == text.contains("\nfull "))
        if let full = totals.full { #expect(full.total <= totals.some.total) }
    }

    @Test func readParsesExactValuesAndRefusesOtherText() throws {
        let tree = TempTree("pressure")
        defer { tree.remove() }
        tree.makeDirectory("pressure")
        tree.write(
            "pressure/io",
            "some avg10=1.99 avg60=0.47 avg300=9.11 total=7670161258\nfull avg10=0.00 avg60=0.07 avg300=0.16 total=17\n"
        )
        tree.write("pressure/cpu", "some avg10=0.50 avg60=0.25 avg300=0.00 total=42\n")
        tree.write("pressure/memory", "some avg10=x avg60=0.25 avg300=0.00 total=42\n")
        let io = try Pressure.read(.io, root: tree.root).get()
        #expect(io.some == PressureTotals(avg10: 1.99, avg60: 0.47, avg300: 9.11, total: 7_670_161_258))
        #expect(io.full == PressureTotals(avg10: 0, avg60: 0.07, avg300: 0.16, total: 17))
        let cpu = try Pressure.read(.cpu, root: tree.root).get()
        #expect(cpu.some.total == 42 && cpu.full == nil)
        let malformed = Self.error(Pressure.read(.memory, root: tree.root))
        #expect(malformed?.code == .malformed)
        #expect(malformed?.description.contains("avg10=x") == true)
        let missing = Self.error(Pressure.read(.memory, root: "/nonexistent"))
        #expect(missing?.code == .unavailable)
        #expect(missing?.description.contains("CONFIG_PSI") == true)
    }

    @Test func supportAgreesWithARealTrigger() throws {
        let support = Pressure.support()
        #expect(support.present == (ProcFile.readText("/proc/pressure/memory")?.hasPrefix("some ") ?? false))
        // Probe independently: a 2 s window, then a 1 s one, each on a fresh descriptor.
        let twoSeconds = Self.tryTrigger("/proc/pressure/memory", "some 150000 2000000")
        let oneSecond = Self.tryTrigger("/proc/pressure/memory", "some 100000 1000000")
        #expect(support.triggersAllowed == (twoSeconds == nil))
        #expect((support.reason == nil) == support.triggersAllowed)
        if support.triggersAllowed {
            let multiple = oneSecond == nil ? nil : Pressure.unprivilegedWindowMultipleMicroseconds
            #expect(support.windowMultipleMicroseconds == multiple)
        }
        if Self.unprivileged {
            #expect(oneSecond != nil, "a 1 s window was accepted without CAP_SYS_RESOURCE")
            if support.triggersAllowed { #expect(support.windowMultipleMicroseconds == 2_000_000) }
        } else {
            #expect(support.windowMultipleMicroseconds == nil)
        }
        let absent = Pressure.support(root: "/nonexistent")
        #expect(!absent.present && !absent.triggersAllowed)
        #expect(absent.reason?.contains("CONFIG_PSI") == true)
    }

    @Test(.enabled(if: triggersAllowed, "no PSI triggers here: no PSI, or Linux before 6.5 without CAP_SYS_RESOURCE"))
    func aTwoSecondTriggerOpensAndRegistersWithEpoll() throws {
        let trigger = try PressureTrigger(
            resource: .memory,
            kind: .some,
            stallMicroseconds: 150_000,
            windowMicroseconds: 2_000_000
        )
        defer { trigger.close() }
        #expect(trigger.resource == .memory && trigger.kind == .some)
        #expect(trigger.stallMicroseconds == 150_000 && trigger.windowMicroseconds == 2_000_000)
        #expect(fcntl(trigger.descriptor, F_GETFD) & FD_CLOEXEC != 0)
        #expect(fcntl(trigger.descriptor, F_GETFL) & O_NONBLOCK != 0)
        // The kernel holds one trigger per open file: a second write is EBUSY, so the first one took.
        let again = "some 150000 2000000".withCString { write(trigger.descriptor, $0, strlen($0) + 1) }
        #expect(again == -1 && errno == EBUSY)
        #expect(PressureTrigger.epollEvents == 0x002 | 0x008)  // EPOLLPRI | EPOLLERR (sys/epoll.h)
        let epoll = try Epoll()
        try epoll.add(trigger.descriptor, tag: 7, events: PressureTrigger.epollEvents)
        var tags: [UInt64] = []
        try epoll.wait(timeoutMilliseconds: 0) { tags.append($0) }
        #expect(tags.allSatisfy { $0 == 7 })
        epoll.remove(trigger.descriptor)
        trigger.close()
        trigger.close()  // idempotent: a second close must not close a descriptor another test opened since
    }

    @Test(.enabled(if: unprivileged, "CAP_SYS_RESOURCE is held: any window from 0.5 s to 10 s is accepted"))
    func aOneSecondWindowIsRefusedBeforeTheKernelIsAsked() {
        // The root does not exist: reaching open(2) would report a missing file instead.
        let error = Self.error {
            try PressureTrigger(
                resource: .cpu,
                kind: .some,
                stallMicroseconds: 100_000,
                windowMicroseconds: 1_000_000,
                root: "/nonexistent"
            )
        }
        #expect(error?.code == .windowNeedsPrivilege)
        #expect(error?.cause == nil)
        #expect(error?.description.contains("round the window to 2 s, 4 s") == true)
        #expect(error?.description.contains("CAP_SYS_RESOURCE") == true)
        #expect(error?.description.contains("not 1 s") == true)
    }

    @Test(arguments: [(2_000_000, 2_000_000), (4_000_000, 6_000_000), (2_000_000, 0), (2_000_000, -1)])
    func aStallNotBelowTheWindowIsRefused(window: Int, stall: Int) {
        let error = Self.error {
            try PressureTrigger(
                resource: .io,
                kind: .full,
                stallMicroseconds: stall,
                windowMicroseconds: window,
                root: "/nonexistent"
            )
        }
        #expect(error?.code == .invalidStall)
        #expect(error?.description.contains("choose a stall shorter than the window") == true)
    }

    @Test(arguments: [0, 400_000, 499_999, 10_000_001, 12_000_000, -2_000_000])
    func aWindowOutOfRangeIsRefused(window: Int) {
        let error = Self.error {
            try PressureTrigger(
                resource: .memory,
                kind: .some,
                stallMicroseconds: 1,
                windowMicroseconds: window,
                root: "/nonexistent"
            )
        }
        #expect(error?.code == .invalidWindow)
        #expect(error?.description.contains("0.5 s...10 s") == true)
    }

    @Test func theKernelsRefusalsAreNamed() {
        // Valid numbers reach open(2): a missing file is PSI being unavailable there.
        let missing = Self.error {
            try PressureTrigger(
                resource: .memory,
                kind: .some,
                stallMicroseconds: 100_000,
                windowMicroseconds: 2_000_000,
                root: "/nonexistent"
            )
        }
        #expect(missing?.code == .unavailable)
        #expect((missing?.cause as? Errno) == .noSuchFileOrDirectory)
        let old = PressureError(creating: "/proc/pressure/cpu", step: .open, errno: .notPermitted, kind: .some)
        #expect(old.code == .permissionDenied && old.description.contains("CAP_SYS_RESOURCE"))
        let cpuFull = PressureError(creating: "/proc/pressure/cpu", step: .write, errno: .invalidArgument, kind: .full)
        #expect(cpuFull.code == .rejected && cpuFull.description.contains("use a 'some' trigger"))
    }

    @Test(.enabled(if: triggersAllowed, "no PSI triggers here: no PSI, or Linux before 6.5 without CAP_SYS_RESOURCE"))
    func aCPUTriggerFiresWhenMoreThreadsRunThanThereAreCores() throws {
        // 50 ms of stall in a 2 s window: some runnable task waits for a CPU.
        let trigger = try PressureTrigger(
            resource: .cpu,
            kind: .some,
            stallMicroseconds: 50_000,
            windowMicroseconds: 2_000_000
        )
        defer { trigger.close() }
        let stop = StopFlag()
        // One more spinning thread than cores, so one is always runnable and waiting.
        let spinners = (0..<(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) + 1)).map { index in
            Threads.spawn(name: "vigil-spin-\(index)") {
                var count = 0
                while !stop.value.load(ordering: .relaxed) { count &+= 1 }
            }
        }
        defer {
            stop.value.store(true, ordering: .relaxed)
            spinners.forEach(Threads.join)
        }
        let deadline = ContinuousClock.now + .seconds(20)
        var revents: Int16 = 0
        while revents == 0 && ContinuousClock.now < deadline {
            var entry = pollfd(fd: trigger.descriptor, events: Int16(POLLPRI), revents: 0)
            let n = poll(&entry, 1, 500)
            if n > 0 { revents = entry.revents }
            #expect(n >= 0 || errno == EINTR, "poll failed: \(Errno(rawValue: errno))")
        }
        #expect(revents & Int16(POLLPRI) != 0, "no POLLPRI within 20 s with more busy threads than cores")
        #expect(revents & Int16(POLLERR) == 0)
    }

    /// A flag the spinning threads read.
    final class StopFlag: Sendable {
        let value = Atomic<Bool>(false)
    }

    /// The `total=` of the `some` line.
    static func someTotal(_ text: String) -> UInt64? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("some ") }),
            let field = line.split(separator: " ").first(where: { $0.hasPrefix("total=") })
        else { return nil }
        return UInt64(field.dropFirst("total=".count))
    }

    /// Creates and removes one trigger on a fresh descriptor; nil when the kernel accepted it.
    static func tryTrigger(_ path: String, _ trigger: String) -> Errno? {
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return Errno(rawValue: errno) }
        defer { close(fd) }
        let written = trigger.withCString { write(fd, $0, strlen($0) + 1) }
        return written < 0 ? Errno(rawValue: errno) : nil
    }

    static func error<T>(_ result: Result<T, PressureError>) -> PressureError? {
        if case .failure(let error) = result { return error }
        return nil
    }

    static func error(_ body: () throws -> PressureTrigger) -> PressureError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? PressureError
        }
    }
}
