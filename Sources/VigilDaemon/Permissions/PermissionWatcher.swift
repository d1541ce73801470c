import Logging
import Synchronization
import SystemPackage
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The permission watcher (`vigil-perm`): keeps the mode, owner and group of the files and trees that mode
/// and owner rules name, and puts drift right the moment the kernel reports it.
///
/// ```
/// inotify (one watch per directory) ─► vigil-perm (openat2 · fstat · fchownat · chmod /proc/self/fd) ─► alert sinks
/// ```
///
/// - **Start-up** walks every claimed directory and tree once, judging each entry against its rule, and
///   places a watch on each directory (added, then listed, so nothing created in between is missed).
/// - **Events**: `IN_ATTRIB`, `IN_CREATE` and `IN_MOVED_TO` on an entry judge it again; a directory created
///   or moved into a tree is watched and walked. Vigil's own change comes back as `IN_ATTRIB` and finds the
///   file right: no loop, no second alert.
/// - **Safety**: every file is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` beneath the
///   root, `O_PATH | O_NOFOLLOW`, checked to be the inode its name named, and changed through the
///   descriptor. Regular files with several links are refused (a hard link is the file itself, perhaps
///   `/etc/shadow`). Directories are watched through `/proc/self/fd/N` of a descriptor opened the same way,
///   so a directory swapped for a symlink is never watched or walked.
/// - **Overflow**: `IN_Q_OVERFLOW` walks everything again, puts right what drifted while events were lost,
///   and alerts that events were lost.
/// - **Watch limit**: directories beyond `fs.inotify.max_user_watches` (or `--max-watches`) are enforced at
///   each walk but not watched; the alert names the limit and the value needed.
final class PermissionWatcher: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is confined to the vigil-perm thread after `run()` starts.

    struct Settings {
        var root: RootedPath
        var host: String
        /// Most inotify watches this watcher places (nil: as many as the kernel allows).
        var watchBudget: Int?
        /// `--dry-run`: a drift is reported with what the restore would do, and not restored.
        var dryRun: DryRun? = nil
    }

    /// One rule ready to run, its names resolved.
    struct CompiledRule {
        let rule: Rule
        let subject: PermissionSubject
        let sinkMask: UInt64
        let labels: [String: String]
        /// `chmod` / `chown` in `then:`: restore; otherwise the drift is only reported.
        let restoresMode: Bool
        let restoresOwner: Bool
        let owner: UInt32?
        let group: UInt32?
    }

    /// A watched directory.
    final class Node {
        var path: String
        let depth: Int
        let view: PermissionClaims.DirectoryView
        let watch: Int32
        /// Names of watched subdirectories → their watch.
        var children: [String: Int32] = [:]
        /// Walk in which the node was last seen (stale nodes are dropped after a full walk).
        var generation: UInt32
        /// Nearest existing ancestor of a missing claimed directory: a creation here may make it appear.
        var ancestor = false

        init(path: String, view: PermissionClaims.DirectoryView, watch: Int32, generation: UInt32) {
            self.path = path
            self.depth = PermissionClaims.depth(of: path)
            self.view = view
            self.watch = watch
            self.generation = generation
        }
    }

    /// A drift reported and not put right (audit, or a change refused or failed): resolved when it is gone.
    struct Firing {
        let rule: Int
        let found: String
    }

    let settings: Settings
    let logger: Logger
    let counters: PipelineCounters
    let outlet: AlertOutlet
    let inotify: Inotify
    let source: FileSource
    let shutdown: EventFD
    /// Rung when the start-up walk is done and every directory it found is watched.
    let ready: EventFD
    let rules: [CompiledRule]
    let claims: PermissionClaims
    let names: UserDatabase
    let allSinks: UInt64
    /// `O_PATH` descriptor of the root (`/` or `--root`): every open is beneath it.
    let rootDescriptor: CInt

    var nodes: [Int32: Node] = [:]
    var watchByPath: [String: Int32] = [:]
    var firing: [String: Firing] = [:]
    var generation: UInt32 = 0
    var rescanPending = false
    var rebuildPending = false
    /// Directories found in the last walks that could not be watched (limit reached), and whether that
    /// was reported.
    var unwatched: Set<String> = []
    var reportedUnwatched = 0
    /// Problems already logged once (a symlinked directory, an unreadable one), by path.
    var reportedProblems: Set<String> = []

    static let watchMask: UInt32 =
        InotifyMask.attributesChanged | InotifyMask.created | InotifyMask.movedTo | InotifyMask.movedFrom
        | InotifyMask.deleted | InotifyMask.selfDeleted | InotifyMask.selfMoved | InotifyMask.onlyDirectory
        | InotifyMask.excludeUnlinked

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
        names = UserDatabase(root: settings.root.root)
        var problems: [String] = []
        var compiled: [CompiledRule] = []
        var claimList: [PermissionClaims.Claim] = []
        for rule in rules {
            guard case .permissions(let subject) = rule.subject else {
                preconditionFailure("not a mode rule: \(rule.id)")
            }
            let owner = names.uid(subject.owner, problems: &problems)
            let group = names.gid(subject.group, problems: &problems)
            compiled.append(
                CompiledRule(
                    rule: rule,
                    subject: subject,
                    sinkMask: masks.mask(for: rule),
                    labels: rule.tagLabels,
                    restoresMode: rule.actions.contains { if case .chmod = $0 { true } else { false } },
                    restoresOwner: rule.actions.contains { if case .chown = $0 { true } else { false } },
                    owner: owner,
                    group: group
                )
            )
            for path in subject.paths {
                // An exact name is resolved whole (a rule may name a symlinked directory such as /var/run);
                // a glob's directory only. Nothing below the claimed paths is ever followed.
                var directory = settings.root.canonical(path.directory)
                var name = path.name
                if case .exact(let exact) = path.name {
                    let full = settings.root.canonical(Self.join(path.directory, exact))
                    if let parent = Self.parent(of: full), full != "/" {
                        directory = parent
                        name = .exact(String(full.dropFirst(parent == "/" ? 1 : parent.count + 1)))
                    }
                }
                claimList.append(
                    PermissionClaims.Claim(
                        rule: compiled.count - 1,
                        directory: directory,
                        name: name,
                        recursive: subject.recursive,
                        depth: PermissionClaims.depth(of: directory)
                    )
                )
            }
        }
        if !problems.isEmpty { throw DaemonError(problems.joined(separator: "\n")) }
        self.rules = compiled
        claims = PermissionClaims(claims: claimList)
        let rootFD: CInt
        do { rootFD = try SafeDirectory.openTrusted(settings.root.root) } catch {
            throw DaemonError("Failed to open the root '\(settings.root.root)': \(error); check --root")
        }
        rootDescriptor = rootFD
        do {
            inotify = try Inotify()
            source = FileSource(inotify: inotify, counters: counters)
            shutdown = try EventFD()
            ready = try EventFD()
        } catch {
            Syscall.close(rootFD)
            throw DaemonError("Failed to set up the permission watcher: \(error)")
        }
    }

    deinit { Syscall.close(rootDescriptor) }

    var ruleCount: Int { rules.count }

    private static let inotifyTag: UInt64 = 1
    private static let shutdownTag: UInt64 = 2

    /// The thread body: runs until `shutdown` rings.
    func run() {
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.add(inotify.descriptor, tag: Self.inotifyTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
        } catch {
            preconditionFailure("PermissionWatcher: epoll setup failed: \(error)")
        }
        walkEverything()
        ready.ring()
        var stopping = false
        while !stopping {
            do {
                try epoll.wait { tag in if tag == Self.shutdownTag { stopping = true } }
            } catch {
                preconditionFailure("PermissionWatcher: epoll_wait failed: \(error)")
            }
            drainEvents()
        }
        drainEvents()
    }

    /// Reads every pending inotify event and acts on it; then the rescan an overflow asked for.
    func drainEvents() {
        while source.readBatch({ record in handle(record) }) {}
        if rescanPending {
            rescanPending = false
            let restoredBefore = counters.permissionsRestored.load(ordering: .relaxed)
            let lostAt = Clock.monotonicNanoseconds()
            walkEverything()
            let restored = counters.permissionsRestored.load(ordering: .relaxed) &- restoredBefore
            outlet.sendVigilAlert(
                host: settings.host,
                rule: "vigil.events_lost",
                severity: Severity.warning.rawValue,
                kind: "vigil.events_lost",
                message:
                    "The kernel's inotify queue overflowed (fs.inotify.max_queued_events) and mode and owner changes were lost; every watched tree was walked again and \(restored) drift(s) put right",
                version: "permissions:\(lostAt)",
                sinkMask: allSinks,
                eventTime: 0
            )
        } else if rebuildPending {
            // A directory created between a failed open and its ancestor's watch raises no event: go round
            // again while one appeared meanwhile (at most once per path component).
            var rounds = 0
            while rebuildPending && rounds < 64 {
                rebuildPending = false
                rounds += 1
                for directory in claims.claimDirectories where watchByPath[directory] == nil { visit(directory) }
            }
            reportUnwatched()
        }
    }

    private func handle(_ record: FileEventRecord) {
        if record.mask & InotifyMask.queueOverflow != 0 {
            counters.overflows.add(1, ordering: .relaxed)
            rescanPending = true
            return
        }
        if rescanPending { return }  // Everything is walked again after this batch.
        guard let node = nodes[record.watch] else { return }
        if record.mask & InotifyMask.watchRemoved != 0 {
            forget(node)
            return
        }
        if record.nameLength == 0 {
            // The directory itself moved or went: its path is no longer what the node says.
            if record.mask & (InotifyMask.selfMoved | InotifyMask.selfDeleted) != 0 {
                removeSubtree(node.path)
                rebuildPending = true
            }
            return
        }
        if node.ancestor && record.mask & (InotifyMask.created | InotifyMask.movedTo) != 0 { rebuildPending = true }
        let name = record.nameString
        let isDirectory = record.mask & InotifyMask.isDirectory != 0
        if record.mask & InotifyMask.nameGone != 0 {
            guard isDirectory || !firing.isEmpty else { return }
            let path = Self.join(node.path, name)
            if isDirectory { removeSubtree(path) }
            resolveGone(path)
            return
        }
        // Most events in a watched directory concern names no rule claims (other logs in /var/log): they
        // cost the name and a lookup, not a path.
        let claim = claims.governing(name, in: node.view, directoryDepth: node.depth)
        let arrived = isDirectory && record.mask & (InotifyMask.created | InotifyMask.movedTo) != 0
        guard claim != nil || arrived else { return }
        let path = Self.join(node.path, name)
        if let claim {
            check(
                path,
                relative: RootedPath.relative(path),
                beneath: rootDescriptor,
                claim: claim,
                eventTime: record.readTime
            )
        }
        if arrived && claims.view(of: path).needsWatch { visit(path) }
    }

    // MARK: Walking and watching

    /// Walks every claimed directory and tree: judges every entry, watches every directory, and drops the
    /// watches of directories that are gone.
    func walkEverything() {
        generation &+= 1
        counters.permissionRescans.add(1, ordering: .relaxed)
        unwatched.removeAll(keepingCapacity: true)
        for directory in claims.claimDirectories { visit(directory) }
        for node in Array(nodes.values) where node.generation != generation {
            inotify.removeWatch(node.watch)
            forget(node)
        }
        // Drifts reported for files that are gone (moved or deleted while events were lost) are resolved.
        for path in Array(firing.keys) {
            var info = stat()
            if fstatat(rootDescriptor, RootedPath.relative(path), &info, AT_SYMLINK_NOFOLLOW) != 0 { resolveGone(path) }
        }
        reportUnwatched()
    }

    /// Watches `start` and walks it: its entries are judged, and its subdirectories that rules cover are
    /// watched and walked in turn (a watch is placed before the listing, so nothing created in between is
    /// missed).
    func visit(_ start: String) {
        var stack = [start]
        while let path = stack.popLast() {
            if let wd = watchByPath[path], let node = nodes[wd], node.generation == generation, !node.ancestor {
                continue
            }
            let directory: CInt
            do {
                directory = try SafeDirectory.open(RootedPath.relative(path), beneath: rootDescriptor)
            } catch {
                if error == .noSuchFileOrDirectory || error == .notDirectory {
                    if claims.claimDirectories.contains(path) { watchAncestor(of: path) }
                } else {
                    reportOnce(
                        path,
                        "Not watching '\(path)' for mode and owner rules: \(error); a symlink on the way is refused (Vigil never follows one into a tree it changes): name the real directory in the rule, or replace the link by the directory"
                    )
                }
                continue
            }
            defer { Syscall.close(directory) }
            let view = claims.view(of: path)
            let node = watch(path, directory: directory, view: view)
            let depth = node?.depth ?? PermissionClaims.depth(of: path)
            try? SafeDirectory.forEachEntry(in: directory) { entry in
                let child = Self.join(path, entry.name)
                if let claim = claims.governing(entry.name, in: view, directoryDepth: depth) {
                    check(child, relative: entry.name, beneath: directory, claim: claim, eventTime: 0)
                }
                var isDirectory = entry.isDirectory
                if entry.type == 0 {  // DT_UNKNOWN
                    var info = stat()
                    isDirectory =
                        fstatat(directory, entry.name, &info, AT_SYMLINK_NOFOLLOW) == 0
                        && info.st_mode & S_IFMT == S_IFDIR
                }
                if isDirectory && claims.view(of: child).needsWatch { stack.append(child) }
            }
        }
    }

    /// Places (or renews) the watch on the open directory `directory` at `path`; nil when the limit is
    /// reached (the directory is still walked, just not watched).
    @discardableResult
    private func watch(_ path: String, directory: CInt, view: PermissionClaims.DirectoryView) -> Node? {
        if let budget = settings.watchBudget, watchByPath[path] == nil, nodes.count >= budget {
            unwatched.insert(path)
            return nil
        }
        let wd: Int32
        do {
            // Through the descriptor: exactly the directory that was opened without following a symlink.
            wd = try inotify.addWatch("/proc/self/fd/\(directory)", mask: Self.watchMask)
        } catch {
            if error.code == .watchLimitReached {
                unwatched.insert(path)
            } else {
                reportOnce(path, "Failed to watch '\(path)' for mode and owner rules: \(error)")
            }
            return nil
        }
        if let existing = nodes[wd] {
            if existing.path != path {
                // The same directory under a new name (moved while events were lost): renamed in place.
                removeSubtree(existing.path, keeping: wd)
            }
            if existing.path == path {
                existing.generation = generation
                existing.ancestor = false
                return existing
            }
        }
        if let old = watchByPath[path], old != wd, let stale = nodes[old] {
            inotify.removeWatch(old)
            forget(stale)
        }
        let node = Node(path: path, view: view, watch: wd, generation: generation)
        nodes[wd] = node
        watchByPath[path] = wd
        if let parent = Self.parent(of: path), let parentWatch = watchByPath[parent] {
            nodes[parentWatch]?.children[String(path.dropFirst(parent == "/" ? 1 : parent.count + 1))] = wd
        }
        counters.permissionWatches.store(UInt64(nodes.count), ordering: .relaxed)
        return node
    }

    /// Watches the nearest existing ancestor of a missing claimed directory, to notice it being created.
    private func watchAncestor(of path: String) {
        var current = path
        while let parent = Self.parent(of: current) {
            current = parent
            guard let directory = try? SafeDirectory.open(RootedPath.relative(current), beneath: rootDescriptor) else {
                continue
            }
            defer { Syscall.close(directory) }
            if let wd = watchByPath[current], let node = nodes[wd] {
                node.ancestor = true
                node.generation = generation
            } else if let node = watch(current, directory: directory, view: claims.view(of: current)) {
                node.ancestor = true
            }
            // The next component may have been created before the watch was in place.
            if let next = PermissionClaims.firstComponent(of: path, below: current) {
                var info = stat()
                if fstatat(directory, String(next), &info, AT_SYMLINK_NOFOLLOW) == 0 { rebuildPending = true }
            }
            return
        }
    }

    /// Drops the node (its watch is gone or about to be).
    private func forget(_ node: Node) {
        nodes[node.watch] = nil
        if watchByPath[node.path] == node.watch { watchByPath[node.path] = nil }
        if let parent = Self.parent(of: node.path), let parentWatch = watchByPath[parent],
            let parentNode = nodes[parentWatch]
        {
            let name = String(node.path.dropFirst(parent == "/" ? 1 : parent.count + 1))
            if parentNode.children[name] == node.watch { parentNode.children[name] = nil }
        }
        counters.permissionWatches.store(UInt64(nodes.count), ordering: .relaxed)
    }

    /// Stops watching `path` and every watched directory below it (moved away or deleted).
    private func removeSubtree(_ path: String, keeping kept: Int32 = -1) {
        guard let wd = watchByPath[path], let node = nodes[wd] else { return }
        var stack = [node]
        while let current = stack.popLast() {
            for child in current.children.values { if let childNode = nodes[child] { stack.append(childNode) } }
            if current.watch != kept { inotify.removeWatch(current.watch) }
            forget(current)
        }
    }

    /// Logs and alerts once that directories are not watched because of the watch limit.
    private func reportUnwatched() {
        guard !unwatched.isEmpty, unwatched.count != reportedUnwatched else {
            if unwatched.isEmpty { reportedUnwatched = 0 }
            return
        }
        reportedUnwatched = unwatched.count
        let example = unwatched.min() ?? ""
        let message: String
        if let budget = settings.watchBudget, nodes.count >= budget {
            message =
                "\(unwatched.count) directories under mode and owner rules are not watched (such as '\(example)'): Vigil's limit of \(budget) watches (--max-watches) is reached; raise it to at least \(nodes.count + unwatched.count). They were put right now and are put right again at each rescan, but changes there are not seen as they happen"
        } else {
            let limit = Inotify.maximumUserWatches()
            let needed = (limit ?? nodes.count) + unwatched.count
            message =
                "\(unwatched.count) directories under mode and owner rules are not watched (such as '\(example)'): the inotify watch limit fs.inotify.max_user_watches = \(limit.map(String.init) ?? "?") is reached (\(nodes.count) watches are Vigil's); set it to at least \(needed): sysctl -w fs.inotify.max_user_watches=\(needed), and in /etc/sysctl.d/ to keep it. They were put right now, but changes there are not seen as they happen"
        }
        logger.error("\(message)")
        outlet.sendVigilAlert(
            host: settings.host,
            rule: "vigil.watch_limit",
            severity: Severity.error.rawValue,
            kind: "vigil.watch_limit",
            message: message,
            version: "permissions:\(unwatched.count):\(Clock.monotonicNanoseconds())",
            sinkMask: allSinks,
            eventTime: 0
        )
    }

    private func reportOnce(_ path: String, _ message: String) {
        guard reportedProblems.insert(path).inserted else { return }
        logger.warning("\(message)")
    }

    // MARK: Paths

    static func join(_ directory: String, _ name: String) -> String {
        directory == "/" ? "/" + name : directory + "/" + name
    }

    static func parent(of path: String) -> String? {
        guard path != "/", let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
