public import Logging
import VigilCore
public import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Vigil's data plane, wired: the matcher thread (which reads inotify itself, see `FileSource`) and the
/// action worker, joined by an SPSC ring with an eventfd doorbell.
///
/// ```
/// inotify ─► vigil-match (read · decode · route · judge) ──ring──► vigil-action ─► sinks (JSON Lines, stdout)
/// ```
/// `start()` returns once every watch is in place and every file has been judged once (state rules already
/// true have fired). `stop()` drains the pipeline: nothing read from the kernel is dropped.
public final class Daemon: @unchecked Sendable {
    // @unchecked Sendable: the thread handles are touched only by the thread that calls start() and stop().

    /// What to run.
    public struct Options: Sendable {
        /// The compiled rules.
        public var ruleSet: RuleSet
        /// Host directory that stands for `/` in every rule path (`--root`); "/" for the real root.
        public var root: String
        /// Extra JSON Lines files to write alerts to (`--alerts FILE`; "-" means stdout). Host paths.
        public var extraAlertFiles: [String]
        /// Largest config file Vigil reads, in bytes.
        public var configSizeLimit: Int
        /// How long a vanished file must stay gone to count as deleted, in milliseconds.
        public var deletionSettleMilliseconds: Int
        /// False (`--no-process-rules`): process rules are not loaded and the proc connector is not opened.
        public var processRules: Bool = true
        /// Probe at start-up that process events arrive; the daemon fails to start when none do.
        public var probeProcessEvents: Bool = true
        /// How often a zombie is checked again until it is reaped, in milliseconds.
        public var zombieRecheckMilliseconds: Int = 250
        /// The proc connector's receive buffer (forced with SO_RCVBUFFORCE); smaller loses events in bursts.
        public var processReceiveBufferBytes: Int = 4 << 20
        /// Host directory of Vigil's state (log offsets); nil: `/var/lib/vigil` inside the root.
        public var stateDirectory: String?
        /// Longest log line; longer lines are split into pieces of this size, each flagged.
        public var logLineLimit: Int = 64 << 10
        /// Least time between two saves of the log state, in milliseconds.
        public var logStateIntervalMilliseconds: Int = 250
        /// How long a rotated-away or deleted log stays open after its last growth, in milliseconds.
        public var logLingerMilliseconds: Int = 2000
        /// Jobs the gzip worker of `rotate:` rules queues; when full, a rotation stays uncompressed (alerted)
        /// and is compressed at the rule's next rotation.
        public var compressionQueueCapacity: Int = 64
        /// Tests only: `every:` rotations come every this many milliseconds from start-up instead of at
        /// calendar boundaries (and start-up catch-up is off). nil in production.
        public var rotationIntervalOverrideMilliseconds: Int?
        /// Overrides whether systemd counts as PID 1 (nil: detected): how `postrotate: { unit: }`, restart and
        /// reload reach a unit, and whether `service:` rules match units or names.
        public var systemdRunning: Bool?
        /// Most inotify watches the mode and owner rules may use (`--max-watches`); nil: the kernel's limit.
        public var permissionWatchBudget: Int?
        /// `--dry-run`: evaluate everything and report what each action would do, without doing it.
        public var dryRun = false

        public init(
            ruleSet: RuleSet,
            root: String = "/",
            extraAlertFiles: [String] = [],
            configSizeLimit: Int = 1 << 20,
            deletionSettleMilliseconds: Int = 100
        ) {
            self.ruleSet = ruleSet
            self.root = root
            self.extraAlertFiles = extraAlertFiles
            self.configSizeLimit = configSizeLimit
            self.deletionSettleMilliseconds = deletionSettleMilliseconds
        }
    }

    /// Counters of the running pipeline.
    public let counters = PipelineCounters()
    let logger: Logger
    /// The rules running (replaced by a reload).
    var ruleSet: RuleSet
    /// `--dry-run`: nothing is changed, so only the capabilities that reading needs are kept.
    let dryRun: Bool
    let matcher: Matcher
    // The watchers are replaced by reloads (on the thread that calls start, reload and stop).
    var processWatcher: ProcessWatcher?
    var logWatcher: LogWatcher?
    var rotationWatcher: RotationWatcher?
    var permissionWatcher: PermissionWatcher?
    var escalationWatcher: EscalationWatcher?
    var systemWatcher: SystemWatcher?
    /// Conditions inherited by a reload or a restart, waiting to be resolved unless asserted again.
    var pendingSweeps: [PendingSweep] = []
    /// Rules with conditions read back from the state file, swept once the watchers are ready.
    var restoredRules: Set<String> = []
    /// The ledger's change count at the last save of the firing state, and whether a save failed.
    var savedFiringChanges: UInt64 = 0
    var reportedFiringStateFailure = false
    /// Reloads that failed since the last one that worked.
    var reloadFailures = 0
    /// What the watchers are built from, for reloads.
    let wiring: WatcherWiring
    /// Each watcher's outlet (the matcher has its own).
    let outlets: [WatcherKind: AlertOutlet]
    /// The outlet of the daemon's own alerts (reload failures, conditions that cleared while vigil was not
    /// looking): used by the thread that calls start, reload and stop.
    let ownOutlet: AlertOutlet
    let worker: ActionWorker
    private let slots: [SinkSlot]
    private let deliverySinks: [DeliverySink]
    let board: NoticeBoard?
    /// systemd's watchdog, pinged from the matcher's loop.
    let watchdog = PipelineWatchdog()
    private var sinkThreads: [ThreadHandle] = []
    private var boardThread: ThreadHandle?
    var workerThread: ThreadHandle?
    /// Runs the programs of `exec:` actions (`vigil-exec`).
    var execThread: ThreadHandle?
    var matcherThread: ThreadHandle?
    var watcherThread: ThreadHandle?
    var logThread: ThreadHandle?
    var rotationThread: ThreadHandle?
    var permissionThread: ThreadHandle?
    var escalationThread: ThreadHandle?
    var systemThread: ThreadHandle?

    /// Builds the pipeline and opens every sink. Throws `DaemonError` with a one-line message.
    public init(options: Options, logger: Logger) throws(DaemonError) {
        self.logger = logger
        // A lease break (a writer opening a config while we read it) sends SIGIO, whose default action
        // would kill the daemon; a reader on a closed stdout gets SIGPIPE. Both become plain errors.
        SignalFD.ignore(SIGIO)
        SignalFD.ignore(SIGPIPE)
        // A file past RLIMIT_FSIZE (a compressed rotation, an alert file) must fail with EFBIG, not kill us.
        SignalFD.ignore(SIGXFSZ)
        let root = RootedPath(root: options.root)
        let host = HostName.current()
        let stateDirectory = options.stateDirectory ?? root.hostPath("/var/lib/vigil")
        let options = Self.dryRunOptions(options, stateDirectory: stateDirectory, logger: logger)
        self.ruleSet = options.ruleSet
        dryRun = options.dryRun
        let needsState =
            options.ruleSet.rules.contains { $0.enabled && $0.isLogRule }
            || options.ruleSet.sinks.contains { !$0.kind.isLocal }
        // Firing conditions are kept there too, but without log rules or remote sinks a missing state
        // directory only costs that (said when saving). A dry run writes no state.
        if !options.dryRun && !FileTree.makeDirectories(stateDirectory, mode: 0o700) && needsState {
            throw DaemonError(
                "Failed to create the state directory '\(stateDirectory)': \(String(cString: strerror(errno))); create it or pass --state-dir (StateDirectory=vigil in vigil.service)"
            )
        }
        let (slots, specs) = try Self.makeSinkSlots(
            options: options,
            root: root,
            host: host,
            stateDirectory: stateDirectory,
            logger: logger
        )
        self.slots = slots
        deliverySinks = slots.compactMap { slot in
            if case .remote(let sink) = slot { return sink }
            return nil
        }
        let sinkNames = specs.map(\.name)
        do {
            board = try NoticeBoard(
                rules: options.ruleSet.rules.filter(\.enabled),
                heartbeats: specs.enumerated().compactMap { index, spec in
                    spec.delivery.heartbeatMilliseconds.map {
                        NoticeBoard.Heartbeat(
                            sinkIndex: index,
                            sinkName: spec.name,
                            periodNanoseconds: UInt64(max(1, $0)) * 1_000_000
                        )
                    }
                },
                host: host,
                logger: logger
            )
        } catch {
            throw DaemonError("Failed to set up the event pipeline: \(error)")
        }
        do {
            let inotify = try Inotify()
            worker = try ActionWorker(slots: slots, host: host, counters: counters, logger: logger)
            watchdog.follow(worker: worker, logger: logger)
            worker.board = board
            worker.severityMasks = SeverityMasks(minimums: specs.map(\.minimumSeverity))
            worker.exec = try ExecRunner(
                rules: options.ruleSet.rules,
                host: host,
                dryRun: options.dryRun,
                outlet: try worker.makeOutlet(),
                counters: counters,
                logger: logger
            )
            if let board { board.attach(outlet: try worker.makeOutlet(consultsBoard: false)) }
            for sink in deliverySinks { sink.attach(outlet: try worker.makeOutlet()) }
            let settings = Matcher.Settings(
                root: root,
                host: host,
                configSizeLimit: options.configSizeLimit,
                deletionSettleNanoseconds: UInt64(options.deletionSettleMilliseconds) * 1_000_000,
                watchdog: watchdog,
                snapshots: options.dryRun ? nil : ConfigSnapshotStore(stateDirectory: stateDirectory)
            )
            matcher = try Matcher(
                settings: settings,
                rules: options.ruleSet.rules.filter {
                    if case .config = $0.subject { return $0.enabled }
                    if case .file = $0.subject { return $0.enabled }
                    return false
                },
                sinkNames: sinkNames,
                inotify: inotify,
                outlet: try worker.makeOutlet(),
                counters: counters,
                logger: logger
            )
        } catch let error as InotifyError {
            throw DaemonError(error.description)
        } catch {
            throw DaemonError("Failed to set up the event pipeline: \(error)")
        }
        wiring = WatcherWiring(
            options: options,
            root: root,
            host: host,
            stateDirectory: stateDirectory,
            sinkNames: sinkNames,
            sinkPaths: slots.map { slot in
                if case .local(let sink) = slot, case .file(let path) = sink.target { return path }
                return nil
            },
            counters: counters,
            logger: logger
        )
        // One outlet per watcher, made now whether or not it has rules: a reload may start it later, and
        // the worker takes outlets only before it runs. A rebuilt watcher takes over its predecessor's.
        var outlets: [WatcherKind: AlertOutlet] = [:]
        for kind in WatcherKind.allCases where kind != .files { outlets[kind] = try Self.outlet(from: worker) }
        self.outlets = outlets
        ownOutlet = try Self.outlet(from: worker)
        let rules = options.ruleSet.rules
        let logRules = WatcherKind.logs.rules(of: rules)
        logWatcher = try Self.makeLogWatcher(wiring, rules: logRules, outlet: outlets[.logs]!)
        rotationWatcher = try Self.makeRotationWatcher(
            wiring,
            rules: WatcherKind.rotation.rules(of: rules),
            outlet: outlets[.rotation]!
        )
        permissionWatcher = try Self.makePermissionWatcher(
            wiring,
            rules: WatcherKind.permissions.rules(of: rules),
            outlet: outlets[.permissions]!
        )
        escalationWatcher = try Self.makeEscalationWatcher(
            wiring,
            rules: WatcherKind.escalation.rules(of: rules),
            outlet: outlets[.escalation]!
        )
        systemWatcher = try Self.makeSystemWatcher(
            wiring,
            rules: WatcherKind.system.rules(of: rules),
            logRules: logRules,
            outlet: outlets[.system]!
        )
        let processRules = WatcherKind.processes.rules(of: rules)
        if !processRules.isEmpty && options.processRules {
            let connector = try Self.openConnector(wiring)
            processWatcher = try Self.makeProcessWatcher(
                wiring,
                rules: processRules,
                connector: connector,
                probe: options.probeProcessEvents,
                outlet: outlets[.processes]!
            )
        } else {
            if !processRules.isEmpty {
                logger.notice("\(processRules.count) process rule(s) not loaded (--no-process-rules)")
            }
            processWatcher = nil
        }
    }

    /// A new outlet of the action worker for one watcher thread.
    private static func outlet(from worker: ActionWorker) throws(DaemonError) -> AlertOutlet {
        do { return try worker.makeOutlet() } catch {
            throw DaemonError("Failed to set up the event pipeline: \(error)")
        }
    }

    /// Drops every capability the loaded rules do not need (call after `init`, which opened the kernel
    /// sockets, and before `start`, so every thread inherits the smaller set). Logs what was kept, and warns
    /// with the rule's position for each rule that needs a capability the daemon does not hold.
    public func dropCapabilities() {
        let before = Capabilities.current()
        let (needed, spawnsPrograms) = capabilityNeeds(of: ruleSet.rules, held: before.permitted)
        do {
            let kept = try Capabilities.restrict(to: needed, dropBounding: !spawnsPrograms)
            let boundingNote =
                spawnsPrograms
                ? "; the bounding set is kept because restart/reload commands and exec: programs run as root programs"
                : ""
            logger.info(
                "Capabilities kept: \(kept.isEmpty ? "none" : kept.names.joined(separator: ", ")) (dropped \(before.effective.subtracting(kept).names.count) others)\(boundingNote)"
            )
        } catch {
            logger.warning("\(error); running with the capabilities vigil was started with")
        }
    }

    /// The capabilities `rules` need, and whether they run programs (restart and reload commands, which
    /// need the bounding set kept). Warns, with the rule's position, for each rule that needs one not in
    /// `held` (at start-up; and at a reload, which cannot get back what start-up dropped).
    func capabilityNeeds(
        of rules: [Rule],
        held: CapabilitySet,
        reloading: Bool = false
    ) -> (needed: CapabilitySet, spawnsPrograms: Bool) {
        let fix =
            reloading
            ? "restart vigil to get it (start-up dropped what no rule needed then; CapabilityBoundingSet= in vigil.service must list it)"
            : "add it to CapabilityBoundingSet= in vigil.service"
        var needed = CapabilitySet()
        var spawnsPrograms = false
        func need(_ capability: CapabilitySet, _ why: String, rule: Rule?) {
            needed.formUnion(capability)
            if !held.has(capability), let rule {
                logger.warning(
                    "\(rule.location): warning: rule '\(rule.id)' needs \(capability.names.joined(separator: ", ")) \(why), which vigil does not hold; \(fix)"
                )
            }
        }
        for rule in rules where rule.enabled {
            // exec: programs run as root with the capabilities root has: they need none of the daemon's,
            // but the bounding set is kept so that they are not weaker than the rule's author expects.
            if !dryRun, rule.actions.contains(where: { if case .exec = $0 { true } else { false } }) {
                spawnsPrograms = true
            }
            switch rule.subject {
            case .config, .file:
                need(.dacReadSearch, "to read files other users own", rule: nil)
                // A read lease (how a config is proven complete) on another user's file needs CAP_LEASE.
                need(.lease, "to take read leases on files other users own", rule: nil)
            case .log:
                need(.dacReadSearch, "to read logs other users own", rule: nil)
                if !dryRun, rule.actions.contains(where: { if case .sanitize = $0 { true } else { false } }) {
                    need(.dacOverride, "to mask secrets in logs other users own", rule: rule)
                }
            case .permissions:
                need(.dacReadSearch, "to walk directories other users own", rule: nil)
                for action in rule.actions where !dryRun {
                    switch action {
                    // chmod of another user's file needs CAP_FOWNER; chown needs CAP_CHOWN, and clears
                    // setuid/setgid bits that chmod then restores.
                    case .chmod: need(.fowner, "to restore the mode of files other users own", rule: rule)
                    case .chown: need([.chown, .fowner], "to restore owners and groups", rule: rule)
                    default: break
                    }
                }
            case .rotate(let subject):
                need(.dacReadSearch, "to read logs other users own", rule: nil)
                // A dry run only reads the logs and their directories, and runs and signals nothing.
                guard !dryRun else { continue }
                // Renaming, creating and deleting in log directories other users own, and the owner of the
                // new file and the archives.
                need(.dacOverride, "to rotate logs in directories other users own", rule: rule)
                // The new log (create:) and the compressed rotation get the rotated log's owner (or the one
                // the rule names) through fchown: needed whenever the log is not root's own.
                if subject.create != nil || subject.compress || subject.copyTruncate {
                    need(.chown, "to give new logs and compressed rotations their owner", rule: rule)
                }
                need(.fowner, "to set the mode of rotated logs other users own", rule: rule)
                if let post = subject.postRotate {
                    if post.command != nil || post.unit != nil || HostFeatures.systemdIsRunning {
                        spawnsPrograms = true
                    }
                    // `to:` alone sends SIGHUP.
                    if post.signal != nil || post.target != nil {
                        need(.kill, "to signal the writer of a rotated log", rule: rule)
                    }
                }
            case .escalation:
                need(.dacReadSearch, "to read other users' directories and /var/spool/cron/crontabs", rule: nil)
            case .pressure, .disk:
                // statfs and inotify on paths below directories other users own.
                need(.dacReadSearch, "to check filesystems below directories other users own", rule: nil)
            case .listening:
                guard processWatcher != nil else { continue }
                need(
                    [.sysPtrace, .dacReadSearch],
                    "to find the owners of listening sockets in other users' /proc/PID/fd",
                    rule: rule
                )
            case .process:
                guard processWatcher != nil else { continue }
                need(.sysPtrace, "to read other users' /proc/PID/exe", rule: rule)
                for action in rule.actions where !dryRun {
                    switch action {
                    case .alert, .sanitize, .chmod, .chown, .exec: break
                    case .restart(let spec), .reload(let spec):
                        if spec.command != nil || spec.unit != nil || HostFeatures.systemdIsRunning {
                            spawnsPrograms = true
                        }
                        if spec.signal != nil || spec.command == nil {
                            need(.kill, "to signal processes of other users", rule: rule)
                        }
                    }
                }
            }
        }
        return (needed, spawnsPrograms)
    }

    /// Lowers the calling thread's nice value to `nice` (threads it creates inherit it); returns the value
    /// before, for `restorePriority`. Without CAP_SYS_NICE (or already lower) it changes nothing. On Linux
    /// `setpriority(PRIO_PROCESS, 0, …)` applies to the calling thread only.
    public static func raisePipelinePriority(to nice: Int32) -> Int32 {
        errno = 0
        let before = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        if errno == 0 && before > nice {
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
        }
        return errno == 0 ? before : nice
    }

    /// Puts the calling thread back at `nice` (raising a nice value needs no privilege).
    public static func restorePriority(_ nice: Int32) {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
    }

    /// Number of log rules running.
    public var logRuleCount: Int { logWatcher?.ruleCount ?? 0 }

    /// Number of rotate rules running.
    public var rotateRuleCount: Int { rotationWatcher?.ruleCount ?? 0 }

    /// Number of mode and owner rules running.
    public var permissionRuleCount: Int { permissionWatcher?.ruleCount ?? 0 }

    /// Number of escalation rules running.
    public var escalationRuleCount: Int { escalationWatcher?.ruleCount ?? 0 }

    /// Number of pressure and disk rules running (pressure rules the kernel refused are not counted).
    public var systemRuleCount: Int { systemWatcher?.ruleCount ?? 0 }

    /// Number of process rules running (0 without the proc connector).
    public var processRuleCount: Int { processWatcher?.ruleCount ?? 0 }

    /// Names of the alert sinks in use, in order (for the start-up log line).
    public var sinkDescriptions: [String] {
        slots.map { slot in
            switch slot {
            case .local(let sink): "\(sink.name) (\(sink.label))"
            case .remote(let sink): "\(sink.name) (\(sink.kindName), spool \(sink.spool.directory))"
            }
        }
    }

    /// Per remote sink, one line: delivered, refused, failed attempts, not spooled, left in its spool.
    public var deliveryTallies: [String] { deliverySinks.map(\.tally) }

    /// The private parts `/metrics` and `/status` read (see Daemon+Status.swift).
    var observed: DaemonObservables { DaemonObservables(worker: worker, sinks: deliverySinks, ruleSet: ruleSet) }

    /// Makes every writer of a JSON Lines sink reopen its file by name (SIGHUP after an outside rotation;
    /// renames and deletions in the files' directories are noticed without it).
    public func reopenAlertFiles() { worker.fileGeneration.bump() }

    /// Starts the threads; returns when every watch is placed, every file was judged once, the process table
    /// was built from `/proc` and process events were seen to arrive. Throws (after stopping what started)
    /// when process events do not arrive.
    public func start() throws(DaemonError) {
        restoreFiringState()
        let worker = self.worker
        let matcher = self.matcher
        workerThread = Threads.spawn(name: "vigil-action") { worker.run() }
        if let exec = worker.exec { execThread = Threads.spawn(name: "vigil-exec") { exec.run() } }
        for (i, sink) in deliverySinks.enumerated() {
            sinkThreads.append(Threads.spawn(name: "vigil-sink-\(i)") { sink.run() })
        }
        if let board { boardThread = Threads.spawn(name: "vigil-notice") { board.run() } }
        matcherThread = Threads.spawn(name: "vigil-match") { matcher.run() }
        watcherThread = Self.launch(processWatcher, .processes)
        logThread = Self.launch(logWatcher, .logs)
        rotationThread = Self.launch(rotationWatcher, .rotation)
        permissionThread = Self.launch(permissionWatcher, .permissions)
        escalationThread = Self.launch(escalationWatcher, .escalation)
        systemThread = Self.launch(systemWatcher, .system)
        matcher.ready.wait()
        logWatcher?.ready.wait()
        rotationWatcher?.ready.wait()
        permissionWatcher?.ready.wait()
        escalationWatcher?.ready.wait()
        systemWatcher?.ready.wait()
        if let watcher = processWatcher {
            watcher.ready.wait()
            if let failure = watcher.startFailure {
                stop()
                throw DaemonError(failure)
            }
        }
        scheduleRestartSweeps()
    }

    /// Lets the matchers judge what the kernel already reported, then the worker deliver what is queued, and
    /// joins the threads.
    public func stop() {
        guard let workerThread, let matcherThread else { return }
        matcher.shutdown.ring()
        Threads.join(matcherThread)
        Self.halt(processWatcher, watcherThread)
        processWatcher?.connector.close()
        Self.halt(logWatcher, logThread)
        // Waits for the compression in progress (queued ones are done at the next start).
        Self.halt(rotationWatcher, rotationThread)
        Self.halt(permissionWatcher, permissionThread)
        Self.halt(escalationWatcher, escalationThread)
        Self.halt(systemWatcher, systemThread)
        // The board summarises its open windows into its outlet before the worker's last drain.
        if let boardThread, let board {
            board.shutdown.ring()
            Threads.join(boardThread)
            self.boardThread = nil
        }
        // Before the worker: the runner's last failure alerts still reach the sinks.
        if let execThread, let exec = worker.exec {
            exec.shutdown.ring()
            Threads.join(execThread)
            self.execThread = nil
        }
        worker.shutdown.ring()
        Threads.join(workerThread)
        // The remote sinks deliver what the last drain spooled while their receivers answer (briefly);
        // the rest stays in their spools for the next start.
        for sink in deliverySinks { sink.shutdown.ring() }
        for thread in sinkThreads { Threads.join(thread) }
        sinkThreads = []
        for sink in deliverySinks { sink.spool.close() }
        // Every producer stopped: the firing conditions are final.
        saveFiringState(durable: true)
        worker.closeOutlets()
        self.workerThread = nil
        self.matcherThread = nil
        self.watcherThread = nil
        self.logThread = nil
        self.rotationThread = nil
        self.permissionThread = nil
        self.escalationThread = nil
        self.systemThread = nil
        for sink in worker.sinks { sink.close() }
    }
}

/// A daemon failure, as one line that says what failed and what to do.
public struct DaemonError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
