import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The rotation watcher (`vigil-rotate`): an event-driven logrotate for the `rotate:` rules.
///
/// ```
/// inotify (rule dirs) ─┐
/// timerfd (every:) ────┼─► vigil-rotate (stat · rename · create · postrotate · keep · sweep) ──ring──► vigil-action
/// eventfd (gzip done) ─┘            │ bounded queue (64)
///                                   └──────────────► vigil-gzip (Gzip.compress) ──outcomes──┘
/// ```
///
/// - **Size:** one inotify watch per rule directory reports `IN_MODIFY` for every file in it; a modified
///   file the rules name is `fstatat`-ed once per batch of events and rotated the moment it reaches `size:`.
///   No polling. `IN_Q_OVERFLOW` re-checks every ruled file.
/// - **Time:** a `CLOCK_REALTIME` timerfd is set to the next `every:` boundary of any rule (local time, see
///   `RotationSchedule`), and to the next local midnight for the daily sweep; at a boundary every non-empty
///   file of the rule is rotated.
/// - **Start-up:** files already over `size:` are rotated; so are files of `every:` rules whose last
///   boundary passed while Vigil was not running: the file was last modified before that boundary (all of
///   its content belongs before it), or, where the filesystem records birth times and the rule does not
///   copy-and-truncate, the file was created before it (a rotation at the boundary would have left a file
///   created after it). A file created and written after the boundary is left for the next one.
/// - **Names:** `NAME` + `strftime(dateext:)` of the moment of rotation (logrotate's `dateext` default, not
///   `dateyesterday`: a rotation at midnight carries the new day's date) + `.1`, `.2`… when taken.
/// - **Batches:** the rotations made while handling one wake-up (a burst of inotify events, a boundary, the
///   start-up scan) form a batch: `postrotate:` runs once per rule and batch, then retention, compression and
///   the sweep.
///
/// Every step works relative to directory descriptors opened without following symlinks (`SafeDirectory`):
/// a log directory the application user can write cannot redirect root's rename, create, chown, compress,
/// chmod or unlink to another file. Each failure is an alert naming the file, the cause and the fix; the
/// watcher keeps running and tries again later (with a backoff, alerting a repeated failure once).
final class RotationWatcher: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is confined to the vigil-rotate thread after `run()` starts;
    // the gzip worker shares only `CompressionWorker`, which locks its own state.

    struct Settings {
        var root: RootedPath
        var host: String
        /// Where systemd is PID 1, `postrotate: { unit: }` goes through `systemctl reload`.
        var systemdRunning = HostFeatures.systemdIsRunning
        /// Jobs the gzip worker's queue holds; when it is full a rotation stays uncompressed (alerted) and is
        /// compressed at the rule's next rotation.
        var compressionQueueCapacity = 64
        /// `--dry-run`: a rotation due is reported (with its new name, create:, compress: and postrotate:)
        /// once per rule and size crossing, not done; leftover compressions and the sweep are not run.
        var dryRun: DryRun?
        /// After a rotation of a file failed, the first retry waits this long; each further failure doubles
        /// it, up to `maximumRetryNanoseconds`. A repeated failure with the same cause is alerted once.
        var retryNanoseconds: UInt64 = 10_000_000_000
        var maximumRetryNanoseconds: UInt64 = 3_600_000_000_000
        /// A rotation that was still being written when it was compressed (its writer had not reopened the
        /// log yet) is compressed again after this delay, up to `writerRetryLimit` times before it is alerted.
        var writerRetryNanoseconds: UInt64 = 2_000_000_000
        var writerRetryLimit = 30
        /// How long a `postrotate:` command (or `systemctl reload`) may run before the rotation's compression
        /// and alert go ahead without it.
        var postRotateTimeoutNanoseconds: UInt64 = 30_000_000_000
        /// Tests only: `every:` boundaries come every this many nanoseconds of the monotonic clock, counted
        /// from start-up, instead of on the calendar (start-up catch-up is then off). Lets a test drive the
        /// timer path in milliseconds; nil in production.
        var boundaryOverrideNanoseconds: UInt64?
        /// The time zone of `every:` boundaries and date extensions.
        var zone = RotationSchedule.Zone.system
    }

    /// Mode and owner with names resolved to ids; nil fields are taken from the file being replaced.
    struct Attributes {
        var mode: UInt32?
        var owner: UInt32?
        var group: UInt32?
    }

    /// One rule ready to run.
    struct CompiledRule {
        let rule: Rule
        let subject: RotateSubject
        let sinkMask: UInt64
        let labels: [String: String]
        let names: RotationNames
        let create: Attributes?
        /// `olddir:` as written (a server path; relative ones are below each log's directory).
        let oldDirectory: String?
        let oldDirectoryAttributes: Attributes
        /// Where `postrotate: { signal:, to: }` goes.
        let signalTargets: CompiledSelector?
        /// Wall-clock seconds of the next `every:` boundary (0: none), or with the test override, the
        /// monotonic nanoseconds.
        var nextBoundary: Int64 = 0
        var nextOverride: UInt64 = 0
    }

    /// A directory the rules name, with the names (or globs) of its rules.
    struct DirectoryPlan {
        let serverDirectory: String
        var entries: [(name: NamePattern, rule: Int)]
        /// The directory, opened without following symlinks; -1 while it is missing or refused.
        var descriptor: CInt = -1
        var watch: Int32 = -1
    }

    /// Why a file is rotated.
    enum Reason {
        case size
        case age(RotationInterval)
        /// An `every:` boundary passed while Vigil was not running.
        case startup(RotationInterval)

        /// The alert label: `size`, `age` or `startup`.
        var label: String {
            switch self {
            case .size: "size"
            case .age: "age"
            case .startup: "startup"
            }
        }

        /// For the message's `{reason}`.
        var text: String {
            switch self {
            case .size: "size"
            case .age(let interval): interval.rawValue
            case .startup(let interval): "\(interval.rawValue), boundary passed while vigil was stopped"
            }
        }
    }

    /// A rotation done in the current batch, until its alert is sent.
    struct Rotation {
        let rule: Int
        let plan: Int
        /// The log's server path, and where its content went (server path of the rotated file).
        let path: String
        let rotatedPath: String
        let rotatedName: String
        /// The rotation directory: server path, and its identity (the key of compression jobs).
        let archivePath: String
        let archiveKey: String
        let bytes: UInt64
        let reason: Reason
        let identity: FileIdentity
        /// Monotonic time the rotation started.
        let started: UInt64
        /// Time the rename (or copy and truncate) and the new file took.
        var nanoseconds: UInt64 = 0
        /// What else happened, for the message's `{outcome}`.
        var outcome: [String] = []
        var compressedPath: String?
        var compressedBytes: UInt64?
        var compressNanoseconds: UInt64?
    }

    /// A compression job handed to the gzip worker.
    struct CompressionTicket {
        let rule: Int
        let plan: Int
        let archiveKey: String
        let archivePath: String
        /// The rotation directory, open until the outcome is handled (to look at the rotation again).
        let directory: CInt
        let stem: String
        /// The rotation's size and mtime when submitted: a failure after which they differ means a writer was
        /// still appending (it had not reopened its log yet).
        let size: Int64
        let modified: Int64
        /// The rotation whose alert waits for this job (compressed right after rotating).
        var rotation: Rotation?
    }

    /// A `postrotate:` command or `systemctl reload` still running.
    struct Child {
        let pid: Int32
        let pidfd: CInt
        let rule: Int
        let description: String
        let deadline: UInt64
    }

    /// What a monotonic timer is for.
    enum TimerPurpose {
        /// Compress the rule's waiting rotations again (a writer was still appending).
        case compressionPass(rule: Int)
        /// A postrotate child ran too long: go on without it.
        case childDeadline(tag: UInt64)
    }

    /// Repeated failures of one file: alerted once per cause, retried with a backoff.
    struct FailureState {
        var signature: String
        var nextAttempt: UInt64
        var backoff: UInt64
        var firstSeen: Int64
    }

    let settings: Settings
    let logger: Logger
    let counters: PipelineCounters
    let outlet: AlertOutlet
    let inotify: Inotify
    let source: FileSource
    let shutdown: EventFD
    /// Rung when every directory is watched and the start-up rotations and sweeps are done.
    let ready: EventFD
    let timer: TimerFD
    let wallTimer: WallClockTimerFD
    let compression: CompressionWorker
    let epoll: Epoll
    /// The root (`--root`, or `/`), open; every directory is opened beneath it.
    let rootDescriptor: CInt
    var rules: [CompiledRule]
    let allSinks: UInt64
    /// Names of the root's users and groups, for messages.
    /// Users and groups of the root, for rules' names and for messages.
    let names: UserDatabase
    /// Readers of /proc, for postrotate signals.
    let procfs = ProcFS()
    let ownPid = getpid()
    /// Buffer of copytruncate copies where copy_file_range cannot be used.
    let copyBuffer: UnsafeMutableRawBufferPointer

    var plans: [DirectoryPlan] = []
    /// Watch descriptor → plans, and watches on the nearest existing ancestor of a missing directory.
    var watchedPlans: [Int32: [Int]] = [:]
    var ancestorWatches: Set<Int32> = []
    var needsRebuild = false
    /// Set by `placeWatches` when a missing directory's next component appeared while its ancestor was
    /// being watched: it goes round again.
    var appearedMeanwhile = false
    var rescanAll = false
    /// Names reported modified in this batch (plan, name), in order and without repeats; swapped with
    /// `checking` to be checked, so neither list allocates once grown.
    var dirty: [(plan: Int, name: String)] = []
    var checking: [(plan: Int, name: String)] = []
    /// The last name an event carried (its watch, bytes, and the `String` built from them): the `IN_MODIFY`
    /// of every write to a busy log reuses it instead of building a `String` per event.
    var lastWatch: Int32 = -1
    var lastNameBytes: [UInt8] = []
    var lastName = ""
    /// Rotations of this batch, finished by `finishBatch`.
    var batch: [Rotation] = []
    /// Rules waiting for their postrotate child before compressing, with the rotations whose alerts wait.
    var awaitingChild: [Int: [Rotation]] = [:]
    var children: [UInt64: Child] = [:]
    var nextChildTag: UInt64 = RotationWatcher.childTagBase
    var tickets: [Int: CompressionTicket] = [:]
    var nextTicket = 1
    /// Archive key + "/" + stem of the rotations being compressed.
    var inFlight: Set<String> = []
    /// (rule, plan) pairs whose retention spared rotations only because they were being compressed: run
    /// again when a compression ends.
    var retentionPending: Set<[Int]> = []
    /// Times a rotation was found still growing after compression started, by archive key + "/" + stem.
    var writerRetries: [String: Int] = [:]
    var failures: [String: FailureState] = [:]
    var timers = DeadlineHeap<TimerPurpose>()
    /// Wall-clock seconds of the next daily sweep (0: no rule sweeps).
    var nextSweep: Int64 = 0
    /// What the timers are armed to now (saves a syscall per wake-up when nothing changed).
    var armedWall: Int64 = -1
    var armedMonotonic: UInt64 = .max
    /// Rules a name matched more than one of, already warned about.
    var overlapWarned: Set<String> = []

    static let inotifyTag: UInt64 = 1
    static let shutdownTag: UInt64 = 2
    static let timerTag: UInt64 = 3
    static let wallTimerTag: UInt64 = 4
    static let compressionTag: UInt64 = 5
    static let childTagBase: UInt64 = 1 << 32

    static let directoryMask =
        InotifyMask.modified | InotifyMask.created | InotifyMask.movedTo | InotifyMask.movedFrom
        | InotifyMask.deleted | InotifyMask.selfDeleted | InotifyMask.selfMoved | InotifyMask.onlyDirectory
        | InotifyMask.excludeUnlinked
    static let ancestorMask = InotifyMask.created | InotifyMask.movedTo | InotifyMask.onlyDirectory

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
        let rootPath = settings.root.root.isEmpty ? "/" : settings.root.root
        let users = UserDatabase(root: rootPath)
        names = users
        var problems: [String] = []
        func resolve(_ attributes: FileAttributes?) -> Attributes? {
            guard let attributes else { return nil }
            var out = Attributes(mode: attributes.mode)
            out.owner = users.uid(attributes.owner, problems: &problems)
            out.group = users.gid(attributes.group, problems: &problems)
            return out
        }
        var compiled: [CompiledRule] = []
        for rule in rules {
            guard case .rotate(let subject) = rule.subject else { continue }
            if subject.dateFormat.isEmpty || subject.dateFormat.contains("/") {
                problems.append(
                    "\(rule.location): error: rule '\(rule.id)': dateext: '\(subject.dateFormat)' must be a non-empty strftime format without '/'; write e.g. dateext: \"-%Y%m%d\""
                )
            }
            if subject.maximumBytes == nil && subject.interval == nil {
                logger.warning(
                    "\(rule.location): warning: rule '\(rule.id)' has neither size: nor every:, so it never rotates; add one of them"
                )
            }
            let create = resolve(subject.create)
            let archive = resolve(subject.oldDirectory?.attributes) ?? Attributes()
            var targets: CompiledSelector?
            if let target = subject.postRotate?.target {
                targets = CompiledSelector(target, root: settings.root, users: users, unknownUsers: &problems)
            }
            if let post = subject.postRotate {
                let viaUnit = post.unit != nil && settings.systemdRunning
                if !viaUnit && post.command == nil && post.target == nil {
                    let why =
                        post.unit != nil
                        ? "systemd is not PID 1 here, so unit: cannot be reloaded, and it gives no command: or to:"
                        : "it gives neither unit:, command: nor to: (the processes signal: goes to)"
                    logger.warning(
                        "\(post.location): warning: rule '\(rule.id)': postrotate: cannot reach the writer: \(why); add command: [/path/to/reopen] or to: { exe: /usr/bin/the-writer }"
                    )
                }
            }
            compiled.append(
                CompiledRule(
                    rule: rule,
                    subject: subject,
                    sinkMask: masks.mask(for: rule),
                    labels: rule.tagLabels,
                    names: RotationNames(dateFormat: subject.dateFormat),
                    create: create,
                    // An absolute olddir is resolved like the log directories; a relative one is below each.
                    oldDirectory: subject.oldDirectory.map {
                        $0.path.hasPrefix("/") ? settings.root.canonical($0.path) : $0.path
                    },
                    oldDirectoryAttributes: archive,
                    signalTargets: targets
                )
            )
        }
        if !problems.isEmpty {
            throw DaemonError(problems.joined(separator: "\n") + "\nvigil: rotate rules were not loaded")
        }
        self.rules = compiled
        var planIndex: [String: Int] = [:]
        for (ruleIndex, rule) in compiled.enumerated() {
            for path in rule.subject.paths {
                // Resolved once (an administrator's symlink such as /var/log → /srv/log works); below it, and
                // on every later open, no symlink is followed.
                let directory = settings.root.canonical(path.directory)
                if let existing = planIndex[directory] {
                    plans[existing].entries.append((path.name, ruleIndex))
                } else {
                    planIndex[directory] = plans.count
                    plans.append(DirectoryPlan(serverDirectory: directory, entries: [(path.name, ruleIndex)]))
                }
            }
        }
        do {
            rootDescriptor = try SafeDirectory.openTrusted(rootPath)
        } catch {
            throw DaemonError(
                "Failed to open the root directory '\(rootPath)' for rotation rules: \(error); check --root"
            )
        }
        do {
            inotify = try Inotify()
            source = FileSource(inotify: inotify, counters: counters)
            shutdown = try EventFD()
            ready = try EventFD()
            timer = try TimerFD()
            wallTimer = try WallClockTimerFD()
            compression = try CompressionWorker(capacity: settings.compressionQueueCapacity)
            epoll = try Epoll()
            try epoll.add(inotify.descriptor, tag: Self.inotifyTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
            try epoll.add(timer.descriptor, tag: Self.timerTag)
            try epoll.add(wallTimer.descriptor, tag: Self.wallTimerTag)
            try epoll.add(compression.done.descriptor, tag: Self.compressionTag)
        } catch {
            Syscall.close(rootDescriptor)
            throw DaemonError("Failed to set up the rotation watcher: \(error)")
        }
        copyBuffer = .allocate(byteCount: 1 << 20, alignment: 4096)
    }

    deinit {
        copyBuffer.deallocate()
        for plan in plans where plan.descriptor >= 0 { Syscall.close(plan.descriptor) }
        Syscall.close(rootDescriptor)
    }

    var ruleCount: Int { rules.count }

    // MARK: The thread

    /// The thread body: starts the gzip worker, does the start-up work, rings `ready`, then runs until
    /// `shutdown` rings. On the way out the gzip worker finishes the job it is on (queued ones stay
    /// uncompressed and are compressed at the next start) and every alert still waiting is sent.
    func run() {
        ActionThreads.registerCurrent()
        defer { ActionThreads.unregisterCurrent() }
        let worker = compression
        let gzipThread = Threads.spawn(name: "vigil-gzip") { worker.run() }
        startUp()
        ready.ring()
        var stopping = false
        var readyChildren: [UInt64] = []
        while !stopping {
            armTimers()
            var timerFired = false
            var wallFired = false
            do {
                try epoll.wait { tag in
                    switch tag {
                    case Self.shutdownTag: stopping = true
                    case Self.timerTag: timerFired = true
                    case Self.wallTimerTag: wallFired = true
                    case Self.inotifyTag, Self.compressionTag: break
                    default: readyChildren.append(tag)
                    }
                }
            } catch {
                preconditionFailure("RotationWatcher: epoll_wait failed: \(error)")
            }
            drainEvents()
            if wallFired || timerFired {
                if wallFired {
                    wallTimer.acknowledge()
                    armedWall = -1
                }
                if timerFired {
                    timer.acknowledge()
                    armedMonotonic = .max
                }
                runDueTimers()
            }
            if !readyChildren.isEmpty {
                for tag in readyChildren { reapChild(tag: tag, force: false) }
                readyChildren.removeAll()
            }
            handleCompressionOutcomes()
            finishBatch()
        }
        compression.stop()
        Threads.join(gzipThread)
        handleCompressionOutcomes()
        finishBatch()
        // Rules still waiting for a postrotate child: their rotations are done; say so now.
        for tag in Array(children.keys) { reapChild(tag: tag, force: true) }
        for (_, rotations) in awaitingChild {
            for var rotation in rotations {
                rotation.outcome.append("not compressed yet: vigil stopped (compressed at its next start)")
                emitRotated(rotation)
            }
        }
        awaitingChild.removeAll()
    }

    /// Reads every pending inotify event, then checks the names they marked.
    func drainEvents() {
        while source.readBatch({ record in handle(record) }) {}
        if needsRebuild {
            needsRebuild = false
            placeWatches()
        }
        if rescanAll {
            rescanAll = false
            for index in plans.indices where plans[index].descriptor >= 0 { scan(plan: index, startUp: false) }
            dirty.removeAll(keepingCapacity: true)
        }
        if !dirty.isEmpty {
            swap(&dirty, &checking)
            for entry in checking where plans[entry.plan].descriptor >= 0 { check(plan: entry.plan, name: entry.name) }
            checking.removeAll(keepingCapacity: true)
        }
    }

    private func handle(_ record: FileEventRecord) {
        if record.mask & InotifyMask.queueOverflow != 0 {
            counters.overflows.add(1, ordering: .relaxed)
            logger.warning("The rotation watcher's inotify queue overflowed; checking every rotated log again")
            rescanAll = true
            return
        }
        if ancestorWatches.contains(record.watch) {
            if record.mask & (InotifyMask.created | InotifyMask.movedTo | InotifyMask.watchRemoved) != 0 {
                needsRebuild = true
            }
            return
        }
        guard let targets = watchedPlans[record.watch] else { return }
        if record.mask & InotifyMask.watchEnded != 0 {
            for plan in targets {
                if plans[plan].descriptor >= 0 { Syscall.close(plans[plan].descriptor) }
                plans[plan].descriptor = -1
                plans[plan].watch = -1
            }
            if record.mask & InotifyMask.watchRemoved == 0 { inotify.removeWatch(record.watch) }
            watchedPlans[record.watch] = nil
            if lastWatch == record.watch { lastWatch = -1 }
            needsRebuild = true
            return
        }
        guard record.nameLength > 0 else { return }
        let name: String
        if record.watch == lastWatch && record.withName({ bytes, _ in bytes.elementsEqual(lastNameBytes) }) {
            name = lastName
        } else {
            name = record.nameString
            lastWatch = record.watch
            lastNameBytes.removeAll(keepingCapacity: true)
            record.withName { bytes, _ in lastNameBytes.append(contentsOf: bytes) }
            lastName = name
        }
        if record.mask & InotifyMask.nameGone != 0 {
            for plan in targets { failures[failureKey(plan: plan, name: name)] = nil }
        }
        guard record.mask & (InotifyMask.modified | InotifyMask.created | InotifyMask.movedTo) != 0 else { return }
        for plan in targets where !dirty.contains(where: { $0.plan == plan && $0.name == name }) {
            dirty.append((plan, name))
        }
    }

    // MARK: Timers

    private func armTimers() {
        var wall: Int64 = 0
        var monotonic: UInt64 = timers.earliest ?? 0
        for rule in rules {
            if rule.nextBoundary > 0 { wall = wall == 0 ? rule.nextBoundary : min(wall, rule.nextBoundary) }
            if rule.nextOverride > 0 {
                monotonic = monotonic == 0 ? rule.nextOverride : min(monotonic, rule.nextOverride)
            }
        }
        if nextSweep > 0 { wall = wall == 0 ? nextSweep : min(wall, nextSweep) }
        // Re-armed only when the deadline changed (a fired timer is re-armed: it was acknowledged).
        if wall != armedWall {
            wallTimer.arm(epochSeconds: wall)
            armedWall = wall
        }
        if monotonic != armedMonotonic {
            timer.arm(deadline: monotonic)
            armedMonotonic = monotonic
        }
    }

    /// Boundaries that passed, the daily sweep, and monotonic timers that are due.
    private func runDueTimers() {
        let now = Clock.realtime().seconds
        let monotonic = Clock.monotonicNanoseconds()
        for index in rules.indices {
            guard let interval = rules[index].subject.interval else { continue }
            if let period = settings.boundaryOverrideNanoseconds {
                guard rules[index].nextOverride > 0 && monotonic >= rules[index].nextOverride else { continue }
                rules[index].nextOverride = monotonic + period
            } else {
                guard rules[index].nextBoundary > 0 && now >= rules[index].nextBoundary else {
                    // A clock set backwards: the boundary may now be far off; compute it again.
                    let next = RotationSchedule.nextBoundary(after: now, interval, zone: settings.zone)
                    if rules[index].nextBoundary > next { rules[index].nextBoundary = next }
                    continue
                }
                rules[index].nextBoundary = RotationSchedule.nextBoundary(after: now, interval, zone: settings.zone)
            }
            rotateAll(rule: index, reason: .age(interval))
        }
        if nextSweep > 0 && now >= nextSweep {
            nextSweep = RotationSchedule.nextBoundary(after: now, .daily, zone: settings.zone)
            for index in rules.indices where rules[index].subject.sweep != nil {
                for plan in plans.indices where plans[plan].entries.contains(where: { $0.rule == index }) {
                    maintain(rule: index, plan: plan, retention: false, compress: false, sweep: true)
                }
            }
        }
        while let (_, purpose) = timers.popDue(now: monotonic) {
            switch purpose {
            case .compressionPass(let rule):
                for plan in plans.indices where plans[plan].entries.contains(where: { $0.rule == rule }) {
                    maintain(rule: rule, plan: plan, retention: false, compress: true, sweep: false)
                }
            case .childDeadline(let tag):
                reapChild(tag: tag, force: true)
            }
        }
    }

    /// Every existing, non-empty file of `rule` (an `every:` boundary passed).
    private func rotateAll(rule: Int, reason: Reason) {
        for plan in plans.indices where plans[plan].descriptor >= 0 {
            guard plans[plan].entries.contains(where: { $0.rule == rule }) else { continue }
            let names: [String]
            do {
                names = try SafeDirectory.names(in: plans[plan].descriptor)
            } catch {
                logger.error("Failed to list '\(plans[plan].serverDirectory)/' for rotation: \(error)")
                continue
            }
            for name in names.sorted() where ruleFor(plan: plan, name: name) == rule {
                rotateIfDue(plan: plan, name: name, rule: rule, reason: reason)
            }
        }
    }
}
