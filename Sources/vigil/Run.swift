import ArgumentParser
import Logging
import Synchronization
import VigilDaemon
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil run`: the daemon, in the foreground.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch what the rules name and act the moment it changes (runs in the foreground).",
        discussion: """
            Logs to stderr. SIGTERM or SIGINT stops it after draining the pipeline (alerts not yet delivered to \
            syslog, e-mail, webhook or Alertmanager sinks stay in their spools for the next start); SIGHUP \
            reopens the JSON Lines alert files and reloads the rules, as does a change in the rule files \
            (a broken file keeps the running rules and raises vigil.reload_failed). With $NOTIFY_SOCKET set \
            (systemd Type=notify) it reports READY=1 once every watch is in place, and RELOADING=1 around a \
            reload.
            """
    )

    @OptionGroup var ruleOptions: RuleOptions

    @OptionGroup var observability: ObservabilityOptions

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Treat DIR as '/' for every path in the rules (a sandbox copy of a server).",
            valueName: "dir"
        )
    )
    var root: String = "/"

    @Option(
        name: .long,
        help: ArgumentHelp("Also write alerts as JSON Lines to FILE ('-' for stdout). Repeatable.", valueName: "file")
    )
    var alerts: [String] = []

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Directory for Vigil's state (log offsets), a host path; default /var/lib/vigil inside --root.",
            valueName: "dir"
        )
    )
    var stateDir: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Least time between two saves of the log offsets, in milliseconds.", valueName: "ms")
    )
    var logStateInterval: Int = 250

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Most inotify watches the mode and owner rules may use (default: the kernel's fs.inotify.max_user_watches).",
            valueName: "n"
        )
    )
    var maxWatches: Int?

    @Flag(
        name: .long,
        help: "Run without process rules (where the proc connector is unavailable, e.g. in some containers)."
    )
    var noProcessRules = false

    @Flag(name: .long, help: "Keep every capability (do not drop to what the loaded rules need).")
    var keepCapabilities = false

    @Flag(
        name: .long,
        help: """
            Evaluate every rule and report what each action would do, without doing it: alerts go to stdout \
            (and --alerts files) with a dry_run label, not to the rules' sinks; nothing is changed, run or \
            signalled; no state is saved. See docs/dry-run.md.
            """
    )
    var dryRun = false

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level '\(logLevel)' is not a level; expected one of: trace, debug, info, notice, warning, error, critical"
            )
        }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "vigil")
        // The rule files are watched before they are read: a save from then on (one right after READY=1
        // included) is seen and reloads. Watched only after READY, a save in between was never picked up.
        let ruleWatch = RuleWatch(paths: ruleOptions.watchedPaths, logger: logger)
        let ruleSet: RuleSet
        switch ruleOptions.compile() {
        case .loaded(let loaded, let warnings):
            for line in warnings { RuleLoading.printError(line) }
            ruleSet = loaded
        case .failed(let lines):
            for line in lines { RuleLoading.printError(line) }
            throw ExitCode(1)
        }
        if root != "/" {
            var info = stat()
            guard stat(root, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                RuleLoading.printError(
                    "vigil: Failed to use --root '\(root)': it is not a directory; create it or fix the path"
                )
                throw ExitCode(1)
            }
        }
        // Block the signals before any thread exists, so only this thread receives them.
        let signals: SignalFD
        do {
            signals = try SignalFD(signals: [SIGTERM, SIGINT, SIGHUP])
        } catch {
            RuleLoading.printError("vigil: Failed to set up signal handling: \(error)")
            throw ExitCode(1)
        }
        let daemon: Daemon
        do {
            daemon = try Daemon(
                options: {
                    var options = Daemon.Options(ruleSet: ruleSet, root: root, extraAlertFiles: alerts)
                    options.processRules = !noProcessRules
                    options.stateDirectory = stateDir
                    options.logStateIntervalMilliseconds = logStateInterval
                    options.permissionWatchBudget = maxWatches.map { max(1, $0) }
                    options.dryRun = dryRun
                    return options
                }(),
                logger: logger
            )
        } catch {
            RuleLoading.printError("vigil: \(error)")
            throw ExitCode(1)
        }
        // The pipeline threads run at nice -10 (they inherit it from this thread; set while CAP_SYS_NICE is
        // still held): a short-lived process must be read in /proc before it is gone, and at nice 0 a busy
        // 2-core host delayed the watcher's wake-up past that often (281 of 300 caught; 297 at -10).
        let originalNice = Daemon.raisePipelinePriority(to: -10)
        // Every kernel socket is open: keep only the capabilities the loaded rules need, before any thread
        // starts (capabilities are per thread; new threads inherit them).
        if !keepCapabilities {
            daemon.dropCapabilities()
        }
        let started = Clock.monotonicNanoseconds()
        do {
            try daemon.start()
        } catch {
            RuleLoading.printError("vigil: \(error)")
            throw ExitCode(1)
        }
        Daemon.restorePriority(originalNice)
        let elapsed = Double(Clock.monotonicNanoseconds() - started) / 1e6
        let rootNote = root == "/" ? "" : " under root '\(root)'"
        let modesNote =
            daemon.permissionRuleCount == 0
            ? ""
            : ", \(daemon.permissionRuleCount) mode and owner rules over \(daemon.counters.permissionWatches.load(ordering: .relaxed)) watched directories"
        logger.info(
            "Vigil \(VigilVersion.string) ready in \(String(format2: elapsed)) ms: \(ruleSet.rules.filter(\.enabled).count) rules\(rootNote) (\(daemon.processRuleCount) on processes, \(daemon.logRuleCount) on logs\(daemon.rotateRuleCount > 0 ? ", \(daemon.rotateRuleCount) rotating logs" : ""))\(modesNote), \(daemon.counters.watchedFiles.load(ordering: .relaxed)) files through \(daemon.counters.watchDescriptors.load(ordering: .relaxed)) directory watches; alerts to \(daemon.sinkDescriptions.joined(separator: ", "))"
        )
        let endpoints: ObservabilityService?
        do {
            endpoints = try observability.start(daemon: daemon, logger: logger)
        } catch {
            RuleLoading.printError("vigil: \(error)")
            daemon.stop()
            throw ExitCode(1)
        }
        ServiceNotify.ready(status: "watching")

        serve(daemon: daemon, signals: signals, ruleWatch: ruleWatch, logger: logger)
        ServiceNotify.stopping(status: "stopping")
        endpoints?.stop()
        daemon.stop()
        let c = daemon.counters
        let latencyCount = c.alertLatencyCount.load(ordering: .relaxed)
        let latency =
            latencyCount == 0
            ? ""
            : "; event read → alert written: mean "
                + String(format2: Double(c.alertLatencyTotal.load(ordering: .relaxed)) / Double(latencyCount) / 1e3)
                + " µs, max " + String(format2: Double(c.alertLatencyMaximum.load(ordering: .relaxed)) / 1e3) + " µs"
        let rotation =
            daemon.rotateRuleCount == 0
            ? ""
            : ", \(c.logRotations.load(ordering: .relaxed)) log rotations (\(c.logRotationFailures.load(ordering: .relaxed)) failed), \(c.logCompressions.load(ordering: .relaxed)) compressed (\(c.logCompressionFailures.load(ordering: .relaxed)) failed)"
        logger.info(
            "Stopped: \(c.fileEvents.load(ordering: .relaxed)) file events, \(c.evaluations.load(ordering: .relaxed)) evaluations (\(c.busyReads.load(ordering: .relaxed)) put off while a writer held the file), \(c.alerts.load(ordering: .relaxed)) alerts, \(c.overflows.load(ordering: .relaxed)) overflows, \(c.processEvents.load(ordering: .relaxed)) process events (\(c.processEventsLost.load(ordering: .relaxed)) losses, \(c.processDetailsMissed.load(ordering: .relaxed)) processes gone before /proc could be read at exec, \(c.processNamedAtExit.load(ordering: .relaxed)) of them named by their exit record, \(c.exitRecordsLost.load(ordering: .relaxed)) overflows of the exit records' socket)\(rotation)\(latency)"
        )
        for tally in daemon.deliveryTallies { logger.info("Alert sink \(tally)") }
    }
}

extension String {
    /// A number with two decimals, without Foundation's String(format:).
    init(format2 value: Double) {
        let hundredths = Int((value * 100).rounded())
        let whole = hundredths / 100
        let fraction = hundredths % 100
        self = "\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
