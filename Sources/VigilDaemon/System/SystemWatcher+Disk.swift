import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// `disk:` rules: statfs re-checked when watched paths grow (coalesced per filesystem) and on a slow timer.
extension SystemWatcher {
    /// Watched directories: anything written, created, moved in or deleted there may change the usage.
    static let directoryMask: UInt32 =
        InotifyMask.modified | InotifyMask.closedAfterWriting | InotifyMask.created | InotifyMask.movedTo
        | InotifyMask.deleted | InotifyMask.movedFrom | InotifyMask.onlyDirectory
    /// A watched file: its own growth.
    static let fileMask: UInt32 = InotifyMask.modified | InotifyMask.closedAfterWriting

    /// Finds the filesystem of every disk rule path, places the watches, and watches the directories of log
    /// rules on those filesystems too.
    func setUpDisk(quiet: Bool = false) {
        for index in rules.indices {
            guard case .disk(let subject) = rules[index].rule.subject else { continue }
            for path in subject.paths where !attach(rule: index, path: path, reportMissing: !quiet) {
                missingPaths.append((index, path))
            }
        }
        guard !fileSystems.isEmpty else { return }
        // Log files grow all the time and are on these filesystems more often than not: a watch on their
        // directory costs one descriptor and makes a log filling the disk a write-time check.
        for directory in Set(settings.logDirectories) {
            guard let resolved = try? settings.root.resolve(directory), resolved.missing.isEmpty else { continue }
            let host = settings.root.hostPath(resolved.existing)
            var info = stat()
            guard stat(host, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR,
                let target = fileSystems.firstIndex(where: { $0.usage.device == UInt64(info.st_dev) })
            else { continue }
            watch(host, mask: Self.directoryMask, fileSystem: target)
        }
    }

    /// Adds `path` of rule `rule`: its filesystem (a new one, or one already known by device), the rule's
    /// instance on it, and a watch. A missing path is reported (when `reportMissing`) and its nearest
    /// existing ancestor stands in for it; returns whether the path itself exists.
    @discardableResult
    func attach(rule: Int, path: String, reportMissing: Bool) -> Bool {
        let compiled = rules[rule].rule
        let resolution: RootedPath.Resolution
        do { resolution = try settings.root.resolve(path) } catch {
            if reportMissing {
                logger.warning("\(compiled.location): warning: rule '\(compiled.id)': disk: path '\(path)': \(error)")
            }
            return false
        }
        let existing = resolution.existing.isEmpty ? "/" : resolution.existing
        let host = settings.root.hostPath(existing)
        if !resolution.missing.isEmpty && reportMissing {
            logger.warning(
                "\(compiled.location): warning: rule '\(compiled.id)': disk: path '\(path)' does not exist; checking the filesystem of '\(existing)' instead, and again each recheck: until it exists (create it or correct the path)"
            )
        }
        let usage: FileSystemUsage
        switch FileSystemUsage.of(host) {
        case .success(let found): usage = found
        case .failure(let error):
            if reportMissing {
                logger.warning(
                    "\(compiled.location): warning: rule '\(compiled.id)': Failed to examine the filesystem of '\(path)': \(error); skipping it (vigil needs search permission on every directory above it: CAP_DAC_READ_SEARCH)"
                )
            }
            return false
        }
        let target: Int
        if let known = fileSystems.firstIndex(where: { $0.usage.device == usage.device }) {
            target = known
        } else {
            target = fileSystems.count
            fileSystems.append(FileSystem(usage: usage, statPath: host, mount: serverMount(usage.mountPoint)))
        }
        if !diskInstances.contains(where: { $0.rule == rule && $0.fileSystem == target }) {
            fileSystems[target].instances.append(diskInstances.count)
            diskInstances.append(DiskInstance(rule: rule, fileSystem: target, path: path))
        }
        var info = stat()
        let isDirectory = stat(host, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        watch(host, mask: isDirectory ? Self.directoryMask : Self.fileMask, fileSystem: target)
        return resolution.missing.isEmpty
    }

    /// Places a watch and records which filesystem it stands for.
    private func watch(_ host: String, mask: UInt32, fileSystem: Int) {
        do {
            let wd = try inotify.addWatch(host, mask: mask | InotifyMask.dontFollow)
            if !(watchTargets[wd]?.contains(fileSystem) ?? false) { watchTargets[wd, default: []].append(fileSystem) }
        } catch {
            logger.warning(
                "Not watching '\(host)' for disk rules: \(error); its filesystem is checked at each recheck: only"
            )
        }
    }

    /// A mount point as alerts name it: a server path when it lies inside `--root`, else the host's.
    private func serverMount(_ mount: String) -> String {
        let root = settings.root.root
        guard !root.isEmpty else { return mount }
        if mount == root { return "/" }
        return mount.hasPrefix(root + "/") ? String(mount.dropFirst(root.count)) : mount
    }

    /// The mount table changed: every rule path is placed again on the filesystem it now lives on (one
    /// mounted over it, or the one below after an unmount). A condition on a filesystem that is still
    /// there keeps its state; one on a filesystem no rule path lives on any more resolves; every
    /// filesystem is checked at once.
    func remounted() {
        let oldSystems = fileSystems
        let oldInstances = diskInstances
        for wd in watchTargets.keys { inotify.removeWatch(wd) }
        watchTargets = [:]
        fileSystems = []
        diskInstances = []
        missingPaths = []
        setUpDisk(quiet: true)
        for old in oldInstances where old.firing {
            let device = oldSystems[old.fileSystem].usage.device
            if let carried = diskInstances.first(where: {
                $0.rule == old.rule && fileSystems[$0.fileSystem].usage.device == device
            }) {
                carried.firing = true
            } else if case .disk(let subject) = rules[old.rule].rule.subject {
                emitDisk(old, subject: subject, state: .resolved, on: oldSystems[old.fileSystem])
            }
        }
        for index in fileSystems.indices { check(index) }
    }

    /// Reads every pending inotify event; each one on a disk watch asks for a (coalesced) check.
    func drainEvents() {
        while source.readBatch({ record in
            if record.mask & InotifyMask.queueOverflow != 0 {
                counters.overflows.add(1, ordering: .relaxed)
                eventTime = record.readTime
                for index in fileSystems.indices { wrote(index, now: Clock.monotonicNanoseconds()) }
                return
            }
            guard let targets = watchTargets[record.watch] else { return }
            if record.mask & InotifyMask.watchRemoved != 0 {
                watchTargets[record.watch] = nil
                return
            }
            eventTime = record.readTime
            let deletion = record.mask & InotifyMask.nameGone != 0
            for index in targets {
                wrote(index, now: record.readTime)
                if deletion && !fileSystems[index].settleDue {
                    fileSystems[index].settleDue = true
                    schedule(.settle(index), at: record.readTime &+ settings.settleNanoseconds)
                }
            }
        }) {}
    }

    /// Something on filesystem `index` changed: checks it now, unless it was checked less than the
    /// coalescing interval ago; then one trailing check is scheduled for the end of the interval, so the
    /// last write of a burst is always judged.
    private func wrote(_ index: Int, now: UInt64) {
        let fileSystem = fileSystems[index]
        let next = fileSystem.lastCheck &+ settings.coalesceNanoseconds
        if fileSystem.lastCheck == 0 || now >= next {
            check(index)
        } else if !fileSystem.trailingDue {
            fileSystem.trailingDue = true
            schedule(.trailing(index), at: next)
        }
    }

    /// The slow timer of disk rule `rule`: checks its filesystems, retries its missing paths, and comes
    /// back after `recheck:`.
    func recheck(rule: Int, now: UInt64) {
        guard case .disk(let subject) = rules[rule].rule.subject else { return }
        var stillMissing: [(rule: Int, path: String)] = []
        for entry in missingPaths {
            if entry.rule == rule && !attach(rule: rule, path: entry.path, reportMissing: false) {
                stillMissing.append(entry)
            } else if entry.rule != rule {
                stillMissing.append(entry)
            }
        }
        missingPaths = stillMissing
        for instance in diskInstances where instance.rule == rule { check(instance.fileSystem) }
        schedule(.recheck(rule), at: now + UInt64(subject.recheckMilliseconds) * 1_000_000)
    }

    /// `statfs` of filesystem `index`, and each of its instances judged: fires above a threshold, resolves
    /// once below both.
    func check(_ index: Int) {
        let fileSystem = fileSystems[index]
        fileSystem.lastCheck = Clock.monotonicNanoseconds()
        switch fileSystem.usage.refreshed(fileSystem.statPath) {
        case .success(let usage):
            fileSystem.usage = usage
            fileSystem.reportedFailure = false
        case .failure(let error):
            if !fileSystem.reportedFailure {
                fileSystem.reportedFailure = true
                logger.warning(
                    "Failed to check the usage of '\(fileSystem.mount)' through '\(fileSystem.statPath)': \(error); retrying at the next change or recheck:"
                )
            }
            return
        }
        for instanceIndex in fileSystem.instances {
            let instance = diskInstances[instanceIndex]
            guard case .disk(let subject) = rules[instance.rule].rule.subject else { continue }
            let above =
                (subject.usagePercent.map { fileSystem.usage.usedPercent > $0 } ?? false)
                || (subject.inodesPercent.map { fileSystem.usage.inodesUsedPercent > $0 } ?? false)
            guard above != instance.firing else { continue }
            instance.firing = above
            emitDisk(instance, subject: subject, state: above ? .firing : .resolved)
        }
    }

    /// Sends a disk rule's alert for one filesystem.
    private func emitDisk(
        _ instance: DiskInstance,
        subject: DiskSubject,
        state: AlertState,
        on unmounted: FileSystem? = nil
    ) {
        let compiled = rules[instance.rule]
        let rule = compiled.rule
        let fileSystem = unmounted ?? fileSystems[instance.fileSystem]
        let usage = fileSystem.usage
        let host = settings.host
        let used = usage.totalBytes >= usage.freeBytes ? usage.totalBytes - usage.freeBytes : 0
        let usageText = Self.percentText(usage.usedPercent)
        let fields: (String) -> String? = { field in
            switch field {
            case "rule": rule.id
            case "severity": rule.severity.rawValue
            case "host": host
            case "mount": fileSystem.mount
            case "path": instance.path
            case "usage": usageText
            case "threshold": subject.usagePercent.map(Self.percentText) ?? "none"
            case "size": Self.bytesText(usage.totalBytes)
            case "used": Self.bytesText(used)
            case "available": Self.bytesText(usage.availableBytes)
            case "fstype": usage.type.isEmpty ? "unknown" : usage.type
            case "inodes": Self.percentText(usage.inodesUsedPercent)
            case "inodes_threshold": subject.inodesPercent.map(Self.percentText) ?? "none"
            default: nil
            }
        }
        let message = rule.renderMessage(resolved: state == .resolved, fields)
        var labels = compiled.labels
        labels["mount"] = fileSystem.mount
        labels["usage"] = usageText
        labels["size_bytes"] = String(usage.totalBytes)
        labels["available_bytes"] = String(usage.availableBytes)
        labels["fstype"] = fields("fstype")
        if subject.inodesPercent != nil { labels["inodes"] = fields("inodes") }
        outlet.sendRuleAlert(
            host: host,
            rule: rule.id,
            severity: rule.severity.rawValue,
            instance: "disk:\(fileSystem.mount)",
            state: state,
            version: "\(state.rawValue):\(Clock.monotonicNanoseconds())",
            kind: state == .firing ? "disk.full" : "disk.below",
            path: instance.path,
            message: message,
            labels: labels,
            sinkMask: compiled.sinkMask,
            eventTime: eventTime
        )
    }
}
