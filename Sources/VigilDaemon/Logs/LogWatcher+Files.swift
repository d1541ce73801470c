import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

extension LogWatcher {
    /// Where a newly opened file starts.
    enum OpenMode {
        /// Appeared while Vigil runs: from its start.
        case new
        /// Found at start-up: from the saved offset when the state knows it, else by the rules' `from:`
        /// (or from its start when it changed after the state was saved: written while Vigil was down).
        case startUp(LogState?)
        /// At a given offset (a rotated file found at start-up).
        case at(Int64)
    }

    static let directoryMask =
        InotifyMask.created | InotifyMask.movedTo | InotifyMask.movedFrom | InotifyMask.deleted
        | InotifyMask.selfDeleted | InotifyMask.selfMoved | InotifyMask.onlyDirectory
    static let fileMask = InotifyMask.modified | InotifyMask.attributesChanged

    // MARK: Start-up

    /// Places the watches, loads the state, finishes files rotated while Vigil was down, then reads every
    /// followed file from where it stopped.
    func startUp() {
        var state: LogState?
        switch store.load() {
        case .none: break
        case .state(let loaded): state = loaded
        case .unreadable(let message): logger.warning("\(message)")
        }
        if let state {
            ledger = AlertLedger(sinkPaths: settings.sinkPaths, sinkSizes: state.sinkSizes)
        }
        placeWatches(atStartUp: true, state: state)
        if let state { finishRotated(state) }
        // Read in the order of last change, so a rotated generation comes before its successor.
        let files = byIdentity.values.sorted { lhs, rhs in
            (lhs.detachedSince == nil ? 1 : 0, modificationTime(lhs)) < (
                rhs.detachedSince == nil ? 1 : 0, modificationTime(rhs)
            )
        }
        for file in files { read(file, eventTime: 0) }
        stateChanged = true
        saveState(now: Clock.monotonicNanoseconds())
    }

    private func modificationTime(_ file: LogFile) -> Int64 {
        var info = stat()
        guard fstat(file.descriptor, &info) == 0 else { return 0 }
        return Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }

    /// Watches every plan's directory (or, while it is missing, its nearest existing ancestor) and opens the
    /// files in it that the rules name.
    func placeWatches(atStartUp: Bool, state: LogState? = nil) {
        let now = Clock.monotonicNanoseconds()
        for index in plans.indices where plans[index].watch < 0 {
            let resolution: RootedPath.Resolution
            do {
                resolution = try settings.root.resolve(plans[index].serverDirectory)
            } catch {
                logger.warning(
                    "Log rules on '\(plans[index].serverDirectory)' (\(ruleLocations(plan: index))): \(error); fix the log: path, the rules on it wait for the directory"
                )
                continue
            }
            guard resolution.missing.isEmpty else {
                watchAncestor(settings.root.hostPath(resolution.existing))
                continue
            }
            let host = settings.root.hostPath(resolution.existing)
            do {
                let wd = try inotify.addWatch(host, mask: Self.directoryMask)
                plans[index].watch = wd
                plans[index].hostDirectory = host
                if !(watches[wd]?.plans.contains(index) ?? false) {
                    watches[wd, default: WatchTarget()].plans.append(index)
                }
                counters.watchDescriptors.store(UInt64(watches.count), ordering: .relaxed)
            } catch {
                logger.error(
                    "Failed to watch log directory '\(plans[index].serverDirectory)' (\(ruleLocations(plan: index))): \(error)"
                )
                continue
            }
            // Names already there (a directory that appeared may already hold files: scanned after the watch).
            for name in Self.names(in: host) {
                openIfRuled(plan: index, name: name, mode: atStartUp ? .startUp(state) : .new, now: now)
            }
        }
    }

    private func watchAncestor(_ host: String) {
        do {
            let wd = try inotify.addWatch(host, mask: Self.directoryMask)
            watches[wd, default: WatchTarget()].ancestor = true
        } catch {
            logger.warning("Failed to watch '\(host)' for a missing log directory to appear: \(error)")
        }
    }

    /// Where the rules of a plan are written (`file:line:col`, comma-separated), for messages about it.
    func ruleLocations(plan: Int) -> String {
        var seen = Set<Int>()
        return plans[plan].entries.compactMap { entry in
            seen.insert(entry.rule).inserted ? "\(rules[entry.rule].rule.location)" : nil
        }.joined(separator: ", ")
    }

    static func names(in directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The rules of `plan` that name `name`, as a bit set.
    func ruleBits(plan: Int, name: String) -> [UInt64] {
        var bits = [UInt64](repeating: 0, count: (rules.count + 63) / 64)
        var any = false
        for (pattern, rule) in plans[plan].entries {
            let hit: Bool
            switch pattern {
            case .exact(let exact): hit = exact == name
            case .glob(let glob): hit = fnmatch(glob, name, FNM_PERIOD) == 0
            }
            if hit {
                bits[rule >> 6] |= 1 << UInt64(rule & 63)
                any = true
            }
        }
        return any ? bits : []
    }

    /// Opens `name` in `plan`'s directory when a rule names it; a file already followed (a second name, a
    /// rename back) just gains the name.
    @discardableResult
    func openIfRuled(plan: Int, name: String, mode: OpenMode, now: UInt64) -> LogFile? {
        let bits = ruleBits(plan: plan, name: name)
        guard !bits.isEmpty, let directory = plans[plan].hostDirectory else { return nil }
        let serverPath = plans[plan].serverDirectory == "/" ? "/" + name : plans[plan].serverDirectory + "/" + name
        let hostName = directory == "/" ? "/" + name : directory + "/" + name
        // A log that is a symlink is followed to its target, resolved inside the root.
        guard let resolved = try? settings.root.resolve(serverPath), resolved.missing.isEmpty else { return nil }
        let target = settings.root.hostPath(resolved.existing)
        // Secrets are masked in place only in a file that is under its own name: through a symlink (which
        // anyone who can write the log directory may plant) vigil reads, alerts and copies, never writes.
        var info = stat()
        let isLink = lstat(hostName, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
        return open(
            target: target,
            serverPath: serverPath,
            hostName: hostName,
            bits: bits,
            mode: mode,
            now: now,
            writeAllowed: !isLink
        )
    }

    /// Opens a file (by its resolved host path) and starts following it.
    @discardableResult
    func open(
        target: String,
        serverPath: String,
        hostName: String?,
        bits: [UInt64],
        mode: OpenMode,
        now: UInt64,
        writeAllowed: Bool = true
    ) -> LogFile? {
        let sanitize = sanitizeSpecs(bits)
        let wantsWrite = writeAllowed && sanitize.contains { $0.inPlace }
        if !writeAllowed && sanitize.contains(where: { $0.inPlace }) {
            logger.warning(
                "Log '\(serverPath)' is a symlink: vigil follows it but does not mask secrets in it in place (a link planted in a log directory could point at another file); name the target in the rule to mask it. Alerts and redacted copies are still masked"
            )
        }
        // `target` is already resolved (symlinks followed inside the root): O_NOFOLLOW refuses a symlink
        // planted at the last component since, so a write open never lands on a file outside the logs.
        let flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW
        // A dry run opens read-only; `writable` then says the real run would mask in place.
        let opensWrite = wantsWrite && settings.dryRun == nil
        var fd = target.withCString { Glibc.open($0, (opensWrite ? O_RDWR : O_RDONLY) | flags) }
        var writable = wantsWrite
        if fd < 0 && opensWrite && (errno == EACCES || errno == EROFS || errno == EPERM) {
            logger.warning(
                "Cannot open log '\(serverPath)' for writing (\(String(cString: strerror(errno)))): secrets in it cannot be masked in place; alerts still mask them. Give vigil CAP_DAC_OVERRIDE or write access"
            )
            writable = false
            fd = target.withCString { Glibc.open($0, O_RDONLY | flags) }
        }
        guard fd >= 0 else {
            if errno != ENOENT {
                logger.warning(
                    "Failed to open log '\(serverPath)': \(String(cString: strerror(errno))); vigil needs read access (CAP_DAC_READ_SEARCH in vigil.service) and opens it again when it is re-created"
                )
            }
            return nil
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            Syscall.close(fd)
            logger.warning(
                "Log rule path '\(serverPath)' is not a regular file (a directory, FIFO or device); it is not followed. Point the rule's log: at files, or narrow its glob"
            )
            return nil
        }
        if writable && info.st_nlink > 1 {
            // A hard link is the file itself: one planted in a log directory could point at any file on the
            // filesystem. Never write through it.
            logger.warning(
                "Log '\(serverPath)' has \(info.st_nlink) hard links; vigil reads it but does not mask secrets in it in place (a link planted in a log directory could point at another file). Alerts and redacted copies are still masked"
            )
            writable = false
            let readOnly = target.withCString { Glibc.open($0, O_RDONLY | flags) }
            Syscall.close(fd)
            guard readOnly >= 0 else { return nil }
            fd = readOnly
        }
        let key = LogFile.Key(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        if let existing = byIdentity[key] {
            Syscall.close(fd)
            if let hostName {
                byName[hostName] = existing
                existing.hostName = hostName
                existing.path = serverPath
                existing.detachedSince = nil
            }
            for (i, word) in bits.enumerated() where i < existing.applies.count { existing.applies[i] |= word }
            return existing
        }
        let size = Int64(info.st_size)
        let fingerprint =
            LogFingerprint.read(fd, length: Int(min(size, Int64(LogFingerprint.span))))
            ?? LogFingerprint.compute(UnsafeRawBufferPointer(start: nil, count: 0))
        var offset: Int64 = 0
        switch mode {
        case .new: offset = 0
        case .at(let given): offset = min(given, size)
        case .startUp(let state):
            let saved = state?.files.first(where: { $0.device == key.device && $0.inode == key.inode })
            if let saved, saved.offset <= size,
                LogFingerprint.read(fd, length: saved.fingerprint.length) == saved.fingerprint
            {
                offset = saved.offset
            } else if let saved {
                // The same inode, but shorter than where vigil stopped, or other first bytes: truncated (or
                // replaced) while vigil was down. Read it whole, and say lines may be gone.
                outlet.sendVigilAlert(
                    host: settings.host,
                    rule: "vigil-log-truncated",
                    severity: "warning",
                    kind: "vigil.log_truncated",
                    message:
                        "Log '\(serverPath)' was truncated or replaced while vigil was stopped (it had \(saved.offset) bytes read, it has \(size)); reading it from the start. Lines written before the truncation and after byte \(saved.offset) may be lost",
                    version: "\(key.device):\(key.inode):\(saved.offset):\(size):startup",
                    sinkMask: allSinks,
                    eventTime: 0
                )
                offset = 0
            } else {
                let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
                let fromStart = indices(bits).contains { rules[$0].subject.start == .start }
                if fromStart || (state.map { modified > $0.savedAtNanoseconds } ?? false) {
                    offset = 0
                } else {
                    offset = Self.startOfLastLine(fd, size: size, limit: settings.lineLimit)
                }
            }
        }
        let file = LogFile(
            key: key,
            descriptor: fd,
            writable: writable,
            path: serverPath,
            hostName: hostName,
            offset: offset,
            fingerprint: fingerprint,
            applies: bits,
            now: now
        )
        if !sanitize.isEmpty { file.sanitizer = makeSanitizer(sanitize, for: file, state: mode) }
        do {
            let wd = try inotify.addWatch(target, mask: Self.fileMask)
            file.watch = wd
            watches[wd, default: WatchTarget()].file = file
        } catch {
            logger.warning("Failed to watch log '\(serverPath)' for appends: \(error); it is read every 100 ms instead")
        }
        byIdentity[key] = file
        if let hostName { byName[hostName] = file }
        counters.watchedFiles.store(UInt64(byIdentity.count), ordering: .relaxed)
        stateChanged = true
        if case .new = mode, !file.dirty {
            // Created after the watch: what is already there is read with this batch's other files, after
            // the ones marked before it (the old file of a rename rotation, written to before this one
            // existed, comes first).
            file.dirty = true
            dirtyFiles.append(file)
        }
        return file
    }

    func indices(_ bits: [UInt64]) -> [Int] {
        var out: [Int] = []
        for (word, value) in bits.enumerated() {
            var v = value
            while v != 0 {
                out.append(word * 64 + v.trailingZeroBitCount)
                v &= v - 1
            }
        }
        return out
    }

    private func sanitizeSpecs(_ bits: [UInt64]) -> [SanitizeSpec] {
        indices(bits).compactMap { rules[$0].sanitize }
    }

    private func makeSanitizer(_ specs: [SanitizeSpec], for file: LogFile, state mode: OpenMode) -> LogFile.Sanitizer {
        var detectors = Set<SecretDetector>()
        for spec in specs { detectors.formUnion(spec.detectors) }
        let sanitizer = LogFile.Sanitizer(
            masker: SecretMasker(detectors: detectors),
            inPlace: file.writable && specs.contains { $0.inPlace }
        )
        let custom = specs.flatMap(\.patterns)
        if !custom.isEmpty {
            do {
                let compiled = try CustomSecretPatterns(
                    patterns: custom,
                    cacheDirectory: settings.patternCacheDirectory
                )
                Self.report(compiled.databaseOrigin, what: "the sanitize patterns", logger: logger)
                sanitizer.custom = (compiled, compiled.makeScratch())
            } catch {
                // `vigil check` and start-up report these; a file still gets the built-in detectors.
                logger.error("\(error)")
            }
        }
        if let directory = specs.compactMap(\.copyDirectory).first {
            let name = file.path.split(separator: "/").last.map(String.init) ?? "log"
            let hostDirectory = settings.root.hostPath(directory)
            let copyPath = hostDirectory + "/" + name
            if settings.dryRun != nil {
                // Named in the dry run's reports; never created or written.
                sanitizer.copyPath = copyPath
                return sanitizer
            }
            _ = FileTree.makeDirectories(hostDirectory, mode: 0o750)
            let fd = copyPath.withCString {
                Glibc.open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o640)
            }
            if fd < 0 {
                logger.error(
                    "Failed to open the redacted copy '\(copyPath)' of log '\(file.path)': \(String(cString: strerror(errno))); fix copy_to: or the directory's permissions"
                )
            } else {
                var info = stat()
                var size: Int64 = fstat(fd, &info) == 0 ? Int64(info.st_size) : 0
                // After a crash, lines after the saved offset are copied again: cut the copy back to the size
                // it had at that offset first, so none appears twice.
                if case .startUp(let state) = mode,
                    let saved = state?.files.first(where: { $0.device == file.key.device && $0.inode == file.key.inode }
                    ),
                    saved.copyPath == copyPath, saved.offset == file.offset, saved.copySize < size,
                    ftruncate(fd, off_t(saved.copySize)) == 0
                {
                    size = saved.copySize
                }
                sanitizer.copyDescriptor = fd
                sanitizer.copyPath = copyPath
                sanitizer.copySize = size
            }
        }
        return sanitizer
    }

    /// The offset just after the last newline before `size` (within `limit` bytes), so a tail-from-the-end
    /// start does not begin mid-line.
    static func startOfLastLine(_ fd: CInt, size: Int64, limit: Int) -> Int64 {
        guard size > 0 else { return 0 }
        let count = Int(min(size, Int64(limit)))
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(size - Int64(count))) }
        guard n == count else { return size }
        if let last = bytes.lastIndex(of: UInt8(ascii: "\n")) { return size - Int64(count) + Int64(last) + 1 }
        return size - Int64(count)
    }

    // MARK: Rotation

    /// A followed file lost its name (renamed away, deleted): read it to its end now, before the file that
    /// takes the name, and keep it open while a writer may still append to it.
    func detach(_ file: LogFile, now: UInt64) {
        if file.detachedSince == nil { file.detachedSince = now }
        if let hostName = file.hostName, byName[hostName] === file { byName[hostName] = nil }
        file.hostName = nil
        file.lastGrowth = now
        read(file, eventTime: 0)
        stateChanged = true
    }

    /// Stops following a detached file that stayed quiet for the linger time. A last line without its
    /// newline is processed as it is: the writer is gone.
    func retire(_ file: LogFile) {
        read(file, eventTime: 0, final: true)
        if file.watch >= 0 {
            watches[file.watch]?.file = nil
            if let target = watches[file.watch], target.plans.isEmpty, !target.ancestor {
                watches[file.watch] = nil
                inotify.removeWatch(file.watch)
            }
        }
        byIdentity[file.key] = nil
        file.close()
        counters.watchedFiles.store(UInt64(byIdentity.count), ordering: .relaxed)
        stateChanged = true
    }

    /// After lost inotify events: every name is checked against the file it should be, every file read.
    func rescan() {
        let now = Clock.monotonicNanoseconds()
        for (hostName, file) in byName {
            var info = stat()
            if stat(hostName, &info) != 0 || UInt64(info.st_dev) != file.key.device
                || UInt64(info.st_ino) != file.key.inode
            {
                detach(file, now: now)
            }
        }
        for index in plans.indices {
            guard let directory = plans[index].hostDirectory else { continue }
            for name in Self.names(in: directory) where byName[directory + "/" + name] == nil {
                openIfRuled(plan: index, name: name, mode: .new, now: now)
            }
        }
        for file in Array(byIdentity.values) where !file.dirty {
            file.dirty = true
            dirtyFiles.append(file)
        }
    }

    /// At start-up: files the state knows that no longer have their name (rotated while Vigil was down) are
    /// found by identity in the watched directories and finished from the saved offset; rotated generations
    /// Vigil never saw (`app.log.1` changed after the state was saved) are read whole. What cannot be found
    /// is alerted: its lines after the saved offset may be lost.
    func finishRotated(_ state: LogState) {
        let now = Clock.monotonicNanoseconds()
        var missing = state.files.filter { byIdentity[LogFile.Key(device: $0.device, inode: $0.inode)] == nil }
        // Names whose file is no longer under them: rotated by rename while vigil was down.
        let renamedAway = Set(missing.map(\.path))
        for index in plans.indices {
            guard let directory = plans[index].hostDirectory else { continue }
            let followedNames = Set(byName.keys)
            for name in Self.names(in: directory) {
                let hostName = directory == "/" ? "/" + name : directory + "/" + name
                guard !followedNames.contains(hostName) else { continue }
                var info = stat()
                guard lstat(hostName, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
                let key = LogFile.Key(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
                guard byIdentity[key] == nil else { continue }
                let serverPath = plans[index].serverDirectory + "/" + name
                if let at = missing.firstIndex(where: { $0.device == key.device && $0.inode == key.inode }) {
                    let saved = missing.remove(at: at)
                    let bits = generationRules(plan: index, name: name, savedPath: saved.path, renamedAway: nil)
                    guard !bits.isEmpty else { continue }
                    if let file = open(
                        target: hostName,
                        serverPath: serverPath,
                        hostName: nil,
                        bits: bits,
                        mode: .at(saved.offset),
                        now: now
                    ) {
                        if LogFingerprint.read(file.descriptor, length: saved.fingerprint.length) != saved.fingerprint {
                            file.offset = 0
                        }
                        file.detachedSince = now
                    }
                    continue
                }
                // A generation never seen: only where the name's file was renamed away while vigil was down
                // (after copy-and-truncate the name keeps its file, and the other files are copies of lines
                // already read).
                let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
                guard modified > state.savedAtNanoseconds, !Self.isCompressed(name) else { continue }
                let bits = generationRules(plan: index, name: name, savedPath: nil, renamedAway: renamedAway)
                guard !bits.isEmpty else { continue }
                if let file = open(
                    target: hostName,
                    serverPath: serverPath,
                    hostName: nil,
                    bits: bits,
                    mode: .at(0),
                    now: now
                ) {
                    file.detachedSince = now
                }
            }
        }
        for lost in missing {
            outlet.sendVigilAlert(
                host: settings.host,
                rule: "vigil-log-rotated-away",
                severity: "warning",
                kind: "vigil.log_lines_unread",
                message:
                    "Log '\(lost.path)' was rotated or removed while vigil was stopped and is no longer in its directory (compressed or moved elsewhere); lines after byte \(lost.offset) of it were not read",
                version: "\(lost.device):\(lost.inode):\(lost.offset)",
                sinkMask: allSinks,
                eventTime: 0
            )
        }
    }

    /// Rules of a rotated generation: those of the name it came from (`app.log` for `app.log.1`,
    /// `app.log-20261127`), found by stripping a suffix after a dot, dash or underscore. With `renamedAway`,
    /// only a name in it counts.
    private func generationRules(plan: Int, name: String, savedPath: String?, renamedAway: Set<String>?) -> [UInt64] {
        if let savedPath, let base = savedPath.split(separator: "/").last {
            let bits = ruleBits(plan: plan, name: String(base))
            if !bits.isEmpty { return bits }
        }
        let directory = plans[plan].serverDirectory
        var candidate = Substring(name)
        while let cut = candidate.lastIndex(where: { $0 == "." || $0 == "-" || $0 == "_" }), cut > candidate.startIndex
        {
            candidate = candidate[..<cut]
            let base = String(candidate)
            if let renamedAway, !renamedAway.contains(directory == "/" ? "/" + base : directory + "/" + base) {
                continue
            }
            let bits = ruleBits(plan: plan, name: base)
            if !bits.isEmpty { return bits }
        }
        return []
    }

    static func isCompressed(_ name: String) -> Bool {
        [".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z", ".zip"].contains { name.hasSuffix($0) }
    }
}
