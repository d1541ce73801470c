import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The escalation watcher (`vigil-esc`): finds the programs root runs (cron tables, systemd units, `also:`)
/// and alerts while anyone but root can write one of them or a directory above it.
///
/// ```
/// inotify (cron and unit directories · every program and the directories above it) ─► vigil-esc (parse · lstat) ─► alert sinks
/// ```
///
/// - **Start-up** reads every source, checks every program (`lstat` of each path component from `/`,
///   following a symlink by hand so the link's directories and the target's are both checked), then
///   watches the sources' directories and everything each check looked at.
/// - **Events**: a crontab or unit written, renamed into place or deleted is read again; `IN_ATTRIB`,
///   a rename or a deletion on a program or a directory above it checks the programs whose paths pass
///   there. The watches follow what the last check looked at. No timer, no polling.
/// - **State rule** per (rule, program): fires once with who can write what, fires again only when someone
///   new can write, resolves when only root can write it or root no longer runs it.
/// - **Overflow**: `IN_Q_OVERFLOW` reads every source and checks every program again.
final class EscalationWatcher: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is confined to the vigil-esc thread after `run()` starts.

    /// Where the root is and what the host is called.
    struct Settings {
        var root: RootedPath
        var host: String
    }

    /// One rule ready to run.
    struct CompiledRule {
        let rule: Rule
        let subject: EscalationSubject
        let sinkMask: UInt64
        let labels: [String: String]
    }

    /// Where root's programs are listed: a directory and which of its names are sources.
    struct SourceDirectory {
        /// Canonical server path (`/etc/cron.d`).
        let path: String
        let kind: EscalationSource
        /// How the files are read.
        let format: Format
        /// nil: every name the format accepts; otherwise that one name (`crontab` in `/etc`).
        let only: String?

        enum Format { case systemCrontab, userCrontab, unit }

        /// Whether `name` in this directory is a source file.
        func accepts(_ name: String) -> Bool {
            if let only { return name == only }
            switch format {
            case .unit: return name.hasSuffix(".service") && !name.hasPrefix(".")
            // cron reads only names made of letters, digits, `_` and `-` (run-parts' rule), so editors'
            // temporary files (`.job.swp`, `job~`) and package leftovers (`job.dpkg-old`) are not jobs.
            case .systemCrontab, .userCrontab:
                return !name.isEmpty
                    && name.utf8.allSatisfy {
                        ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                            || $0 == 0x5F || $0 == 0x2D
                    }
            }
        }
    }

    /// A path a check looked at, with the inode it found (a watch is renewed when the inode changes).
    struct Looked: Equatable {
        var path: String
        var isDirectory: Bool
        var device: UInt64
        var inode: UInt64
    }

    /// Someone other than root can write `path`.
    struct Finding: Equatable {
        var path: String
        var writers: [String]
        var reason: String
    }

    /// The outcome of checking one program.
    struct Verdict {
        /// Existing files and directories on the way, to watch.
        var looked: [Looked] = []
        /// Every path whose change may change the verdict (also symlinks and the first missing component).
        var keys: Set<String> = []
        var findings: [Finding] = []
        /// The program (or a directory on its way) does not exist.
        var missing = false
        /// Symlinks followed, `link -> target`.
        var links: [String] = []
    }

    /// A watched inode: the paths it stands for and the mask placed.
    struct WatchEntry {
        var paths: Set<String>
        var mask: UInt32
    }

    let settings: Settings
    let logger: Logger
    let counters: PipelineCounters
    let outlet: AlertOutlet
    let inotify: Inotify
    let source: FileSource
    let shutdown: EventFD
    /// Rung when the start-up check is done and every path is watched.
    let ready: EventFD
    let rules: [CompiledRule]
    let names: UserDatabase
    let wantsCron: Bool
    let wantsSystemd: Bool

    var directories: [SourceDirectory] = []
    /// Programs per source file (server path), as last read.
    var sourceFiles: [String: (kind: EscalationSource, programs: [RootProgram])] = [:]
    /// Per rule: program → the lines that run it.
    var programsByRule: [[String: [RootProgram]]] = []
    var verdicts: [String: Verdict] = [:]
    /// Path → programs whose verdict depends on it.
    var dependents: [String: Set<String>] = [:]
    /// (rule, program) → who the firing alert said can write.
    var firing: [String: Set<String>] = [:]
    var watches: [Int32: WatchEntry] = [:]
    var watchByPath: [String: (watch: Int32, device: UInt64, inode: UInt64)] = [:]
    /// Sources that could not be read, logged once each.
    var reportedProblems: Set<String> = []
    /// What start-up cost, for the log line and the benchmark.
    var startupNanoseconds: UInt64 = 0
    var lstatCount = 0

    /// Directories watched for the sources, and what changes in them.
    static let sourceMask: UInt32 =
        InotifyMask.closedAfterWriting | InotifyMask.movedTo | InotifyMask.created | InotifyMask.deleted
        | InotifyMask.movedFrom | InotifyMask.selfDeleted | InotifyMask.selfMoved
    /// Directories on a program's way: their mode and owner, and the next component replaced.
    static let directoryMask: UInt32 =
        InotifyMask.attributesChanged | InotifyMask.selfMoved | InotifyMask.selfDeleted | InotifyMask.created
        | InotifyMask.movedTo | InotifyMask.deleted | InotifyMask.movedFrom
    /// The program itself: its mode and owner.
    static let fileMask: UInt32 = InotifyMask.attributesChanged | InotifyMask.selfMoved | InotifyMask.selfDeleted
    /// Adds to the mask an inode already has (two paths, one inode: a hard link). The corresponding C
    /// constant is `IN_MASK_ADD`.
    static let maskAdd: UInt32 = 0x2000_0000

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
        names = UserDatabase(root: settings.root.root)
        var compiled: [CompiledRule] = []
        for rule in rules {
            guard case .escalation(let subject) = rule.subject else {
                preconditionFailure("not an escalation rule: \(rule.id)")
            }
            compiled.append(
                CompiledRule(
                    rule: rule,
                    subject: subject,
                    sinkMask: masks.mask(for: rule),
                    labels: rule.tagLabels
                )
            )
        }
        self.rules = compiled
        wantsCron = compiled.contains { $0.subject.sources.contains(.cron) }
        wantsSystemd = compiled.contains { $0.subject.sources.contains(.systemd) }
        do {
            inotify = try Inotify()
            source = FileSource(inotify: inotify, counters: counters)
            shutdown = try EventFD()
            ready = try EventFD()
        } catch {
            throw DaemonError("Failed to set up the escalation watcher: \(error)")
        }
    }

    /// Number of escalation rules running.
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
            preconditionFailure("EscalationWatcher: epoll setup failed: \(error)")
        }
        let started = Clock.monotonicNanoseconds()
        rescanEverything(eventTime: 0)
        startupNanoseconds = Clock.monotonicNanoseconds() &- started
        logger.info(
            "Escalation rules: \(verdicts.count) program(s) root runs from \(sourceFiles.count) source file(s), \(watches.count) inotify watches, \(lstatCount) lstat calls, start-up check \(startupNanoseconds / 1000) µs"
        )
        ready.ring()
        var stopping = false
        while !stopping {
            do {
                try epoll.wait { tag in if tag == Self.shutdownTag { stopping = true } }
            } catch {
                preconditionFailure("EscalationWatcher: epoll_wait failed: \(error)")
            }
            drainEvents()
        }
    }

    /// Reads every pending event, then reads the sources that changed, checks the programs affected and
    /// moves the watches.
    func drainEvents() {
        var overflow = false
        var rescanSources = false
        var changedFiles: Set<String> = []
        var affected: Set<String> = []
        var eventTime: UInt64 = 0
        while source.readBatch({ record in
            eventTime = record.readTime
            if record.mask & InotifyMask.queueOverflow != 0 {
                counters.overflows.add(1, ordering: .relaxed)
                overflow = true
                return
            }
            guard let entry = watches[record.watch] else { return }
            if record.mask & InotifyMask.watchRemoved != 0 {
                forgetWatch(record.watch)
                return
            }
            let name = record.nameLength == 0 ? nil : record.nameString
            let selfGone = record.mask & (InotifyMask.selfMoved | InotifyMask.selfDeleted) != 0
            let nameChanged =
                record.mask & (InotifyMask.created | InotifyMask.movedTo | InotifyMask.movedFrom | InotifyMask.deleted)
                != 0
            for path in entry.paths {
                if selfGone {
                    // The inode left this path: the path is looked at again and watched anew.
                    watchByPath[path] = nil
                    detach(path, from: record.watch)
                }
                let key = name.map { Self.join(path, $0) } ?? path
                if let programs = dependents[key] { affected.formUnion(programs) }
                for directory in directories {
                    if let name, directory.path == path, directory.accepts(name) {
                        changedFiles.insert(key)
                    } else if (name != nil && nameChanged || selfGone)
                        && (directory.path == key || directory.path.hasPrefix(key == "/" ? "/" : key + "/"))
                    {
                        // A source directory (or one above it) appeared, went or moved.
                        rescanSources = true
                    }
                }
            }
        }) {}
        if overflow || rescanSources {
            rescanEverything(eventTime: eventTime, overflow: overflow)
            return
        }
        if !changedFiles.isEmpty {
            for file in changedFiles { readSource(file) }
            affected.formUnion(rebuildProgramSets())
        }
        guard !affected.isEmpty else { return }
        for program in affected { check(program) }
        report(affected, eventTime: eventTime)
        watchAndRecheck(eventTime: eventTime)
    }

    /// Reads every source, checks every program, judges and watches: start-up and after lost events.
    func rescanEverything(eventTime: UInt64, overflow: Bool = false) {
        // `/lib` is often a symlink to `/usr/lib`: a directory reached twice is read once.
        directories = []
        for directory in Self.sourceDirectories(cron: wantsCron, systemd: wantsSystemd) {
            let path = settings.root.canonical(directory.path)
            if directories.contains(where: { $0.path == path && $0.only == directory.only }) { continue }
            directories.append(
                SourceDirectory(path: path, kind: directory.kind, format: directory.format, only: directory.only)
            )
        }
        sourceFiles = [:]
        for directory in directories { readDirectory(directory) }
        var programs = rebuildProgramSets()
        programs.formUnion(verdicts.keys)
        verdicts = [:]
        dependents = [:]
        for program in programs { check(program) }
        report(programs, eventTime: eventTime)
        watchAndRecheck(eventTime: eventTime)
        if overflow {
            outlet.sendVigilAlert(
                host: settings.host,
                rule: "vigil.events_lost",
                severity: Severity.warning.rawValue,
                kind: "vigil.events_lost",
                message:
                    "The kernel's inotify queue overflowed (fs.inotify.max_queued_events) and changes to the programs root runs may have been missed; every source was read and every program checked again",
                version: "escalation:\(Clock.monotonicNanoseconds())",
                sinkMask: rules.reduce(0) { $0 | $1.sinkMask },
                eventTime: eventTime
            )
        }
    }

    /// The places programs root runs are listed, by source kind; systemd's in precedence order (a unit in
    /// `/etc` hides one of the same name below it).
    static func sourceDirectories(cron: Bool, systemd: Bool) -> [SourceDirectory] {
        var list: [SourceDirectory] = []
        if cron {
            list.append(SourceDirectory(path: "/etc", kind: .cron, format: .systemCrontab, only: "crontab"))
            list.append(SourceDirectory(path: "/etc/cron.d", kind: .cron, format: .systemCrontab, only: nil))
            list.append(
                SourceDirectory(path: "/var/spool/cron/crontabs", kind: .cron, format: .userCrontab, only: "root")
            )
        }
        if systemd {
            for path in [
                "/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
            ] {
                list.append(SourceDirectory(path: path, kind: .systemd, format: .unit, only: nil))
            }
        }
        return list
    }

    // MARK: Sources

    /// Reads every source file of `directory`.
    private func readDirectory(_ directory: SourceDirectory) {
        if let only = directory.only {
            readSource(Self.join(directory.path, only))
            return
        }
        let host = settings.root.hostPath(directory.path)
        guard let stream = opendir(host) else { return }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if directory.accepts(name) { readSource(Self.join(directory.path, name)) }
        }
    }

    /// Reads one source file (server path) again; a file that is gone lists nothing.
    func readSource(_ file: String) {
        guard let slash = file.lastIndex(of: "/") else { return }
        let directoryPath = slash == file.startIndex ? "/" : String(file[..<slash])
        let name = String(file[file.index(after: slash)...])
        guard let directory = directories.first(where: { $0.path == directoryPath && $0.accepts(name) }) else {
            return
        }
        // A unit of the same name in a directory of higher precedence hides this one; that one is read
        // again instead, since it may be a symlink to this file.
        if directory.format == .unit,
            let index = directories.firstIndex(where: { $0.path == directoryPath }),
            let higher = directories[..<index].first(where: {
                $0.format == .unit && sourceFiles[Self.join($0.path, name)] != nil
            })
        {
            sourceFiles[file] = nil
            readSource(Self.join(higher.path, name))
            return
        }
        guard let text = readText(file) else {
            sourceFiles[file] = nil
            if directory.format == .unit { reloadShadowed(name, below: directoryPath) }
            return
        }
        let programs: [RootProgram]
        switch directory.format {
        case .systemCrontab: programs = RootPrograms.systemCrontab(text, file: file)
        case .userCrontab: programs = RootPrograms.userCrontab(text, file: file)
        case .unit: programs = RootPrograms.unit(text, file: file)
        }
        sourceFiles[file] = (directory.kind, programs)
        if directory.format == .unit {
            // This unit now hides the ones of the same name in directories of lower precedence.
            if let index = directories.firstIndex(where: { $0.path == directoryPath }) {
                for lower in directories[(index + 1)...] where lower.format == .unit {
                    sourceFiles[Self.join(lower.path, name)] = nil
                }
            }
        }
    }

    /// A unit removed from a directory: the one of the same name below it (if any) is read instead.
    private func reloadShadowed(_ name: String, below directoryPath: String) {
        guard let index = directories.firstIndex(where: { $0.path == directoryPath }) else { return }
        for lower in directories[(index + 1)...] where lower.format == .unit && lower.path != directoryPath {
            let file = Self.join(lower.path, name)
            if readText(file) != nil {
                readSource(file)
                return
            }
        }
    }

    /// The text of a source file inside the root (symlinks resolved inside it; `/dev/null`, a masked unit,
    /// is empty), or nil when it is missing or not a regular file.
    private func readText(_ file: String) -> String? {
        guard let resolved = try? settings.root.resolve(file), resolved.missing.isEmpty else { return nil }
        if resolved.existing == "/dev/null" { return "" }
        let host = settings.root.hostPath(resolved.existing)
        var info = stat()
        guard stat(host, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            reportOnce(file, "Not reading '\(file)' for escalation rules: it is not a regular file, skipping")
            return nil
        }
        guard let text = ProcFile.readText(host, limit: 1 << 20) else {
            reportOnce(
                file,
                "Failed to read '\(file)' for escalation rules: \(String(cString: strerror(errno))); vigil needs CAP_DAC_READ_SEARCH to read root's crontab, skipping"
            )
            return nil
        }
        return text
    }

    /// Recomputes every rule's programs from the sources read; returns the programs that appeared, went
    /// or changed lines.
    func rebuildProgramSets() -> Set<String> {
        var changed: Set<String> = []
        var rebuilt: [[String: [RootProgram]]] = []
        for (index, compiled) in rules.enumerated() {
            var programs: [String: [RootProgram]] = [:]
            for file in sourceFiles.keys.sorted() {
                guard let entry = sourceFiles[file], compiled.subject.sources.contains(entry.kind) else { continue }
                for program in entry.programs { programs[program.path, default: []].append(program) }
            }
            for path in compiled.subject.also {
                programs[path, default: []].append(
                    RootProgram(path: path, source: "also: in rule '\(compiled.rule.id)'")
                )
            }
            let before = index < programsByRule.count ? programsByRule[index] : [:]
            for (path, lines) in programs where before[path] != lines { changed.insert(path) }
            for path in before.keys where programs[path] == nil { changed.insert(path) }
            rebuilt.append(programs)
        }
        programsByRule = rebuilt
        return changed
    }

    // MARK: Watches

    /// Places the watches the sources and the last checks need, renews those whose inode changed, and
    /// removes those no longer needed; returns the paths watched anew.
    @discardableResult
    func updateWatches() -> Set<String> {
        var placedAnew: Set<String> = []
        var wanted: [String: UInt32] = [:]
        for directory in directories {
            // A missing source directory: its nearest existing ancestor, to see it created.
            var path = directory.path
            while !path.isEmpty, !exists(path) {
                guard let parent = Self.parent(of: path) else { break }
                path = parent
            }
            wanted[path, default: 0] |= Self.sourceMask
        }
        for verdict in verdicts.values {
            for looked in verdict.looked {
                wanted[looked.path, default: 0] |= looked.isDirectory ? Self.directoryMask : Self.fileMask
            }
        }
        // Watches no longer wanted go first (a path dropped from an inode's set; the inode when no path
        // is left).
        for (path, placed) in watchByPath where wanted[path] == nil {
            watchByPath[path] = nil
            detach(path, from: placed.watch)
        }
        for (path, mask) in wanted.sorted(by: { $0.key < $1.key }) {
            var info = stat()
            lstatCount += 1
            guard lstat(settings.root.hostPath(path), &info) == 0 else { continue }
            let device = UInt64(info.st_dev)
            let inode = UInt64(info.st_ino)
            if let placed = watchByPath[path], placed.device == device, placed.inode == inode,
                let entry = watches[placed.watch], entry.mask & mask == mask
            {
                continue
            }
            if let placed = watchByPath[path] { detach(path, from: placed.watch) }
            let isDirectory = info.st_mode & S_IFMT == S_IFDIR
            let flags = mask | Self.maskAdd | InotifyMask.dontFollow | (isDirectory ? InotifyMask.onlyDirectory : 0)
            let wd: Int32
            do {
                wd = try inotify.addWatch(settings.root.hostPath(path), mask: flags)
            } catch {
                reportOnce(
                    "watch:" + path,
                    "Failed to watch '\(path)' for escalation rules: \(error); changes there are seen only when a source changes"
                )
                continue
            }
            watches[wd, default: WatchEntry(paths: [], mask: 0)].paths.insert(path)
            watches[wd]?.mask |= mask
            watchByPath[path] = (wd, device, inode)
            placedAnew.insert(path)
        }
        return placedAnew
    }

    /// Watches what the checks looked at, then checks again the programs behind every path watched anew:
    /// a change made between a check and its watch (a script chmodded right after the crontab that names
    /// it was saved) raises no event, so the check after the watch is what sees it. Repeats while checks
    /// look at new paths (a few rounds at most: each one only follows a changed chain further).
    func watchAndRecheck(eventTime: UInt64) {
        var placed = updateWatches()
        var rounds = 0
        while !placed.isEmpty && rounds < 8 {
            rounds += 1
            var again: Set<String> = []
            for path in placed { again.formUnion(dependents[path] ?? []) }
            guard !again.isEmpty else { return }
            for program in again { check(program) }
            report(again, eventTime: eventTime)
            placed = updateWatches()
        }
    }

    /// Drops `path` from the paths of watch `wd`; removes the watch when none is left.
    private func detach(_ path: String, from wd: Int32) {
        guard var entry = watches[wd] else { return }
        entry.paths.remove(path)
        if entry.paths.isEmpty {
            watches[wd] = nil
            inotify.removeWatch(wd)
        } else {
            watches[wd] = entry
        }
    }

    /// The kernel removed watch `wd` (its inode is gone): its paths are watched anew at the next update.
    private func forgetWatch(_ wd: Int32) {
        guard let entry = watches.removeValue(forKey: wd) else { return }
        for path in entry.paths where watchByPath[path]?.watch == wd { watchByPath[path] = nil }
    }

    /// Whether something (a symlink too) is under the server path `path`.
    private func exists(_ path: String) -> Bool {
        var info = stat()
        lstatCount += 1
        return lstat(settings.root.hostPath(path), &info) == 0
    }

    /// Logs a problem once per key (a source that cannot be read, a path that cannot be watched).
    func reportOnce(_ key: String, _ message: String) {
        guard reportedProblems.insert(key).inserted else { return }
        logger.warning("\(message)")
    }

    // MARK: Paths

    /// `directory/name` without a double slash under `/`.
    static func join(_ directory: String, _ name: String) -> String {
        directory == "/" ? "/" + name : directory + "/" + name
    }

    /// The directory above `path`; nil for `/`.
    static func parent(of path: String) -> String? {
        guard path != "/", let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
