import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The log watcher (`vigil-log`): one thread that follows every file the `log:` rules name, matches each
/// complete line against all their patterns in one Vectorscan pass, masks secrets, and sends alerts
/// through its own ring, like the other watchers:
///
/// ```
/// inotify (dirs + inodes) ─► vigil-log (pread · split · match · count · mask · pwrite) ──ring──► vigil-action
/// ```
///
/// Files are followed by identity: each has an inotify watch on its inode (events follow it through
/// renames and symlinks) and an open descriptor read with `pread` from the offset of its last complete
/// line. Directory watches only say which names appear and go: a new name matching a rule is opened and
/// read from its start; a followed name renamed away or deleted leaves its file "detached", read to its
/// end and kept open while a writer may still append to it, then closed. A file that shrinks was copied
/// and truncated: it is read again from the start, and the loss window is alerted.
///
/// Offsets persist in a state file (`LogState`) at most every `saveInterval`, and only up to lines whose
/// alerts the sinks already hold, so after a crash the lines after the saved offset are processed again;
/// their alerts carry the same ids, and the ledger of ids already in the JSON Lines sinks keeps each out
/// of a sink a second time.
final class LogWatcher: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is confined to the vigil-log thread after `run()` starts.

    struct Settings {
        var root: RootedPath
        var host: String
        /// Host path of the state file.
        var statePath: String
        /// Longest line; longer ones are split into pieces of this size, each flagged.
        var lineLimit = 64 << 10
        /// Least time between two saves of the state file.
        var saveIntervalNanoseconds: UInt64 = 250_000_000
        /// How long a detached file (renamed away, deleted) is kept open after its last growth.
        var lingerNanoseconds: UInt64 = 2_000_000_000
        /// Host path of each sink that is a JSON Lines file, by sink index (nil: not a file).
        var sinkPaths: [String?] = []
        /// `--dry-run`: secrets are reported, not masked in the log or copied; the state is not saved.
        var dryRun: DryRun?

        /// The cache of compiled pattern databases: `patterns/` in the state file's directory (root's own,
        /// 0700, like the state file: the cache must not be writable by anyone the daemon does not trust).
        /// None in a dry run, which writes nothing under the state directory.
        var patternCacheDirectory: String? {
            guard dryRun == nil else { return nil }
            guard let slash = statePath.lastIndex(of: "/") else { return "patterns" }
            return statePath[..<slash] + "/patterns"
        }
    }

    /// One rule ready to run.
    struct CompiledRule {
        let rule: Rule
        let subject: LogSubject
        let sinkMask: UInt64
        let labels: [String: String]
        let sanitize: SanitizeSpec?
        var windows: CountWindows?
        /// `within:` as people write it, for messages.
        let windowText: String
    }

    /// The directories the rules name, each with the names (or globs) of its rules.
    struct DirectoryPlan {
        let serverDirectory: String
        /// (name pattern, rule index).
        var entries: [(name: NamePattern, rule: Int)]
        /// The directory's host path once it exists (symlinks resolved inside the root).
        var hostDirectory: String?
        var watch: Int32 = -1
    }

    /// What an inotify watch descriptor stands for (one inode may be several things).
    struct WatchTarget {
        var plans: [Int] = []
        /// Nearest existing ancestor of a missing plan directory: a creation there may make it appear.
        var ancestor = false
        var file: LogFile?
    }

    let settings: Settings
    let logger: Logger
    let counters: PipelineCounters
    let outlet: AlertOutlet
    let inotify: Inotify
    let source: FileSource
    let shutdown: EventFD
    /// Rung when every directory is watched and the files known at start-up were read.
    let ready: EventFD
    let timer: TimerFD
    var rules: [CompiledRule]
    let patterns: LogPatternSet
    let scratch: LogPatternSet.Scratch
    /// Masks alert text (every detector).
    let alertMasker = SecretMasker(detectors: Set(SecretDetector.allCases))
    let store: LogStateStore
    let allSinks: UInt64

    var plans: [DirectoryPlan] = []
    var watches: [Int32: WatchTarget] = [:]
    var byIdentity: [LogFile.Key: LogFile] = [:]
    var byName: [String: LogFile] = [:]
    /// Files queued for reading after the current batch of events.
    var dirtyFiles: [LogFile] = []
    var readingFiles: [LogFile] = []
    /// The read buffer (pread target) and the copy of a line before masking.
    let buffer: UnsafeMutableRawBufferPointer
    var original: [UInt8] = []
    /// Rule indices a line matched (reused).
    var hits: [Int] = []
    /// Ids already in the sinks from before a restart.
    var ledger = AlertLedger(sinkPaths: [], sinkSizes: [:])
    /// State not yet known to be delivered: saved once the outlet's frames up to `pushed` are in the sinks.
    var pendingState: (state: LogState, pushed: UInt64)?
    var stateChanged = true
    var nextSave: UInt64 = 0
    var needsRebuild = false
    var reportedStateFailure = false

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
        // The patterns are compiled once (`LogPatternSet.check` first would compile them twice: 0.9 s each
        // for 1,000 patterns), or loaded from the cache next to the state file.
        do {
            patterns = try LogPatternSet(rules: rules, cacheDirectory: settings.patternCacheDirectory)
        } catch {
            // Every problem in one message, the sanitize patterns' too.
            let problems = LogPatternSet.check(rules: rules).filter { $0.severity == .error }
            let diagnostics = problems.isEmpty ? error.diagnostics : problems
            throw DaemonError(diagnostics.map(\.description).joined(separator: "\n"))
        }
        let problems = LogPatternSet.checkSanitizePatterns(rules: rules).filter { $0.severity == .error }
        if !problems.isEmpty { throw DaemonError(problems.map(\.description).joined(separator: "\n")) }
        if let origin = patterns.databaseOrigin {
            Self.report(origin, what: "the log patterns", logger: logger)
        }
        scratch = patterns.makeScratch()
        self.rules = rules.map { rule in
            guard case .log(let subject) = rule.subject else { preconditionFailure("not a log rule: \(rule.id)") }
            var sanitize: SanitizeSpec?
            for case .sanitize(let spec) in rule.actions { sanitize = spec }
            return CompiledRule(
                rule: rule,
                subject: subject,
                sinkMask: masks.mask(for: rule),
                labels: rule.tagLabels,
                sanitize: sanitize,
                windows: subject.count.map {
                    CountWindows(threshold: $0.threshold, windowNanoseconds: UInt64($0.windowMilliseconds) * 1_000_000)
                },
                windowText: subject.count.map { Durations.text(milliseconds: $0.windowMilliseconds) } ?? ""
            )
        }
        store = LogStateStore(path: settings.statePath)
        buffer = .allocate(byteCount: max(1 << 20, settings.lineLimit * 2), alignment: 16)
        hits.reserveCapacity(rules.count)
        do {
            inotify = try Inotify()
            source = FileSource(inotify: inotify, counters: counters)
            shutdown = try EventFD()
            ready = try EventFD()
            timer = try TimerFD()
        } catch {
            throw DaemonError("Failed to set up the log watcher: \(error)")
        }
        var planIndex: [String: Int] = [:]
        for (ruleIndex, rule) in self.rules.enumerated() {
            for path in rule.subject.paths {
                if let existing = planIndex[path.directory] {
                    plans[existing].entries.append((path.name, ruleIndex))
                } else {
                    planIndex[path.directory] = plans.count
                    plans.append(DirectoryPlan(serverDirectory: path.directory, entries: [(path.name, ruleIndex)]))
                }
            }
        }
    }

    deinit { buffer.deallocate() }

    /// One log line when a pattern cache could not be used (the patterns were compiled instead); a debug line
    /// otherwise.
    static func report(_ origin: PatternDatabase.Origin, what: String, logger: Logger) {
        let milliseconds = origin.nanoseconds / 1_000_000
        if let problem = origin.cacheProblem {
            logger.warning("Could not use the compiled-pattern cache: \(problem); compiled \(what) instead, ignoring")
        } else if origin.source == .loadedFromCache {
            logger.debug("Loaded \(what) from '\(origin.cacheFile ?? "")' in \(milliseconds) ms")
        } else {
            logger.debug("Compiled \(what) in \(milliseconds) ms")
        }
    }

    var ruleCount: Int { rules.count }

    private static let inotifyTag: UInt64 = 1
    private static let shutdownTag: UInt64 = 2
    private static let timerTag: UInt64 = 3

    /// Takes over the `count:` windows of `previous`'s rules that are the same here (a reload rebuilt the
    /// log watcher): a failed login counted before the reload still counts after it. Call before `run()`,
    /// after `previous`'s thread ended.
    func inheritCountWindows(from previous: LogWatcher) {
        for index in rules.indices where rules[index].windows != nil {
            guard
                let old = previous.rules.first(where: {
                    $0.windows != nil && $0.rule.sameDefinition(as: rules[index].rule)
                })
            else { continue }
            rules[index].windows = old.windows
        }
    }

    /// The thread body: runs until `shutdown` rings.
    func run() {
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.add(inotify.descriptor, tag: Self.inotifyTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
            try epoll.add(timer.descriptor, tag: Self.timerTag)
        } catch {
            preconditionFailure("LogWatcher: epoll setup failed: \(error)")
        }
        startUp()
        ready.ring()
        var stopping = false
        while !stopping {
            armTimer()
            do {
                try epoll.wait { tag in
                    switch tag {
                    case Self.shutdownTag: stopping = true
                    case Self.timerTag: timer.acknowledge()
                    default: break
                    }
                }
            } catch {
                preconditionFailure("LogWatcher: epoll_wait failed: \(error)")
            }
            drainEvents()
            tick(now: Clock.monotonicNanoseconds())
        }
        // What the kernel reported before the stop is processed; then the state is saved for good.
        drainEvents()
        for file in Array(byIdentity.values) { read(file, eventTime: 0) }
        finalSave()
    }

    /// Reads every pending inotify event, then the files they marked.
    func drainEvents() {
        var eventTime: UInt64 = 0
        while source.readBatch({ record in
            eventTime = record.readTime
            handle(record)
        }) {}
        // The files already followed first: after a rename rotation the old file's last lines were written
        // before the new file existed, so they are read (and alerted) before the rebuild below finds and
        // reads the new file, even when the rename, the writes and the new file land in one batch.
        readDirtyFiles(eventTime: eventTime)
        if needsRebuild {
            needsRebuild = false
            placeWatches(atStartUp: false)
            readDirtyFiles(eventTime: eventTime)
        }
    }

    /// Reads the files that events marked, in the order they were marked.
    private func readDirtyFiles(eventTime: UInt64) {
        guard !dirtyFiles.isEmpty else { return }
        // Swapped with a second list, not copied: both keep their storage, so no allocation per batch.
        swap(&dirtyFiles, &readingFiles)
        for file in readingFiles {
            file.dirty = false
            read(file, eventTime: eventTime)
            if file.detachedSince == nil && file.links == 0 { detach(file, now: Clock.monotonicNanoseconds()) }
        }
        readingFiles.removeAll(keepingCapacity: true)
    }

    private func handle(_ record: FileEventRecord) {
        if record.mask & InotifyMask.queueOverflow != 0 {
            counters.overflows.add(1, ordering: .relaxed)
            rescan()
            return
        }
        guard let target = watches[record.watch] else { return }
        if let file = target.file {
            if record.mask & InotifyMask.watchRemoved != 0 {
                file.watch = -1
                watches[record.watch]?.file = nil
            } else if !file.dirty {
                file.dirty = true
                dirtyFiles.append(file)
            }
        }
        if target.ancestor && record.mask & (InotifyMask.created | InotifyMask.movedTo) != 0 { needsRebuild = true }
        guard !target.plans.isEmpty else { return }
        if record.mask & InotifyMask.watchEnded != 0 {
            for plan in target.plans {
                plans[plan].watch = -1
                plans[plan].hostDirectory = nil
            }
            watches[record.watch]?.plans = []
            needsRebuild = true
            return
        }
        guard record.nameLength > 0 else { return }
        let name = record.nameString
        let now = Clock.monotonicNanoseconds()
        for plan in target.plans {
            guard let directory = plans[plan].hostDirectory else { continue }
            let hostName = directory == "/" ? "/" + name : directory + "/" + name
            if record.mask & InotifyMask.nameGone != 0, let file = byName[hostName] {
                byName[hostName] = nil
                file.hostName = nil
                detach(file, now: now)
            }
            if record.mask & (InotifyMask.created | InotifyMask.movedTo) != 0 {
                if record.mask & InotifyMask.movedTo != 0, let moved = renamedFile(hostName) {
                    // A followed file renamed inside a watched directory (app.log → app.log.1): same file.
                    moved.path = plans[plan].serverDirectory + "/" + name
                }
                openIfRuled(plan: plan, name: name, mode: .new, now: now)
            }
        }
    }

    /// The followed file now under `hostName`, if it is one we already know (by identity).
    private func renamedFile(_ hostName: String) -> LogFile? {
        var info = stat()
        guard lstat(hostName, &info) == 0 else { return nil }
        return byIdentity[LogFile.Key(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))]
    }

    /// Periodic work: detached files, count windows, the state file.
    func tick(now: UInt64) {
        // Runs after every wake-up: no array is built unless a file is due.
        for file in byIdentity.values where file.detachedSince != nil || file.watch < 0 {
            read(file, eventTime: 0)
            if file.detachedSince != nil && now &- file.lastGrowth >= settings.lingerNanoseconds {
                readingFiles.append(file)
            }
        }
        if !readingFiles.isEmpty {
            for file in readingFiles { retire(file) }
            readingFiles.removeAll(keepingCapacity: true)
        }
        if now >= nextSave { saveState(now: now) }
    }

    private func armTimer() {
        let now = Clock.monotonicNanoseconds()
        var deadline: UInt64 = 0
        if stateChanged || pendingState != nil { deadline = max(nextSave, now + 1_000_000) }
        // Detached files (a writer may still append) and files without an inode watch are read on a timer.
        if byIdentity.values.contains(where: { $0.detachedSince != nil || $0.watch < 0 }) {
            let poll = now + 100_000_000
            deadline = deadline == 0 ? poll : min(deadline, poll)
        }
        timer.arm(deadline: deadline)
    }
}
