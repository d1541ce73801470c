import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The matcher: the one thread that owns the compiled rules, the watch table and every file's last known
/// state (C5). It sleeps in `epoll_wait` on the inotify descriptor (see `FileSource` for why the source runs
/// on this thread), routes each record to the files it concerns
/// (a hash lookup on the watch descriptor and name: no allocation), coalesces what one batch says about a
/// file, then judges each touched file once: reads and parses a config, compares with the last snapshot,
/// moves state rules between firing and resolved, and hands alert lines to the action worker.
final class Matcher: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is confined to the matcher thread after `run()` starts.

    struct Settings {
        var root: RootedPath
        var host: String
        /// Largest config file read, in bytes.
        var configSizeLimit: Int = 1 << 20
        /// How long a vanished file must stay gone before it counts as deleted (editors rename it away and
        /// write a new one within microseconds).
        var deletionSettleNanoseconds: UInt64 = 100_000_000
        /// Pinged from this thread's loop (systemd's `WatchdogSec=`); nil: none.
        var watchdog: PipelineWatchdog?
        /// Where each config's last version is kept across restarts; nil: nowhere (a dry run, no state).
        var snapshots: ConfigSnapshotStore?
    }

    let settings: Settings
    private(set) var rules: [Rule]
    let inotify: Inotify
    let source: FileSource
    let outlet: AlertOutlet
    let shutdown: EventFD
    let ready: EventFD
    let counters: PipelineCounters
    let logger: Logger
    /// The mask of all sinks (bit i: sink i).
    let allSinks: UInt64

    /// What alerts need of each rule, worked out once rather than per alert.
    private struct RuleFacts {
        /// The first key the rule's condition reads (`{key}` in messages).
        var firstKey: String?
        /// Alert labels: the rule's tags.
        var labels: [String: String]
        /// The sinks its `alert` actions name.
        var sinkMask: UInt64
    }

    private var facts: [RuleFacts]
    private let sinkMasks: SinkMasks
    /// A reload's rules, handed to this thread (`reload(_:)`), and the doorbells of the hand-over.
    private let pendingRules = Locked<[Rule]?>(nil)
    private let reloadDoorbell: EventFD
    private let reloadDone: EventFD
    private let timer: TimerFD
    private var plans: [DirectoryPlan] = []
    private var instances: [Instance] = []
    private var instanceByPath: [String: Int] = [:]
    private var roles: [Int32: [WatchRole]] = [:]
    private var nameIndex: [NameKey: [Int32]] = [:]
    private var globWatches: [Int32: [Int]] = [:]
    private var ancestorWatches: Set<Int32> = []
    private var dirty: [Int32] = []
    private var needsRebuild = false
    private var timers: [(deadline: UInt64, instance: Int)] = []
    private var armedDeadline: UInt64 = 0
    private var batchEventTime: UInt64 = 0
    private var reportedWatchLimit = false
    /// Set once the start-up scan is done: files discovered from then on are new.
    private var started = false

    init(
        settings: Settings,
        rules: [Rule],
        sinkNames: [String],
        inotify: Inotify,
        outlet: AlertOutlet,
        counters: PipelineCounters,
        logger: Logger
    ) throws {
        self.settings = settings
        self.rules = rules
        self.inotify = inotify
        source = FileSource(inotify: inotify, counters: counters)
        self.outlet = outlet
        self.counters = counters
        self.logger = logger
        sinkMasks = SinkMasks(sinkNames: sinkNames)
        allSinks = sinkMasks.all
        facts = Self.facts(of: rules, masks: sinkMasks)
        reloadDoorbell = try EventFD()
        reloadDone = try EventFD()
        shutdown = try EventFD()
        ready = try EventFD()
        timer = try TimerFD()
    }

    /// What alerts need of each rule.
    private static func facts(of rules: [Rule], masks: SinkMasks) -> [RuleFacts] {
        rules.map { rule in
            var firstKey: String?
            if case .config(let subject) = rule.subject, case .when(let condition) = subject.trigger {
                firstKey = condition.keysMentioned().first
            }
            return RuleFacts(firstKey: firstKey, labels: rule.tagLabels, sinkMask: masks.mask(for: rule))
        }
    }

    // MARK: Thread body

    private static let inotifyTag: UInt64 = 1
    private static let shutdownTag: UInt64 = 2
    private static let timerTag: UInt64 = 3
    private static let watchdogTag: UInt64 = 4
    private static let reloadTag: UInt64 = 5

    /// The thread body: sets up watches, scans every file once, rings `ready`, then matches until shutdown.
    func run() {
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.add(inotify.descriptor, tag: Self.inotifyTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
            try epoll.add(timer.descriptor, tag: Self.timerTag)
            if let descriptor = settings.watchdog?.descriptor { try epoll.add(descriptor, tag: Self.watchdogTag) }
            try epoll.add(reloadDoorbell.descriptor, tag: Self.reloadTag)
        } catch {
            preconditionFailure("Matcher: epoll setup failed: \(error)")
        }
        buildPlans()
        restoreSnapshots()
        needsRebuild = true
        rebuildWhileNeeded()
        for i in instances.indices { markDirty(i, mask: 0) }
        evaluateDirty()
        started = true
        ready.ring()

        var stopping = false
        while !stopping {
            var timerFired = false
            var watchdogDue = false
            var reloadDue = false
            do {
                try epoll.wait { tag in
                    switch tag {
                    case Self.shutdownTag: stopping = true
                    case Self.timerTag: timerFired = true
                    case Self.watchdogTag: watchdogDue = true
                    case Self.reloadTag: reloadDue = true
                    default: break
                    }
                }
            } catch {
                preconditionFailure("Matcher: epoll_wait failed: \(error)")
            }
            // Level-triggered: reading until the queue is empty is always safe, so read on every wake-up;
            // on shutdown this is the final drain of what the kernel already reported.
            processInput()
            if timerFired {
                timer.acknowledge()
                armedDeadline = 0
                runDueTimers()
            }
            if watchdogDue { settings.watchdog?.tick() }
            if reloadDue {
                _ = reloadDoorbell.drain()
                if let newRules = pendingRules.withLock({ pending in
                    defer { pending = nil }
                    return pending
                }) {
                    applyReload(newRules)
                }
                reloadDone.ring()
            }
        }
    }

    /// Each config's version from before the restart, as the base its first judgement is compared with:
    /// a key changed while Vigil was not running is reported then. The content hash stays unset, so the
    /// same bytes are parsed again and the state rules judged (a condition still true is asserted again).
    private func restoreSnapshots() {
        guard let store = settings.snapshots else { return }
        for instance in instances where instance.needsContent {
            guard let bytes = store.load(instance.serverPath) else { continue }
            if case .snapshot(let parsed) = bytes.withUnsafeBytes({ ConfigParser.parse($0) }) {
                instance.snapshot = parsed
            }
        }
    }

    // MARK: Reload

    /// Runs `rules` instead of the current ones, on this matcher's thread between two batches, and returns
    /// once they run: every event read before is judged by the old rules, every event after by the new.
    /// Called by the daemon's thread.
    func reload(_ rules: [Rule]) {
        pendingRules.withLock { $0 = rules }
        reloadDoorbell.ring()
        reloadDone.wait()
    }

    /// The swap itself. The inotify descriptor stays (events queued in it are judged by the new rules);
    /// watches are placed for the new rules' directories (the kernel returns the same descriptor for a
    /// directory already watched) and removed where no rule needs them. Each file keeps what Vigil knew of
    /// it (presence, identity, the last parsed config), and each unchanged rule its firing state; a file
    /// with a new or changed rule is judged again at once, as at start-up.
    private func applyReload(_ newRules: [Rule]) {
        let oldRules = rules
        let oldInstances = instances
        let oldByPath = instanceByPath
        var oldIndexByID: [String: Int] = [:]
        for (index, rule) in oldRules.enumerated() { oldIndexByID[rule.id] = index }
        rules = newRules
        facts = Self.facts(of: newRules, masks: sinkMasks)
        plans = []
        instances = []
        instanceByPath = [:]
        dirty.removeAll()
        timers.removeAll()
        armedDeadline = 0
        buildPlans()
        // Files found by the rebuild's directory listings existed before: not new (no `created`).
        started = false
        needsRebuild = true
        rebuildWhileNeeded()
        started = true
        func unchanged(_ ruleIndex: Int) -> Bool {
            guard let before = oldIndexByID[newRules[ruleIndex].id] else { return false }
            return newRules[ruleIndex].sameDefinition(as: oldRules[before])
        }
        for (index, instance) in instances.enumerated() {
            guard let oldIndex = oldByPath[instance.serverPath] else {
                // Unknown to the old rules. If an unchanged rule matches it, the old matcher would have known
                // it had it existed at its last batch: it was created since (its event is still queued), and
                // is judged as new now. Otherwise a new rule found an existing file: judged as at start-up.
                if instance.rules.contains(where: unchanged) { instance.presence = .absent }
                markDirty(index, mask: 0)
                continue
            }
            let old = oldInstances[oldIndex]
            instance.presence = old.presence
            instance.snapshot = old.snapshot
            instance.contentHash = old.contentHash
            instance.resolvedPath = old.resolvedPath
            instance.resolvedHostPath = old.resolvedHostPath
            instance.lastProblem = old.lastProblem
            instance.deletionPending = old.deletionPending
            instance.deletionNoticed = old.deletionNoticed
            var judgeAgain = old.deletionPending || old.busyRetries > 0
            for ruleIndex in instance.rules {
                if unchanged(ruleIndex), let before = oldIndexByID[newRules[ruleIndex].id], old.rules.contains(before) {
                    instance.firing[ruleIndex] = old.firing[before]
                } else {
                    judgeAgain = true
                }
            }
            if judgeAgain {
                // Parsed again (the same bytes give no `changes:` diff) so new state rules are judged.
                instance.contentHash = 0
                markDirty(index, mask: 0)
            } else if instance.isDirty {
                // Marked by the directory listing of the rebuild: nothing to judge, its state is carried.
                instance.isDirty = false
            }
        }
        dirty.removeAll { !instances[Int($0)].isDirty }
        evaluateDirty()
    }

    /// Reads and routes every event waiting in the kernel queue, judging touched files after each buffer.
    private func processInput() {
        while source.readBatch({ record in handle(record) }) {
            afterBatch()
        }
    }

    // MARK: Hot path: route one record

    /// Routes one inotify record. No allocation unless the record changes the watch set or names a glob match.
    @inline(__always)
    private func handle(_ record: FileEventRecord) {
        batchEventTime = record.readTime
        let mask = record.mask
        if mask & InotifyMask.queueOverflow != 0 {
            overflow()
            return
        }
        if mask & InotifyMask.watchEnded != 0 {
            if roles[record.watch] != nil { needsRebuild = true }
            return
        }
        guard record.nameLength > 0 else { return }
        let hash = record.withName { bytes, _ in StableHash.fnv1a64(bytes) }
        if let targets = nameIndex[NameKey(watch: record.watch, hash: hash)] {
            counters.routedEvents.add(1, ordering: .relaxed)
            for target in targets { markDirty(Int(target), mask: mask) }
        } else if globWatches[record.watch] != nil {
            // A name not seen before in a directory with globs: match it once; a hit is indexed from then on.
            routeGlob(record, hash: hash)
        }
        if mask & InotifyMask.isDirectory != 0 && mask & (InotifyMask.created | InotifyMask.movedTo) != 0
            && ancestorWatches.contains(record.watch)
        {
            needsRebuild = true
        }
    }

    @inline(__always)
    private func markDirty(_ index: Int, mask: UInt32) {
        let instance = instances[index]
        instance.pendingMask = mask == 0 ? 0 : (instance.isDirty ? instance.pendingMask | mask : mask)
        if !instance.isDirty {
            instance.isDirty = true
            dirty.append(Int32(index))
        }
    }

    private func afterBatch() {
        rebuildWhileNeeded()
        evaluateDirty()
    }

    /// Rebuilds the watches until they stand still: a directory created between resolving a path and
    /// watching its ancestor sends that new watch no event, so a rebuild that sees it asks for another.
    private func rebuildWhileNeeded() {
        var rounds = 0
        while needsRebuild && rounds < 16 {
            needsRebuild = false
            rebuildWatches()
            rounds += 1
        }
    }

    private func evaluateDirty() {
        while !dirty.isEmpty {
            let batch = dirty
            dirty.removeAll(keepingCapacity: true)
            for index in batch {
                let instance = instances[Int(index)]
                instance.isDirty = false
                evaluate(instance, index: Int(index), mask: instance.pendingMask)
            }
            rebuildWhileNeeded()
        }
    }

    // MARK: Globs

    private func routeGlob(_ record: FileEventRecord, hash: UInt64) {
        guard let planIndices = globWatches[record.watch] else { return }
        for planIndex in planIndices {
            var matched: [Int] = []
            record.withName { _, cName in
                for glob in plans[planIndex].globs {
                    let hit = glob.pattern.withUnsafeBufferPointer { fnmatch($0.baseAddress!, cName, FNM_PERIOD) == 0 }
                    if hit { matched.append(contentsOf: glob.rules) }
                }
            }
            if matched.isEmpty { continue }
            let known = instanceByPath.count
            let index = instanceFor(plan: planIndex, name: record.nameString, rules: matched)
            // Seen first through an event, after start-up: it did not exist before, so its appearance is a creation.
            if instanceByPath.count > known && record.mask & (InotifyMask.created | InotifyMask.movedTo) != 0 {
                instances[index].presence = .absent
            }
            nameIndex[NameKey(watch: record.watch, hash: hash), default: []].append(Int32(index))
            counters.routedEvents.add(1, ordering: .relaxed)
            markDirty(index, mask: record.mask)
        }
    }

    /// The instance for `name` in a plan's directory, created on first sight (glob matches).
    private func instanceFor(plan: Int, name: String, rules ruleIndices: [Int]) -> Int {
        let dir = plans[plan].serverPath
        let path = dir == "/" ? "/" + name : dir + "/" + name
        if let existing = instanceByPath[path] {
            let instance = instances[existing]
            for r in ruleIndices where !instance.rules.contains(r) {
                instance.rules.append(r)
                if case .config = rules[r].subject { instance.needsContent = true }
            }
            return existing
        }
        let needsContent = ruleIndices.contains { if case .config = rules[$0].subject { true } else { false } }
        let instance = Instance(
            serverPath: path,
            directoryPlan: plan,
            name: name,
            rules: ruleIndices,
            needsContent: needsContent
        )
        instances.append(instance)
        instanceByPath[path] = instances.count - 1
        return instances.count - 1
    }

    // MARK: Plans and watches (cold path)

    /// Groups the rules' paths by directory and creates an instance per exact path.
    private func buildPlans() {
        var planIndex: [String: Int] = [:]
        for (ruleIndex, rule) in rules.enumerated() where rule.enabled {
            let pattern: PathPattern
            switch rule.subject {
            case .config(let config): pattern = config.path
            case .file(let file): pattern = file.path
            // The other watchers' rules.
            case .process, .log, .permissions, .rotate, .pressure, .disk, .listening, .escalation: continue
            }
            let planNumber: Int
            if let existing = planIndex[pattern.directory] {
                planNumber = existing
            } else {
                plans.append(DirectoryPlan(serverPath: pattern.directory))
                planNumber = plans.count - 1
                planIndex[pattern.directory] = planNumber
            }
            switch pattern.name {
            case .exact(let name):
                let index = instanceFor(plan: planNumber, name: name, rules: [ruleIndex])
                plans[planNumber].exact[name] = index
            case .glob(let glob):
                if let existing = plans[planNumber].globs.firstIndex(where: { $0.pattern == Array(glob.utf8CString) }) {
                    plans[planNumber].globs[existing].rules.append(ruleIndex)
                } else {
                    plans[planNumber].globs.append((Array(glob.utf8CString), [ruleIndex]))
                }
            }
        }
    }

    /// Makes the kernel's watches match the plans: each plan's directory where it exists, else its nearest
    /// existing ancestor; plus the real directory of every symlinked file. Files whose directory became
    /// watchable are scanned at once, so nothing created before the watch existed is missed.
    private func rebuildWatches() {
        var newRoles: [Int32: [WatchRole]] = [:]
        var newlyWatched: [Int] = []
        for planNumber in plans.indices {
            let plan = plans[planNumber]
            do {
                let resolution = try settings.root.resolve(plan.serverPath)
                if resolution.missing.isEmpty {
                    if let wd = addWatch(resolution.existing, for: plan.serverPath) {
                        newRoles[wd, default: []].append(.files(plan: planNumber))
                        if plan.watchedAs != resolution.existing { newlyWatched.append(planNumber) }
                        plans[planNumber].watchedAs = resolution.existing
                        plans[planNumber].lastProblem = nil
                    }
                } else {
                    if plan.watchedAs != nil || plan.lastProblem == nil {
                        logger.notice(
                            "Directory '\(plan.serverPath)' does not exist yet; watching '\(resolution.existing)' until it appears"
                        )
                        plans[planNumber].lastProblem = "missing"
                    }
                    if plans[planNumber].watchedAs != nil {
                        plans[planNumber].watchedAs = nil
                        // The directory went away: its files are re-judged (and found missing).
                        for index in plans[planNumber].exact.values { markDirty(index, mask: 0) }
                    }
                    if let wd = addWatch(resolution.existing, for: plan.serverPath) {
                        newRoles[wd, default: []].append(.ancestor(plan: planNumber))
                        // Created between the resolve and the watch: the new watch will not report it.
                        if let again = try? settings.root.resolve(plan.serverPath),
                            again.missing.count < resolution.missing.count
                        {
                            needsRebuild = true
                        }
                    }
                }
            } catch {
                let message = "\(error); rules on files in '\(plan.serverPath)/' stay inactive until it is fixed"
                if plan.lastProblem != message {
                    logger.error("\(message)")
                    plans[planNumber].lastProblem = message
                }
                plans[planNumber].watchedAs = nil
            }
        }
        // Symlinked files: also watch the directory the link points into.
        for (index, instance) in instances.enumerated() {
            guard let resolved = instance.resolvedPath, resolved != instance.serverPath,
                let slash = resolved.lastIndex(of: "/")
            else { continue }
            let directory = slash == resolved.startIndex ? "/" : String(resolved[..<slash])
            let name = String(resolved[resolved.index(after: slash)...])
            if directory == plans[instance.directoryPlan].watchedAs && name == instance.name { continue }
            if let wd = addWatch(directory, for: instance.serverPath) {
                newRoles[wd, default: []].append(.alias(instance: index, name: name))
            }
        }
        for wd in roles.keys where newRoles[wd] == nil { inotify.removeWatch(wd) }
        roles = newRoles
        nameIndex.removeAll(keepingCapacity: true)
        globWatches.removeAll(keepingCapacity: true)
        ancestorWatches.removeAll(keepingCapacity: true)
        for (wd, list) in newRoles {
            for role in list {
                switch role {
                case .files(let planNumber):
                    for (name, index) in plans[planNumber].exact {
                        nameIndex[NameKey(watch: wd, hash: StableHash.fnv1a64(name.utf8)), default: []].append(
                            Int32(index)
                        )
                    }
                    for (index, instance) in instances.enumerated()
                    where instance.directoryPlan == planNumber && plans[planNumber].exact[instance.name] == nil {
                        nameIndex[NameKey(watch: wd, hash: StableHash.fnv1a64(instance.name.utf8)), default: []]
                            .append(Int32(index))
                    }
                    if !plans[planNumber].globs.isEmpty { globWatches[wd, default: []].append(planNumber) }
                case .ancestor:
                    ancestorWatches.insert(wd)
                case .alias(let index, let name):
                    nameIndex[NameKey(watch: wd, hash: StableHash.fnv1a64(name.utf8)), default: []].append(Int32(index))
                }
            }
        }
        for planNumber in newlyWatched { scan(plan: planNumber) }
        counters.watchDescriptors.store(UInt64(roles.count), ordering: .relaxed)
        counters.watchedFiles.store(UInt64(instances.count), ordering: .relaxed)
    }

    /// Marks every file of a newly watched directory for evaluation, discovering glob matches with readdir.
    private func scan(plan planNumber: Int) {
        for index in plans[planNumber].exact.values { markDirty(index, mask: 0) }
        guard !plans[planNumber].globs.isEmpty, let watched = plans[planNumber].watchedAs else { return }
        guard let dir = opendir(settings.root.hostPath(watched)) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            var matched: [Int] = []
            withUnsafeBytes(of: entry.pointee.d_name) { raw in
                let cName = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                if cName[0] == 0x2E && (cName[1] == 0 || (cName[1] == 0x2E && cName[2] == 0)) { return }
                for glob in plans[planNumber].globs {
                    if glob.pattern.withUnsafeBufferPointer({ fnmatch($0.baseAddress!, cName, FNM_PERIOD) }) == 0 {
                        matched.append(contentsOf: glob.rules)
                    }
                }
            }
            if matched.isEmpty { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            let known = instanceByPath.count
            let index = instanceFor(plan: planNumber, name: name, rules: matched)
            // Found after start-up (a directory that appeared, a rescan after lost events): it is new.
            if started && instanceByPath.count > known { instances[index].presence = .absent }
            if let wd = roles.first(where: {
                $0.value.contains { if case .files(planNumber) = $0 { true } else { false } }
            })?.key {
                let key = NameKey(watch: wd, hash: StableHash.fnv1a64(name.utf8))
                if !(nameIndex[key]?.contains(Int32(index)) ?? false) {
                    nameIndex[key, default: []].append(Int32(index))
                }
            }
            markDirty(index, mask: 0)
        }
    }

    private func addWatch(_ serverDirectory: String, for subject: String) -> Int32? {
        do {
            return try inotify.addWatch(settings.root.hostPath(serverDirectory), mask: InotifyMask.directoryWatch)
        } catch {
            if error.code == .watchLimitReached {
                if !reportedWatchLimit {
                    logger.error("\(error); '\(subject)' is not watched until the limit is raised and vigil restarted")
                    reportedWatchLimit = true
                }
            } else if error.code != .notFound {
                logger.error("\(error); '\(subject)' is not watched")
            } else {
                needsRebuild = true  // vanished between resolve and watch: try again after this batch
            }
            return nil
        }
    }

    // MARK: Overflow

    private func overflow() {
        counters.overflows.add(1, ordering: .relaxed)
        needsRebuild = true
        for i in instances.indices { markDirty(i, mask: 0) }
        // Files created while events were lost are found by listing every directory with globs again.
        for planNumber in plans.indices where !plans[planNumber].globs.isEmpty { scan(plan: planNumber) }
        let time = Clock.realtime()
        let count = counters.overflows.load(ordering: .relaxed)
        emitInternal(
            rule: "vigil.events-lost",
            severity: .warning,
            kind: "vigil.events_lost",
            message: "The kernel's inotify queue overflowed and events were lost; every watched file was rescanned "
                + "and changes found are reported. Raise fs.inotify.max_queued_events if this repeats "
                + "(docs/troubleshooting.md#events-lost).",
            version: "\(time.seconds).\(time.nanoseconds).\(count)"
        )
        logger.warning("inotify queue overflowed (\(count) so far); rescanning every watched file")
    }

    // MARK: Timers

    private func schedule(_ index: Int, after nanoseconds: UInt64) {
        let deadline = Clock.monotonicNanoseconds() + nanoseconds
        let instance = instances[index]
        // One pending timer per file is enough: an earlier one re-judges the file anyway.
        if instance.timerDeadline != 0 && instance.timerDeadline <= deadline { return }
        instance.timerDeadline = deadline
        timers.append((deadline, index))
        if armedDeadline == 0 || deadline < armedDeadline {
            armedDeadline = deadline
            timer.arm(deadline: deadline)
        }
    }

    private func runDueTimers() {
        batchEventTime = 0  // what a timer finds was not caused by one kernel event just read
        let now = Clock.monotonicNanoseconds()
        let due = timers.filter { $0.deadline <= now }
        timers.removeAll { $0.deadline <= now }
        for entry in due where instances[entry.instance].timerDeadline == entry.deadline {
            instances[entry.instance].timerDeadline = 0
            markDirty(entry.instance, mask: 0)
        }
        if let next = timers.map(\.deadline).min() {
            armedDeadline = next
            timer.arm(deadline: next)
        }
        evaluateDirty()
    }

    // MARK: Judging one file

    /// Resolves the instance's path inside the root. Returns false when it is missing or cannot be resolved
    /// (after recording that).
    private func resolve(_ instance: Instance, index: Int) -> Bool {
        let resolution: RootedPath.Resolution
        do {
            resolution = try settings.root.resolve(instance.serverPath)
        } catch {
            instance.resolvedHostPath = nil
            problem(instance, "\(error)")
            return false
        }
        guard resolution.missing.isEmpty else {
            instance.resolvedHostPath = nil
            vanished(instance, index: index)
            return false
        }
        if resolution.existing != (instance.resolvedPath ?? instance.serverPath) { needsRebuild = true }
        instance.resolvedPath = resolution.existing
        instance.resolvedHostPath = settings.root.hostPath(resolution.existing)
        return true
    }

    private func evaluate(_ instance: Instance, index: Int, mask: UInt32) {
        // Names change only with a rescan or an event about the name itself (created, moved, deleted): only
        // then is the path resolved again, symlink by symlink. A content event reuses the last resolution.
        let nameEvents = InotifyMask.created | InotifyMask.movedTo | InotifyMask.nameGone
        let nameMayHaveChanged = mask == 0 || mask & nameEvents != 0
        if nameMayHaveChanged || instance.resolvedHostPath == nil {
            guard resolve(instance, index: index) else { return }
        }
        guard let hostPath = instance.resolvedHostPath, let resolved = instance.resolvedPath else { return }
        if instance.needsContent {
            counters.evaluations.add(1, ordering: .relaxed)
            switch WholeFileReader.read(hostPath, limit: settings.configSizeLimit) {
            case .missing:
                vanished(instance, index: index)
            case .busy:
                retryWhenTheWriterCloses(instance, index: index, mask: mask)
            case .failed(let error):
                problem(instance, serverMessage(error.description, hostPath: hostPath, serverPath: resolved))
            case .content(let bytes, let identity):
                instance.busyRetries = 0
                present(instance, index: index, identity: identity, mask: mask)
                contentRead(instance, bytes: bytes, identity: identity)
            }
        } else {
            switch WholeFileReader.settledIdentity(of: hostPath) {
            case .identity(let identity):
                instance.busyRetries = 0
                present(instance, index: index, identity: identity, mask: mask)
            case .missing:
                vanished(instance, index: index)
            case .busy:
                retryWhenTheWriterCloses(instance, index: index, mask: mask)
            case .failed(let error):
                problem(instance, serverMessage(error.description, hostPath: hostPath, serverPath: resolved))
            }
        }
    }

    /// A writer still has the file open; its close (IN_CLOSE_WRITE) will bring us back. The retries cover the
    /// instant between the kernel queueing that event and releasing the writer's access (`__fput` reports the
    /// close before it drops the write count, and ext4's release flushes the data of a truncated file first,
    /// which takes tens of microseconds): the first comes after 50 µs, doubling. A fresh kernel event
    /// restarts the backoff; only a writer silent for over a second stops it (its close still brings us back).
    private func retryWhenTheWriterCloses(_ instance: Instance, index: Int, mask: UInt32) {
        counters.busyReads.add(1, ordering: .relaxed)
        instance.busyRetries = mask != 0 ? 1 : instance.busyRetries + 1
        if instance.busyRetries < 16 {
            schedule(index, after: UInt64(25_000) << UInt64(instance.busyRetries))
        } else if instance.lastProblem == nil {
            logger.warning(
                "'\(instance.serverPath)' has been open for writing for over a second; it is judged when its writer closes it"
            )
        }
    }

    /// Error messages name the path the user wrote, not the sandbox path on the host.
    private func serverMessage(_ message: String, hostPath: String, serverPath: String) -> String {
        hostPath == serverPath ? message : message.replacingAll(hostPath, with: serverPath)
    }

    private func problem(_ instance: Instance, _ message: String) {
        if instance.lastProblem != message {
            logger.error("\(message); skipping it (the last known state is kept)")
            instance.lastProblem = message
        }
    }

    /// The file could be judged again after a logged problem.
    private func recovered(_ instance: Instance) {
        if instance.lastProblem != nil {
            logger.notice("'\(instance.serverPath)' can be read and parsed again")
            instance.lastProblem = nil
        }
    }

    /// The file is there (in version `identity`): file rules learn created/written/attributes.
    private func present(_ instance: Instance, index: Int, identity: FileIdentity, mask: UInt32) {
        if !instance.needsContent { recovered(instance) }
        let previous = instance.presence
        instance.presence = .present(identity)
        instance.deletionPending = false
        var changes: [FileChangeKind] = []
        switch previous {
        case .unknown:
            break
        case .absent:
            changes.append(.created)
        case .present(let old):
            if identity.contentMayDiffer(from: old) { changes.append(.written) }
            if identity.attributesDiffer(from: old) { changes.append(.attributes) }
        }
        guard !changes.isEmpty else { return }
        for ruleIndex in instance.rules {
            guard case .file(let subject) = rules[ruleIndex].subject else { continue }
            for change in changes where subject.on.contains(change) {
                emitFileEvent(ruleIndex, instance, change: change, identity: identity)
            }
        }
    }

    /// The file is not there. A deletion counts only once it has stayed gone for the settle time.
    private func vanished(_ instance: Instance, index: Int) {
        switch instance.presence {
        case .unknown:
            instance.presence = .absent
        case .absent:
            break
        case .present(let identity):
            let now = Clock.monotonicNanoseconds()
            if !instance.deletionPending {
                instance.deletionPending = true
                instance.deletionNoticed = now
            }
            let gone = now - instance.deletionNoticed
            guard gone >= settings.deletionSettleNanoseconds else {
                schedule(index, after: settings.deletionSettleNanoseconds - gone)
                return
            }
            instance.deletionPending = false
            instance.presence = .absent
            for ruleIndex in instance.rules {
                guard case .file(let subject) = rules[ruleIndex].subject, subject.on.contains(.deleted) else {
                    continue
                }
                emitFileEvent(ruleIndex, instance, change: .deleted, identity: identity)
            }
        }
    }

    /// Lines of a config that are not settings are ignored, and said so once per version that has them:
    /// a typo such as `verify_ssl false` would otherwise silently leave the key unset.
    private func reportUnparsedLines(_ instance: Instance, snapshot: ConfigSnapshot) {
        guard !snapshot.issues.isEmpty, instance.snapshot?.issues != snapshot.issues else { return }
        let shown = snapshot.issues.prefix(5).map { "line \($0.line): \($0.reason)" }.joined(separator: "; ")
        let more = snapshot.issues.count > 5 ? "; and \(snapshot.issues.count - 5) more" : ""
        logger.warning(
            "Config '\(instance.serverPath)' has lines that are not settings, ignoring them: \(shown)\(more)"
        )
    }

    /// A complete version of a config file was read: parse it, diff it, move state rules, fire change rules.
    private func contentRead(_ instance: Instance, bytes: [UInt8], identity: FileIdentity) {
        let hash = StableHash.fnv1a64(bytes)
        if instance.snapshot != nil && hash == instance.contentHash {
            recovered(instance)
            return
        }
        let snapshot: ConfigSnapshot
        switch bytes.withUnsafeBytes({ ConfigParser.parse($0) }) {
        case .rejected(let reason):
            problem(instance, "Failed to parse config '\(instance.serverPath)': \(reason)")
            return
        case .snapshot(let parsed):
            snapshot = parsed
        }
        recovered(instance)
        reportUnparsedLines(instance, snapshot: snapshot)
        let old = instance.snapshot
        let changes = old.map { snapshot.changes(from: $0) } ?? []
        let version = identity.versionString + ":" + StableHash.hex(hash)
        instance.snapshot = snapshot
        instance.contentHash = hash
        // Kept for the next start once this version's alerts are out (below).
        defer { if old == nil || !changes.isEmpty { settings.snapshots?.save(instance.serverPath, bytes: bytes) } }
        for ruleIndex in instance.rules {
            guard case .config(let subject) = rules[ruleIndex].subject else { continue }
            switch subject.trigger {
            case .when(let condition):
                let now = condition.evaluate(snapshot)
                let before = instance.firing[ruleIndex]
                instance.firing[ruleIndex] = now
                if now && before != true {
                    emitConfig(
                        ruleIndex,
                        instance,
                        state: .firing,
                        condition: condition,
                        snapshot: snapshot,
                        old: old,
                        changes: changes,
                        version: version
                    )
                } else if !now && before == true {
                    emitConfig(
                        ruleIndex,
                        instance,
                        state: .resolved,
                        condition: condition,
                        snapshot: snapshot,
                        old: old,
                        changes: changes,
                        version: version
                    )
                }
            case .changes:
                guard old != nil else { continue }
                let relevant = changes.filter { subject.trigger.matchesChangedKey($0.key) }
                if relevant.isEmpty { continue }
                emitConfig(
                    ruleIndex,
                    instance,
                    state: .event,
                    condition: nil,
                    snapshot: snapshot,
                    old: old,
                    changes: relevant,
                    version: version
                )
            }
        }
    }

    // MARK: Alerts

    private func emitConfig(
        _ ruleIndex: Int,
        _ instance: Instance,
        state: AlertState,
        condition: Condition?,
        snapshot: ConfigSnapshot,
        old: ConfigSnapshot?,
        changes: [ConfigChange],
        version: String
    ) {
        let rule = rules[ruleIndex]
        let masked = changes.map { $0.masked() }
        let key = (condition != nil ? facts[ruleIndex].firstKey : nil) ?? changes.first?.key
        func shown(_ value: String?, _ key: String) -> String? {
            guard let value else { return nil }
            return SecretKeys.isSecret(key) ? SecretKeys.mask(value) : value
        }
        let fields: (String) -> String? = { name in
            switch name {
            case "key": return key
            case "value": return key.flatMap { k in shown(snapshot.value(forKey: k), k) } ?? "(absent)"
            case "old": return key.flatMap { k in shown(old?.value(forKey: k), k) } ?? "(absent)"
            case "new": return key.flatMap { k in shown(snapshot.value(forKey: k), k) } ?? "(absent)"
            case "changes":
                return masked.isEmpty
                    ? "no changes"
                    : masked.map { "\($0.key): \($0.old ?? "(absent)") → \($0.new ?? "(absent)")" }.joined(
                        separator: ", "
                    )
            default: return self.commonField(name, rule: rule, instance: instance)
            }
        }
        // A resolution carries the same fingerprint; its text is `resolved_message:`, or the message said to be over.
        let message = rule.renderMessage(resolved: state == .resolved, fields)
        emit(
            ruleIndex: ruleIndex,
            instance: instance,
            state: state,
            kind: "config.changed",
            message: message,
            changes: masked,
            version: version
        )
    }

    private func emitFileEvent(_ ruleIndex: Int, _ instance: Instance, change: FileChangeKind, identity: FileIdentity) {
        let rule = rules[ruleIndex]
        let fields: (String) -> String? = { name in
            name == "change" ? change.rawValue : self.commonField(name, rule: rule, instance: instance)
        }
        let time = Clock.realtime()
        emit(
            ruleIndex: ruleIndex,
            instance: instance,
            state: .event,
            kind: "file.\(change.rawValue)",
            message: rule.message.render(fields),
            changes: [],
            version: "\(change.rawValue):\(identity.versionString):\(identity.changeNanoseconds):\(time.seconds)"
        )
    }

    private func commonField(_ name: String, rule: Rule, instance: Instance) -> String? {
        switch name {
        case "rule": rule.id
        case "severity": rule.severity.rawValue
        case "host": settings.host
        case "path": instance.serverPath
        case "file": instance.name
        default: nil
        }
    }

    private func emit(
        ruleIndex: Int,
        instance: Instance,
        state: AlertState,
        kind: String,
        message: String,
        changes: [ConfigChange],
        version: String
    ) {
        let rule = rules[ruleIndex]
        let fingerprint = instance.fingerprint(rule: ruleIndex, id: rule.id)
        let time = Clock.realtime()
        let record = AlertRecord(
            id: AlertIdentity.id(fingerprint: fingerprint, state: state, version: version),
            timeSeconds: time.seconds,
            timeNanoseconds: time.nanoseconds,
            host: settings.host,
            rule: rule.id,
            severity: rule.severity.rawValue,
            state: state,
            kind: kind,
            path: instance.serverPath,
            message: message,
            changes: changes,
            fingerprint: fingerprint,
            labels: facts[ruleIndex].labels
        )
        send(record, sinkMask: facts[ruleIndex].sinkMask)
    }

    private func emitInternal(rule: String, severity: Severity, kind: String, message: String, version: String) {
        outlet.sendVigilAlert(
            host: settings.host,
            rule: rule,
            severity: severity.rawValue,
            kind: kind,
            message: message,
            version: version,
            sinkMask: allSinks,
            eventTime: batchEventTime
        )
    }

    private func send(_ record: AlertRecord, sinkMask: UInt64) {
        outlet.send(record, sinkMask: sinkMask, eventTime: batchEventTime)
    }
}

extension String {
    /// Replaces every occurrence of `target` (no Foundation).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
