import Logging
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The watcher threads of the daemon, each with its rules: which watcher runs a rule, and how each is
/// built. One place for both, because start-up and every reload build them the same way.
enum WatcherKind: String, CaseIterable, Sendable {
    /// `config:` and `file:` rules: the matcher (vigil-match), rebuilt in place on reload.
    case files
    case logs
    case rotation
    case permissions
    case escalation
    case system
    /// `process:` and `listening:` rules (listening rules take their cue from exec events).
    case processes

    /// The watcher that runs `rule`.
    init(of rule: Rule) {
        switch rule.subject {
        case .config, .file: self = .files
        case .log: self = .logs
        case .rotate: self = .rotation
        case .permissions: self = .permissions
        case .escalation: self = .escalation
        case .pressure, .disk: self = .system
        case .process, .listening: self = .processes
        }
    }

    /// The thread's name.
    var threadName: String {
        switch self {
        case .files: "vigil-match"
        case .logs: "vigil-log"
        case .rotation: "vigil-rotate"
        case .permissions: "vigil-perm"
        case .escalation: "vigil-esc"
        case .system: "vigil-sys"
        case .processes: "vigil-proc"
        }
    }

    /// The enabled rules of `rules` this watcher runs, in order.
    func rules(of rules: [Rule]) -> [Rule] {
        rules.filter { $0.enabled && WatcherKind(of: $0) == self }
    }
}

/// What every watcher is built from, kept after start-up for the rebuilds of a reload.
struct WatcherWiring {
    var options: Daemon.Options
    var root: RootedPath
    var host: String
    var stateDirectory: String
    var sinkNames: [String]
    /// Host path of each sink that is a JSON Lines file, by sink index.
    var sinkPaths: [String?]
    var counters: PipelineCounters
    var logger: Logger
}

extension Daemon {
    static func makeLogWatcher(
        _ wiring: WatcherWiring,
        rules: [Rule],
        outlet: AlertOutlet
    ) throws(DaemonError) -> LogWatcher? {
        guard !rules.isEmpty else { return nil }
        var settings = LogWatcher.Settings(
            root: wiring.root,
            host: wiring.host,
            statePath: wiring.stateDirectory + "/logs.state"
        )
        settings.lineLimit = max(1024, wiring.options.logLineLimit)
        settings.saveIntervalNanoseconds = UInt64(max(1, wiring.options.logStateIntervalMilliseconds)) * 1_000_000
        settings.lingerNanoseconds = UInt64(max(0, wiring.options.logLingerMilliseconds)) * 1_000_000
        settings.sinkPaths = wiring.sinkPaths
        settings.dryRun = wiring.options.dryRun ? DryRun(logger: wiring.logger) : nil
        return try LogWatcher(
            settings: settings,
            rules: rules,
            sinkNames: wiring.sinkNames,
            outlet: outlet,
            counters: wiring.counters,
            logger: wiring.logger
        )
    }

    static func makeRotationWatcher(
        _ wiring: WatcherWiring,
        rules: [Rule],
        outlet: AlertOutlet
    ) throws(DaemonError) -> RotationWatcher? {
        guard !rules.isEmpty else { return nil }
        var settings = RotationWatcher.Settings(root: wiring.root, host: wiring.host)
        settings.compressionQueueCapacity = max(1, wiring.options.compressionQueueCapacity)
        settings.boundaryOverrideNanoseconds = wiring.options.rotationIntervalOverrideMilliseconds.map {
            UInt64(max(1, $0)) * 1_000_000
        }
        if let systemd = wiring.options.systemdRunning { settings.systemdRunning = systemd }
        settings.dryRun = wiring.options.dryRun ? DryRun(logger: wiring.logger) : nil
        return try RotationWatcher(
            settings: settings,
            rules: rules,
            sinkNames: wiring.sinkNames,
            outlet: outlet,
            counters: wiring.counters,
            logger: wiring.logger
        )
    }

    static func makePermissionWatcher(
        _ wiring: WatcherWiring,
        rules: [Rule],
        outlet: AlertOutlet
    ) throws(DaemonError) -> PermissionWatcher? {
        guard !rules.isEmpty else { return nil }
        return try PermissionWatcher(
            settings: PermissionWatcher.Settings(
                root: wiring.root,
                host: wiring.host,
                watchBudget: wiring.options.permissionWatchBudget,
                dryRun: wiring.options.dryRun ? DryRun(logger: wiring.logger) : nil
            ),
            rules: rules,
            sinkNames: wiring.sinkNames,
            outlet: outlet,
            counters: wiring.counters,
            logger: wiring.logger
        )
    }

    static func makeEscalationWatcher(
        _ wiring: WatcherWiring,
        rules: [Rule],
        outlet: AlertOutlet
    ) throws(DaemonError) -> EscalationWatcher? {
        guard !rules.isEmpty else { return nil }
        return try EscalationWatcher(
            settings: EscalationWatcher.Settings(root: wiring.root, host: wiring.host),
            rules: rules,
            sinkNames: wiring.sinkNames,
            outlet: outlet,
            counters: wiring.counters,
            logger: wiring.logger
        )
    }

    /// `logRules`: the log rules running, whose directories' events also prompt disk checks.
    static func makeSystemWatcher(
        _ wiring: WatcherWiring,
        rules: [Rule],
        logRules: [Rule],
        outlet: AlertOutlet
    ) throws(DaemonError) -> SystemWatcher? {
        guard !rules.isEmpty else { return nil }
        var settings = SystemWatcher.Settings(root: wiring.root, host: wiring.host)
        settings.logDirectories = logRules.flatMap { rule -> [String] in
            if case .log(let subject) = rule.subject { return subject.paths.map(\.directory) }
            return []
        }
        // PSI triggers are created here, while the daemon may still hold CAP_SYS_RESOURCE: the kernel
        // checks the credentials that opened the pressure file.
        return try SystemWatcher(
            settings: settings,
            rules: rules,
            sinkNames: wiring.sinkNames,
            outlet: outlet,
            counters: wiring.counters,
            logger: wiring.logger
        )
    }

    /// Opens the proc connector, warning when its buffer cannot be forced to the size asked.
    static func openConnector(_ wiring: WatcherWiring) throws(DaemonError) -> ProcConnector {
        // Opened while the daemon still holds CAP_NET_ADMIN (binding needs it before Linux 6.6, and
        // SO_RCVBUFFORCE always): the capabilities are dropped before the threads start.
        let connector: ProcConnector
        do {
            connector = try ProcConnector(receiveBufferSize: wiring.options.processReceiveBufferBytes)
        } catch {
            throw DaemonError(error.description)
        }
        // Without CAP_NET_ADMIN the buffer is capped by net.core.rmem_max; warn only when that is smaller.
        if !connector.receiveBuffer.forced && connector.receiveBuffer.effective < connector.receiveBuffer.requested {
            wiring.logger.warning(
                "Could not force the proc connector's receive buffer to 4 MiB (SO_RCVBUFFORCE needs CAP_NET_ADMIN); it is \(connector.receiveBuffer.effective / 1024) KiB (net.core.rmem_max), so bursts of process events may be lost (they are counted, resynchronised and alerted)"
            )
        }
        // The kernel's exit records name a process that exits and is reaped before its exec can be read in
        // /proc. Registering needs CAP_NET_ADMIN now, like the buffer; without them such an exit is judged
        // without a name, as before.
        do {
            connector.exitRecords = try TaskExitStats(receiveBufferSize: wiring.options.processReceiveBufferBytes)
        } catch {
            wiring.logger.warning(
                "No taskstats exit records (\(error)): a process that exits before Vigil reads /proc at its exec (a program that runs for well under a millisecond) is not matched by name at its exit; see docs/operations.md#taskstats"
            )
        }
        return connector
    }

    /// `probe`: check at start-up that events arrive (not again when a reload hands over a connector that
    /// already delivered them).
    static func makeProcessWatcher(
        _ wiring: WatcherWiring,
        rules: [Rule],
        connector: ProcConnector,
        probe: Bool,
        outlet: AlertOutlet
    ) throws(DaemonError) -> ProcessWatcher {
        var settings = ProcessWatcher.Settings(
            root: wiring.root,
            host: wiring.host,
            probe: probe,
            zombieRecheckNanoseconds: UInt64(wiring.options.zombieRecheckMilliseconds) * 1_000_000
        )
        if let systemd = wiring.options.systemdRunning { settings.systemdRunning = systemd }
        settings.dryRun = wiring.options.dryRun ? DryRun(logger: wiring.logger) : nil
        return try ProcessWatcher(
            settings: settings,
            rules: rules,
            sinkNames: wiring.sinkNames,
            connector: connector,
            outlet: outlet,
            counters: wiring.counters,
            logger: wiring.logger
        )
    }
}

/// A watcher thread as the daemon drives it: run on its own thread, `ready` rung once it watches, stopped
/// by `shutdown` after it handled what the kernel already reported.
protocol WatcherThread: AnyObject, Sendable {
    var shutdown: EventFD { get }
    var ready: EventFD { get }
    func run()
}

extension LogWatcher: WatcherThread {}
extension RotationWatcher: WatcherThread {}
extension PermissionWatcher: WatcherThread {}
extension EscalationWatcher: WatcherThread {}
extension SystemWatcher: WatcherThread {}
extension ProcessWatcher: WatcherThread {}

extension Daemon {
    /// Starts `watcher`'s thread (nil: no thread, the watcher has no rules).
    static func launch(_ watcher: (any WatcherThread)?, _ kind: WatcherKind) -> ThreadHandle? {
        guard let watcher else { return nil }
        return Threads.spawn(name: kind.threadName) { watcher.run() }
    }

    /// Stops `watcher`'s thread and waits for it.
    static func halt(_ watcher: (any WatcherThread)?, _ thread: ThreadHandle?) {
        guard let watcher, let thread else { return }
        watcher.shutdown.ring()
        Threads.join(thread)
    }
}
