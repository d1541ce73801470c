import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The process watcher (`vigil-proc`): one thread that owns the proc connector socket, the process table
/// and every `process:` rule. It sleeps in `epoll_wait`; each datagram is decoded into plain
/// `ProcessEventRecord`s and judged at once, and alert lines go to the action worker through this thread's
/// own ring, the way the file matcher's do:
///
/// ```
/// proc connector ─► vigil-proc (recv · decode · table · rules · restarts) ──ring──► vigil-action ─► sinks
/// ```
///
/// Process rules share no state with file rules, so they need no hop through the file matcher: the kernel
/// → alert path has the same two hops as a file event. Restarts and reloads run here too (posix_spawn or
/// kill(2), both quick), because confirming a restart means watching for the new process's exec, which
/// only this thread sees.
final class ProcessWatcher: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is confined to the vigil-proc thread after `run()` starts;
    // `startFailure` is written before `ready` rings and read after it.

    struct Settings {
        var root: RootedPath
        var host: String
        /// Probe at start-up that events arrive (spawn /bin/true, expect its exec and exit).
        var probe = true
        var probeTimeoutNanoseconds: UInt64 = 1_000_000_000
        /// Where systemd is PID 1, restart and reload go through systemctl.
        var systemdRunning = HostFeatures.systemdIsRunning
        /// How often a zombie is checked again until it is reaped.
        var zombieRecheckNanoseconds: UInt64 = 250_000_000
        /// Most zombies tracked one by one; more are counted in the alert of the last one.
        var zombieLimit = 4096
        /// `--dry-run`: restarts and reloads are reported with what they would run or signal, not done.
        var dryRun: DryRun?
    }

    /// One rule ready to run.
    struct CompiledRule {
        let rule: Rule
        let process: ProcessSubject
        let selector: CompiledSelector
        let sinkMask: UInt64
        let labels: [String: String]
        /// Allowed executables of a `root` rule, as host-path globs.
        let allowed: [CompiledSelector.Glob]
        var restart: ServiceSupervisor?
        var reload: ServiceSupervisor?
        /// Where `signal:` goes when the action names other processes (`to:`).
        let signalTargets: [ServiceSupervisor.Kind: CompiledSelector]
    }

    /// What a timer is for.
    enum TimerPurpose {
        case zombieCheck(pid: Int32, startTime: UInt64)
        case scheduledAction(rule: Int, kind: ServiceSupervisor.Kind)
        case confirmRestart(rule: Int, token: Int)
        /// Walk /proc after lost events.
        case resync
        /// Read the listening sockets (ProcessWatcher+Listening.swift).
        case listeners(ListenerRead)
        /// Sample the processes of `above:` rules (armed only while such a rule is loaded).
        case thresholdSample
    }

    /// Why Vigil spawned a child (each is reaped when its exit event arrives).
    enum ChildPurpose {
        case probe
        case action(rule: Int, kind: ServiceSupervisor.Kind, description: String)
    }

    /// A zombie being watched: which rules, and whether it was alerted.
    struct ZombieWatch {
        var entry: ProcessEntry
        var rules: [Int]
        /// How it exited (what its parent has not collected).
        var exit: ExitStatus
        var exitedAt: UInt64
        var alerted = false
    }

    let settings: Settings
    /// The rules and their restart state: the vigil-proc thread's alone once it runs.
    var rules: [CompiledRule]
    /// How many process rules run (for other threads: `rules` changes as restarts happen).
    let ruleCount: Int
    let connector: ProcConnector
    let outlet: AlertOutlet
    let shutdown: EventFD
    let ready: EventFD
    let counters: PipelineCounters
    let logger: Logger
    /// Users of the root, for `user:` selectors.
    let users: UserDatabase
    /// Users for naming processes in alerts: the root's, then the host's.
    let displayUsers: UserDatabase
    let timer: TimerFD
    let ownPid = getpid()
    /// Readers of /proc (one reused buffer; used by this thread only).
    let procfs = ProcFS()
    /// The mask of all sinks (Vigil's own alerts go to every sink).
    let allSinks: UInt64

    /// Set before `ready` rings when the watcher cannot work (no events arrived): the daemon fails to start.
    var startFailure: String?

    var table: [Int32: ProcessEntry] = [:]
    /// The table of the watcher this one replaces (a reload), taken over before the start-up walk: a
    /// process that exits while the watchers change hands is still known when its exit event is read.
    var inheritedTable: [Int32: ProcessEntry]?
    /// Rules with a selector, and rules about every process.
    var specificRules: [Int] = []
    var everyProcessRules: [Int] = []
    /// `expect: running` rules: how many matching processes run, and whether the rule fires.
    var runningCount: [Int: Int] = [:]
    var expectFiring: [Int: Bool] = [:]
    var zombies: [Int32: ZombieWatch] = [:]
    var zombiesNotTracked = 0
    var timers = DeadlineHeap<TimerPurpose>()
    var armedDeadline: UInt64 = 0
    var children: [Int32: ChildPurpose] = [:]
    /// The process that last made each rule fire (for restart units, messages and environment).
    var lastTrigger: [Int: ProcessEntry] = [:]
    /// What `/proc` reads each exec needs beyond stat, status and exe.
    var needsCommandLine = false
    var needsCgroup = false
    /// Whether uids are needed (user selectors, root rules, user fields): `/proc/PID/status` is read only then.
    var needsUsers = false
    var hasZombieRules = false
    /// Set once the start-up walk is done: from then on, counts that change fire and resolve.
    var started = false
    /// Losses (ENOBUFS) since the last walk of /proc, a walk waiting on the timer, and when the last ran.
    var lossesSinceResync = 0
    var resyncScheduled = false
    var lastResync: UInt64 = 0
    /// Monotonic time the current datagram was read (0 for timers and start-up).
    var eventTime: UInt64 = 0
    /// The probe's child and what of it has been seen.
    var probePid: Int32 = 0
    var probeSawExec = false
    var probeSawExit = false
    /// The `listening:` rules and what they know (ProcessWatcher+Listening.swift).
    var listening: ListeningState
    /// `above:` rules: their member pids, samplers and holds.
    var thresholds: ThresholdState
    /// Exit records (taskstats) of processes whose exec this watcher could not read, or has not handled yet,
    /// by pid: consulted at the connector's exit event, which the kernel sends after the record.
    var exitRecords: [Int32: TaskExitStats.Exit] = [:]
    /// Processes whose exit was judged without their record since the last read of the records' socket:
    /// their record, read next, is not kept (the kernel queues it before the exit event, so it is there).
    var exitsWithoutRecord: Set<Int32> = []
    /// Every literal `exe:` path of the rules (host paths): an exit record's executable (device and inode)
    /// is compared with these, so a process gone before its exec was read can still match by executable.
    var literalExecutables: [String] = []
    private let buffer: UnsafeMutableRawBufferPointer
    /// The exit records' own read buffer: they are read while a connector datagram in `buffer` is decoded.
    private let exitRecordBuffer: UnsafeMutableRawBufferPointer

    init(
        settings: Settings,
        rules: [Rule],
        sinkNames: [String],
        connector: ProcConnector,
        outlet: AlertOutlet,
        counters: PipelineCounters,
        logger: Logger
    ) throws(DaemonError) {
        self.settings = settings
        self.connector = connector
        self.outlet = outlet
        self.counters = counters
        self.logger = logger
        users = UserDatabase(root: settings.root.root.isEmpty ? "/" : settings.root.root)
        var display = users
        if !settings.root.root.isEmpty { display.fillGaps(from: UserDatabase(root: "/")) }
        displayUsers = display
        var problems: [String] = []
        var compiled: [CompiledRule] = []
        let masks = SinkMasks(sinkNames: sinkNames)
        self.allSinks = masks.all
        for rule in rules {
            guard case .process(let subject) = rule.subject else { continue }
            let selector = CompiledSelector(
                Self.effectiveSelector(of: subject, systemdRunning: settings.systemdRunning),
                root: settings.root,
                users: users,
                unknownUsers: &problems
            )
            let mask = masks.mask(for: rule)
            var restart: ServiceSupervisor?
            var reload: ServiceSupervisor?
            var targets: [ServiceSupervisor.Kind: CompiledSelector] = [:]
            for action in rule.actions {
                let spec: ServiceAction
                let kind: ServiceSupervisor.Kind
                switch action {
                case .alert, .sanitize, .chmod, .chown, .exec: continue
                case .restart(let action): (spec, kind) = (action, .restart)
                case .reload(let action): (spec, kind) = (action, .reload)
                }
                if let target = spec.target {
                    targets[kind] = CompiledSelector(target, root: settings.root, users: users, unknownUsers: &problems)
                }
            }
            for action in rule.actions {
                switch action {
                case .alert, .sanitize, .chmod, .chown, .exec: break
                case .restart(let spec): restart = ServiceSupervisor(kind: .restart, action: spec)
                case .reload(let spec): reload = ServiceSupervisor(kind: .reload, action: spec)
                }
            }
            var allowed: [CompiledSelector.Glob] = []
            if case .root(let allow) = subject.trigger {
                let root = CompiledSelector.escapeGlob(settings.root.root)
                allowed = allow.map { CompiledSelector.Glob(root + $0) }
            }
            compiled.append(
                CompiledRule(
                    rule: rule,
                    process: subject,
                    selector: selector,
                    sinkMask: mask,
                    labels: rule.tagLabels,
                    allowed: allowed,
                    restart: restart,
                    reload: reload,
                    signalTargets: targets
                )
            )
        }
        // A restart with no way to reach the service here is said at start-up, with the rule's position.
        if !settings.systemdRunning {
            for rule in compiled {
                for action in rule.rule.actions {
                    guard case .restart(let spec) = action, spec.command == nil, spec.signal == nil else { continue }
                    logger.warning(
                        "\(spec.location): warning: rule '\(rule.rule.id)' restarts through systemctl, but systemd is not PID 1 here; add command: (the service's start command) to restart it off systemd"
                    )
                }
            }
        }
        if !problems.isEmpty {
            throw DaemonError(problems.joined(separator: "\n") + "\nvigil: process rules were not loaded")
        }
        self.rules = compiled
        ruleCount = compiled.count
        var literals: [String] = []
        for rule in compiled {
            for glob in rule.selector.executables {
                if let path = glob.literal, !literals.contains(path) { literals.append(path) }
            }
        }
        literalExecutables = literals
        listening = ListeningState(rules: rules, root: settings.root, masks: masks)
        thresholds = ThresholdState(compiled)
        for (index, rule) in compiled.enumerated() {
            if rule.selector.matchesEverything {
                everyProcessRules.append(index)
            } else {
                specificRules.append(index)
            }
            // argv[0]'s base name is one of the names a `name:` matches.
            needsCommandLine =
                needsCommandLine || rule.selector.needsCommandLine || !rule.selector.names.isEmpty
                || rule.rule.message.fieldNames.contains("argv")
                || rule.rule.resolvedMessage?.fieldNames.contains("argv") == true
            needsCgroup = needsCgroup || rule.selector.needsCgroup || rule.restart != nil || rule.reload != nil
            if case .zombie = rule.process.trigger { hasZombieRules = true }
            if case .root = rule.process.trigger { needsUsers = true }
            // A message naming the user (threshold rules' default one does) needs /proc/PID/status at exec.
            let fields = rule.rule.message.fieldNames + (rule.rule.resolvedMessage?.fieldNames ?? [])
            needsUsers =
                needsUsers || rule.selector.needsUsers || rule.signalTargets.values.contains(where: \.needsUsers)
                || fields.contains { $0 == "user" || $0 == "uid" || $0 == "euid" }
            needsCommandLine = needsCommandLine || rule.signalTargets.values.contains(where: \.needsCommandLine)
            needsCgroup = needsCgroup || rule.signalTargets.values.contains(where: \.needsCgroup)
        }
        needsCgroup =
            needsCgroup
            || compiled.contains {
                $0.rule.message.fieldNames.contains("unit") || $0.rule.message.fieldNames.contains("cgroup")
            }
        do {
            shutdown = try EventFD()
            ready = try EventFD()
            timer = try TimerFD()
        } catch {
            throw DaemonError("Failed to set up the process watcher: \(error)")
        }
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        exitRecordBuffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: TaskExitStats.recommendedReadSize,
            alignment: 16
        )
    }

    deinit {
        buffer.deallocate()
        exitRecordBuffer.deallocate()
    }

    /// A `service:` rule matches the service's unit where systemd is PID 1; elsewhere no cgroup names a
    /// unit, so it matches processes whose executable is named like the service (the unit name without
    /// `.service`, in any directory). Not `name:`: the init script `/etc/init.d/NAME` that starts and stops
    /// the service has that name too (a script's comm is its file name), and would count as the service.
    static func effectiveSelector(of subject: ProcessSubject, systemdRunning: Bool) -> ProcessSelector {
        guard let service = subject.service, !systemdRunning else { return subject.selector }
        let name = service.hasSuffix(".service") ? String(service.dropLast(".service".count)) : service
        return ProcessSelector(executables: ["*/" + CompiledSelector.escapeGlob(name)])
    }

    // MARK: Thread body

    private static let connectorTag: UInt64 = 1
    private static let shutdownTag: UInt64 = 2
    private static let timerTag: UInt64 = 3

    /// The thread body: walks `/proc`, judges the expected processes, probes the connector, rings `ready`,
    /// then follows the kernel's events until shutdown.
    func run() {
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.add(connector.descriptor, tag: Self.connectorTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
            try epoll.add(timer.descriptor, tag: Self.timerTag)
        } catch {
            preconditionFailure("ProcessWatcher: epoll setup failed: \(error)")
        }
        // The socket is subscribed already (in init), so nothing that starts during the walk is missed:
        // its events wait in the socket and are applied after.
        if let inherited = inheritedTable {
            inheritedTable = nil
            // Matched against these rules afresh, parents first, including processes that died since the
            // old watcher stopped (their exit events wait in the socket).
            for (pid, var entry) in inherited {
                entry.matched = []
                table[pid] = entry
            }
            for pid in table.keys.sorted() {
                guard var entry = table[pid] else { continue }
                rematch(&entry, executed: false)
            }
        }
        walkProc(resynchronising: false)
        startListening()
        startThresholdSampling()
        startProbe()
        var stopping = false
        var isReady = false
        if !settings.probe {
            isReady = true
            ready.ring()
        }
        let probeDeadline = Clock.monotonicNanoseconds() + settings.probeTimeoutNanoseconds
        while !stopping {
            var timerFired = false
            var timeout: CInt = -1
            if !isReady {
                let now = Clock.monotonicNanoseconds()
                timeout = now >= probeDeadline ? 0 : CInt((probeDeadline - now) / 1_000_000 + 1)
            }
            do {
                try epoll.wait(timeoutMilliseconds: timeout) { tag in
                    switch tag {
                    case Self.shutdownTag: stopping = true
                    case Self.timerTag: timerFired = true
                    default: break
                    }
                }
            } catch {
                preconditionFailure("ProcessWatcher: epoll_wait failed: \(error)")
            }
            receiveAll()
            if timerFired {
                timer.acknowledge()
                armedDeadline = 0
                runDueTimers()
            }
            if !isReady {
                // The probe's own events, or a loss (ENOBUFS proves the kernel is sending to this socket).
                if (probeSawExec && probeSawExit) || counters.processEventsLost.load(ordering: .relaxed) > 0 {
                    isReady = true
                    ready.ring()
                } else if Clock.monotonicNanoseconds() >= probeDeadline {
                    startFailure = probeFailureMessage()
                    ready.ring()
                    return
                }
            }
        }
    }

    /// Most datagrams judged per wake-up: under a storm of processes the socket may never run empty, and the
    /// loop must still see its timers, the shutdown doorbell and the probe (epoll is level-triggered, so the
    /// rest is read on the next turn).
    static let datagramsPerTurn = 512

    /// Reads and judges the datagrams waiting in the socket, up to `datagramsPerTurn`.
    private func receiveAll() {
        receiveExitRecords()
        for _ in 0..<Self.datagramsPerTurn {
            switch connector.receive(into: buffer) {
            case .wouldBlock:
                return
            case .lost:
                // Counted now; the walk of /proc that repairs the table runs once per loss burst (below).
                counters.processEventsLost.add(1, ordering: .relaxed)
                lossesSinceResync += 1
                scheduleResync()
            case .datagram(let count):
                eventTime = Clock.monotonicNanoseconds()
                counters.processDatagrams.add(1, ordering: .relaxed)
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                let outcome = ProcEventDecoder.decode(bytes, readTime: eventTime) { record in handle(record) }
                if outcome.malformed > 0 { counters.decodeErrors.add(UInt64(outcome.malformed), ordering: .relaxed) }
            }
        }
    }

    /// Most exit records kept waiting for their exit event (a loss on the connector can leave some unclaimed).
    static let exitRecordLimit = 4096

    /// Reads the exit records waiting in their socket, keeping those of processes not identified from /proc
    /// (gone before their exec could be read, or whose events are not handled yet) until their exit event.
    ///
    /// The socket is not in the epoll set: its own wake-up would come just before the exit event's, from
    /// the same dying process, and cost a second switch on the death path. It is read at every wake-up of
    /// the connector instead (every exit sends one of each, so it never fills), and again when an exit
    /// needs its record.
    func receiveExitRecords() {
        guard let records = connector.exitRecords else { return }
        defer { exitsWithoutRecord.removeAll(keepingCapacity: true) }
        for _ in 0..<Self.datagramsPerTurn {
            let outcome = records.receive(into: exitRecordBuffer) { pid, tgid in
                pid == tgid && table[pid]?.captured != true && !exitsWithoutRecord.contains(pid)
            } _: { record in
                if exitRecords.count >= Self.exitRecordLimit { exitRecords.removeAll(keepingCapacity: true) }
                exitRecords[record.pid] = record
            }
            switch outcome {
            case .datagram: continue
            case .wouldBlock: return
            case .lost: counters.exitRecordsLost.add(1, ordering: .relaxed)
            }
        }
    }

    /// Resynchronises from /proc at most every `resyncIntervalNanoseconds`: a walk costs milliseconds, and
    /// walking on every ENOBUFS of a storm would lose more events than it repairs.
    private func scheduleResync() {
        guard !resyncScheduled else { return }
        resyncScheduled = true
        let now = Clock.monotonicNanoseconds()
        schedule(.resync, at: max(now, lastResync &+ Self.resyncIntervalNanoseconds))
    }

    static let resyncIntervalNanoseconds: UInt64 = 250_000_000

    // MARK: Timers

    func schedule(_ purpose: TimerPurpose, at deadline: UInt64) {
        timers.push(deadline, purpose)
        if armedDeadline == 0 || deadline < armedDeadline {
            armedDeadline = deadline
            timer.arm(deadline: deadline)
        }
    }

    private func runDueTimers() {
        eventTime = 0
        let now = Clock.monotonicNanoseconds()
        while let (_, purpose) = timers.popDue(now: now) {
            switch purpose {
            case .zombieCheck(let pid, let startTime): checkZombie(pid: pid, startTime: startTime)
            case .scheduledAction(let rule, let kind): runScheduledAction(rule: rule, kind: kind)
            case .confirmRestart(let rule, let token): restartConfirmationExpired(rule: rule, token: token)
            case .resync:
                resyncScheduled = false
                lastResync = Clock.monotonicNanoseconds()
                eventsLost()
            case .listeners(let read): listenerTimer(read)
            case .thresholdSample: sampleThresholds()
            }
        }
        if let next = timers.earliest {
            armedDeadline = next
            timer.arm(deadline: next)
        }
    }
}
