import Logging
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The system watcher (`vigil-sys`): `pressure:` and `disk:` rules, both event-driven, so an idle host costs
/// it no wake-up at all.
///
/// ```
/// PSI triggers (EPOLLPRI) ─┐
/// inotify (rule paths)     ├─► vigil-sys (read pressure file · statfs) ─► alert sinks
/// timerfd (windows, recheck)┘
/// ```
///
/// - **Pressure**: one kernel trigger per rule (`PressureTrigger`) in this thread's epoll. The kernel wakes
///   the thread when `stall` accumulated within one `within` window; the rule fires once. While it fires, a
///   timer at each window end reads the file's `total=` and resolves after a whole window below `stall`.
///   Nothing is sampled while the host is calm.
/// - **Disk**: one state per filesystem the rule paths live on. An inotify watch on each path (and on the
///   directories of log rules on the same filesystem) re-checks `statfs(2)` when something there grows,
///   at most once per filesystem per millisecond with a trailing check, so the write that crossed the
///   threshold is always judged; a slow `recheck:` timer catches writes elsewhere on the filesystem.
/// - Pressure files are the host's (`/proc/pressure/`, `/sys/fs/cgroup/`) even under `--root`: PSI is not
///   a file tree a root directory can stand in for.
final class SystemWatcher: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is confined to the vigil-sys thread after `run()` starts; the
    // initialiser runs before the thread exists.

    struct Settings {
        var root: RootedPath
        var host: String
        /// The directories of the enabled log rules (server paths): watched too when on a disk rule's
        /// filesystem, since their files grow and Vigil follows them anyway.
        var logDirectories: [String] = []
        /// Where `/proc/pressure/` is read (the host's, not inside `--root`).
        var procRoot = "/proc"
        /// Where the cgroup v2 hierarchy is mounted (the host's); nil: found in `/proc/self/mountinfo`
        /// (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid v1/v2 host).
        var cgroupRoot: String?
        /// Least time between two `statfs` of one filesystem after writes.
        var coalesceNanoseconds: UInt64 = 1_000_000
        /// How long after a deletion the filesystem is checked once more. The kernel reports `IN_DELETE`
        /// while the unlinking call still holds the inode; its blocks are freed when that call drops it,
        /// a moment later, so a check at the event itself can still see them in use.
        var settleNanoseconds: UInt64 = 20_000_000
    }

    /// One rule ready to run.
    struct CompiledRule {
        let rule: Rule
        let sinkMask: UInt64
        let labels: [String: String]
    }

    /// A loaded `pressure:` rule and its kernel trigger.
    final class PressureWatch {
        let rule: Int
        let subject: PressureSubject
        /// The pressure file (host path).
        let path: String
        let trigger: PressureTrigger
        var firing = false
        /// Whether the file went away (the cgroup was removed): the trigger is closed.
        var dead = false
        /// `total=` (of the rule's scope) at the start of the current window while firing.
        var windowStartTotal: UInt64 = 0
        /// When the current window ends while firing (monotonic ns).
        var windowEnd: UInt64 = 0
        /// `avg10=` when the rule fired.
        var avg10 = 0.0

        init(rule: Int, subject: PressureSubject, path: String, trigger: PressureTrigger) {
            self.rule = rule
            self.subject = subject
            self.path = path
            self.trigger = trigger
        }
    }

    /// A filesystem that disk rules look at.
    final class FileSystem {
        /// The last figures (the device, mount point and type from start-up).
        var usage: FileSystemUsage
        /// A host path on it to `statfs`.
        let statPath: String
        /// The mount point as alerts name it (a server path under `--root` when the mount is inside it).
        let mount: String
        /// The disk instances on this filesystem.
        var instances: [Int] = []
        var lastCheck: UInt64 = 0
        /// A trailing check is scheduled (writes came within the coalescing interval of the last check).
        var trailingDue = false
        /// A late check after a deletion is scheduled (see `SystemWatcher.settleNanoseconds`).
        var settleDue = false
        /// A failing `statfs` was reported (once until it works again).
        var reportedFailure = false

        init(usage: FileSystemUsage, statPath: String, mount: String) {
            self.usage = usage
            self.statPath = statPath
            self.mount = mount
        }
    }

    /// A disk rule on one filesystem: the unit that fires and resolves.
    final class DiskInstance {
        let rule: Int
        let fileSystem: Int
        /// The rule's path on this filesystem (the first one listed), as written.
        let path: String
        var firing = false

        init(rule: Int, fileSystem: Int, path: String) {
            self.rule = rule
            self.fileSystem = fileSystem
            self.path = path
        }
    }

    /// What a timer entry is for.
    enum Deadline {
        /// The end of a firing pressure rule's window.
        case window(Int)
        /// The trailing check of a filesystem after coalesced writes.
        case trailing(Int)
        /// The late check of a filesystem after a deletion.
        case settle(Int)
        /// The `recheck:` of a disk rule.
        case recheck(Int)
    }

    let settings: Settings
    let logger: Logger
    let counters: PipelineCounters
    let outlet: AlertOutlet
    let rules: [CompiledRule]
    let allSinks: UInt64
    let inotify: Inotify
    let source: FileSource
    let epoll: Epoll
    let timer: TimerFD
    let shutdown: EventFD
    /// Rung when every trigger and watch is in place and every filesystem was checked once.
    let ready: EventFD

    var pressureWatches: [PressureWatch] = []
    var fileSystems: [FileSystem] = []
    var diskInstances: [DiskInstance] = []
    /// Watch descriptor → the filesystems a change there may have filled.
    var watchTargets: [Int32: [Int]] = [:]
    /// Disk rule paths that did not exist: retried at the rule's recheck.
    var missingPaths: [(rule: Int, path: String)] = []
    var timers = DeadlineHeap<Deadline>()
    var armedDeadline: UInt64 = 0
    /// The monotonic time of the kernel event being handled (0: a timer), for the latency counters.
    var eventTime: UInt64 = 0
    /// `/proc/self/mountinfo`, open while disk rules run: the kernel flags it (POLLPRI) when the mount table
    /// changes, so a filesystem mounted over a rule's path after start-up is the one checked from then on.
    var mountTable: CInt = -1

    static let shutdownTag: UInt64 = 0
    static let inotifyTag: UInt64 = 1
    static let timerTag: UInt64 = 2
    static let mountsTag: UInt64 = 3
    static let pressureTagBase: UInt64 = 16

    /// Creates the triggers and places the watches; rules this host cannot run are reported (with their
    /// position and the fix) and not loaded, and the others run.
    init(
        settings: Settings,
        rules: [Rule],
        sinkNames: [String],
        outlet: AlertOutlet,
        counters: PipelineCounters,
        logger: Logger
    ) throws(DaemonError) {
        self.settings = settings
        self.logger = logger
        self.counters = counters
        self.outlet = outlet
        let masks = SinkMasks(sinkNames: sinkNames)
        allSinks = masks.all
        self.rules = rules.map { rule in
            CompiledRule(
                rule: rule,
                sinkMask: masks.mask(for: rule),
                labels: rule.tagLabels
            )
        }
        do {
            inotify = try Inotify()
            source = FileSource(inotify: inotify, counters: counters)
            epoll = try Epoll()
            timer = try TimerFD()
            shutdown = try EventFD()
            ready = try EventFD()
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
            try epoll.add(inotify.descriptor, tag: Self.inotifyTag)
            try epoll.add(timer.descriptor, tag: Self.timerTag)
        } catch {
            throw DaemonError("Failed to set up the system watcher: \(error)")
        }
        setUpPressure()
        setUpDisk()
        if !diskInstances.isEmpty || !missingPaths.isEmpty {
            mountTable = Glibc.open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)
            if mountTable >= 0 {
                Self.consume(mountTable)
                do {
                    try epoll.add(mountTable, tag: Self.mountsTag, events: PressureTrigger.epollEvents)
                } catch {
                    logger.warning(
                        "Not following mounts for disk rules: \(error); a filesystem mounted on a rule's path later is seen at the next restart"
                    )
                }
            }
        }
    }

    deinit {
        if mountTable >= 0 { Syscall.close(mountTable) }
    }

    /// Reads a proc file to its end from the start: how a POLLPRI on `/proc/self/mountinfo` is acknowledged.
    static func consume(_ fd: CInt) {
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        _ = lseek(fd, 0, SEEK_SET)
        while buffer.withUnsafeMutableBytes({ Glibc.read(fd, $0.baseAddress, $0.count) }) > 0 {}
    }

    /// Rules running: pressure rules whose trigger was created, and disk rules.
    var ruleCount: Int {
        Set(pressureWatches.map(\.rule)).count + Set(diskInstances.map(\.rule)).count
    }

    /// The thread body: runs until `shutdown` rings.
    func run() {
        for index in fileSystems.indices { check(index) }
        let now = Clock.monotonicNanoseconds()
        for (index, compiled) in rules.enumerated() {
            if case .disk(let subject) = compiled.rule.subject {
                schedule(.recheck(index), at: now + UInt64(subject.recheckMilliseconds) * 1_000_000)
            }
        }
        ready.ring()
        var stopping = false
        while !stopping {
            do {
                try epoll.wait { tag in
                    switch tag {
                    case Self.shutdownTag: stopping = true
                    case Self.inotifyTag: drainEvents()
                    case Self.timerTag: timersDue()
                    case Self.mountsTag:
                        Self.consume(mountTable)
                        remounted()
                    default: pressureEvent(Int(tag - Self.pressureTagBase))
                    }
                }
            } catch {
                preconditionFailure("SystemWatcher: epoll_wait failed: \(error)")
            }
        }
        for watch in pressureWatches where !watch.dead { watch.trigger.close() }
    }

    // MARK: Timers

    /// Adds a timer entry and re-arms the timerfd when it is the earliest.
    func schedule(_ deadline: Deadline, at time: UInt64) {
        timers.push(time, deadline)
        if armedDeadline == 0 || time < armedDeadline {
            armedDeadline = time
            timer.arm(deadline: time)
        }
    }

    /// Handles every due timer entry, then arms the timerfd for the next one (or disarms it).
    private func timersDue() {
        timer.acknowledge()
        eventTime = 0
        let now = Clock.monotonicNanoseconds()
        while let (_, deadline) = timers.popDue(now: now) {
            switch deadline {
            case .window(let index): pressureWindowEnded(index, now: now)
            // Filesystem indexes of timers set before a mount change may be gone: skipped.
            case .trailing(let index) where index < fileSystems.count:
                fileSystems[index].trailingDue = false
                check(index)
            case .settle(let index) where index < fileSystems.count:
                fileSystems[index].settleDue = false
                check(index)
            case .trailing, .settle: break
            case .recheck(let index): recheck(rule: index, now: now)
            }
        }
        armedDeadline = timers.earliest ?? 0
        timer.arm(deadline: armedDeadline)
    }

    // MARK: Formatting

    /// A percentage as alerts show it: `87.2%`, `85%`.
    static func percentText(_ value: Double) -> String {
        let tenths = (value * 10).rounded() / 10
        return tenths == tenths.rounded() ? "\(Int(tenths))%" : "\(tenths)%"
    }

    /// Bytes as `df -h` writes them, in powers of 1024: `512`, `7.6M`, `15G`.
    static func bytesText(_ bytes: UInt64) -> String {
        let units = ["K", "M", "G", "T", "P", "E"]
        guard bytes >= 1024 else { return "\(bytes)" }
        var value = Double(bytes)
        var unit = -1
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if value < 10 {
            let tenths = (value * 10).rounded(.up) / 10
            return tenths < 10 ? "\(tenths)\(units[unit])" : "10\(units[unit])"
        }
        return "\(Int(value.rounded(.up)))\(units[unit])"
    }

    /// Microseconds as rule files write durations: `200ms`, `2s`, `1500ms`.
    static func durationText(microseconds: Int) -> String {
        if microseconds % 1_000_000 == 0 { return "\(microseconds / 1_000_000)s" }
        if microseconds % 1000 == 0 { return "\(microseconds / 1000)ms" }
        return "\(microseconds)us"
    }
}
