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
    // @unchecked Sendable: `threads` is touched only by the thread that calls start() and stop().

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
    private let logger: Logger
    private let matcher: Matcher
    private let worker: ActionWorker
    private let sinks: [AlertSink]
    private var threads: [ThreadHandle] = []

    /// Builds the pipeline and opens every sink. Throws `DaemonError` with a one-line message.
    public init(options: Options, logger: Logger) throws(DaemonError) {
        self.logger = logger
        // A lease break (a writer opening a config while we read it) sends SIGIO, whose default action
        // would kill the daemon; a reader on a closed stdout gets SIGPIPE. Both become plain errors.
        SignalFD.ignore(SIGIO)
        SignalFD.ignore(SIGPIPE)
        let root = RootedPath(root: options.root)
        var sinks: [AlertSink] = []
        for spec in options.ruleSet.sinks {
            switch spec.kind {
            case .stdout: sinks.append(AlertSink(name: spec.name, target: .standardOutput, logger: logger))
            case .jsonl(let path):
                sinks.append(AlertSink(name: spec.name, target: .file(path: root.hostPath(path)), logger: logger))
            }
        }
        for (i, file) in options.extraAlertFiles.enumerated() {
            let name = "--alerts" + (i == 0 ? "" : "#\(i + 1)")
            sinks.append(
                AlertSink(name: name, target: file == "-" ? .standardOutput : .file(path: file), logger: logger)
            )
        }
        if sinks.isEmpty {
            logger.notice("No alert sink is configured in the rules or with --alerts; alerts go to stdout")
            sinks.append(AlertSink(name: "stdout", target: .standardOutput, logger: logger))
        }
        if sinks.count > 64 {
            throw DaemonError("Failed to start: \(sinks.count) alert sinks configured; at most 64 are supported")
        }
        for sink in sinks {
            do { try sink.open() } catch { throw DaemonError(error.description) }
        }
        self.sinks = sinks
        do {
            let inotify = try Inotify()
            let actionRing = SPSCRing<ActionFrame>(capacity: 1024)
            worker = try ActionWorker(ring: actionRing, sinks: sinks, counters: counters, logger: logger)
            let settings = Matcher.Settings(
                root: root,
                host: HostName.current(),
                configSizeLimit: options.configSizeLimit,
                deletionSettleNanoseconds: UInt64(options.deletionSettleMilliseconds) * 1_000_000
            )
            matcher = try Matcher(
                settings: settings,
                rules: options.ruleSet.rules.filter(\.enabled),
                sinkNames: sinks.map(\.name),
                inotify: inotify,
                output: actionRing,
                workerDoorbell: worker.doorbell,
                workerSpaceDoorbell: worker.spaceDoorbell,
                counters: counters,
                logger: logger
            )
        } catch let error as InotifyError {
            throw DaemonError(error.description)
        } catch {
            throw DaemonError("Failed to set up the event pipeline: \(error)")
        }
    }

    /// Names of the alert sinks in use, in order (for the start-up log line).
    public var sinkDescriptions: [String] { sinks.map { "\($0.name) (\($0.label))" } }

    /// Starts the threads; returns when every watch is placed and every file was judged once.
    public func start() {
        let worker = self.worker
        let matcher = self.matcher
        threads.append(Threads.spawn(name: "vigil-action") { worker.run() })
        threads.append(Threads.spawn(name: "vigil-match") { matcher.run() })
        matcher.ready.wait()
    }

    /// Lets the matcher judge what the kernel already reported, then the worker deliver what is queued, and
    /// joins the threads.
    public func stop() {
        guard threads.count == 2 else { return }
        matcher.shutdown.ring()
        Threads.join(threads[1])
        worker.shutdown.ring()
        Threads.join(threads[0])
        threads.removeAll()
        for sink in sinks { sink.close() }
    }
}

/// A daemon failure, as one line that says what failed and what to do.
public struct DaemonError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
