import Logging
import Synchronization
import SystemPackage
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

extension RotationWatcher {
    /// A step that failed: which, the errno (0 for a refusal), and the whole message (subject, cause, fix).
    struct Failure: Error {
        let step: String
        let errno: Int32
        let message: String
    }

    // MARK: Start-up and watches

    /// Places the watches; rotates what is over size or past a boundary; compresses what waits; sweeps.
    func startUp() {
        let now = Clock.realtime().seconds
        let monotonic = Clock.monotonicNanoseconds()
        for index in rules.indices {
            guard let interval = rules[index].subject.interval else { continue }
            if let period = settings.boundaryOverrideNanoseconds {
                rules[index].nextOverride = monotonic + period
            } else {
                rules[index].nextBoundary = RotationSchedule.nextBoundary(after: now, interval, zone: settings.zone)
            }
        }
        if rules.contains(where: { $0.subject.sweep != nil }) {
            nextSweep = RotationSchedule.nextBoundary(after: now, .daily, zone: settings.zone)
        }
        placeWatches(startUp: true)
        finishBatch()
        // Rotations left uncompressed (a full disk, a full queue, vigil stopped mid-way) and the sweep, for
        // the rules that did not rotate just now (those did it in finishBatch).
        for plan in plans.indices where plans[plan].descriptor >= 0 {
            for rule in Set(plans[plan].entries.map(\.rule)).sorted() {
                maintain(rule: rule, plan: plan, retention: false, compress: true, sweep: true)
            }
        }
    }

    /// Opens and watches every plan directory that is not watched yet (a missing one: its nearest existing
    /// ancestor, until it appears), then checks the files in each newly watched directory.
    func placeWatches(startUp: Bool = false) {
        // A directory created between a failed open and the ancestor's new watch sends no event to any
        // watch: go round again until every missing directory is waited on by an ancestor that still
        // lacks the next component (at most once per component).
        var rounds = 0
        repeat {
            appearedMeanwhile = false
            placeWatchesOnce(startUp: startUp)
            rounds += 1
        } while appearedMeanwhile && rounds < 64
    }

    private func placeWatchesOnce(startUp: Bool) {
        // Watches on ancestors of missing directories are placed again below for those still missing.
        for wd in ancestorWatches { inotify.removeWatch(wd) }
        ancestorWatches.removeAll()
        for index in plans.indices where plans[index].descriptor < 0 {
            let directory = plans[index].serverDirectory
            let fd: CInt
            do {
                fd = try SafeDirectory.open(RootedPath.relative(directory), beneath: rootDescriptor)
            } catch {
                if error != .noSuchFileOrDirectory { reportDirectoryProblem(plan: index, error) }
                // Its nearest ancestor that opens safely: a directory created (or a link replaced by one)
                // there brings the plan back.
                watchAncestor(of: directory)
                continue
            }
            do {
                // The watch goes on the directory just opened (through its descriptor), not on a path that
                // could be swapped in between.
                let wd = try inotify.addWatch("/proc/self/fd/\(fd)", mask: Self.directoryMask)
                plans[index].descriptor = fd
                plans[index].watch = wd
                watchedPlans[wd, default: []].append(index)
                failures["dir:\(directory)"] = nil
            } catch {
                Syscall.close(fd)
                logger.error(
                    "Failed to watch log directory '\(directory)/' for rotate rules (\(ruleLocations(plan: index))): \(error)"
                )
                continue
            }
            scan(plan: index, startUp: startUp)
        }
    }

    private func watchAncestor(of directory: String) {
        var components = directory.split(separator: "/").map(String.init)
        logger.debug("Rotation directory '\(directory)/' cannot be opened yet; watching its nearest ancestor")
        while !components.isEmpty {
            components.removeLast()
            let relative = components.isEmpty ? "." : components.joined(separator: "/")
            guard let fd = try? SafeDirectory.open(relative, beneath: rootDescriptor) else { continue }
            defer { Syscall.close(fd) }
            if let wd = try? inotify.addWatch("/proc/self/fd/\(fd)", mask: Self.ancestorMask) {
                ancestorWatches.insert(wd)
            }
            // The next component may have been created before the watch was in place.
            let next = directory.split(separator: "/").map(String.init)[components.count]
            var info = stat()
            if fstatat(fd, next, &info, AT_SYMLINK_NOFOLLOW) == 0 { appearedMeanwhile = true }
            return
        }
    }

    /// A rule directory that cannot be opened safely (a symlink on the way, not a directory): alerted once.
    private func reportDirectoryProblem(plan index: Int, _ error: Errno) {
        let directory = plans[index].serverDirectory
        let cause: String
        switch error {
        case .tooManySymbolicLinkLevels, .improperLink:
            cause =
                "a component of the path is a symbolic link (or leads outside the root), which vigil never follows on the way to a directory it rotates in; name the real directory in rotate:"
        case .notDirectory:
            cause = "a component of the path is not a directory; fix the rotate: path"
        case .permissionDenied:
            cause = "permission denied; vigil needs CAP_DAC_READ_SEARCH"
        default:
            cause = "\(error)"
        }
        let key = "dir:\(directory)"
        guard failures[key]?.signature != "\(error.rawValue)" else { return }
        if error == .permissionDenied || error == .notPermitted {
            // A missing capability: said at start-up with each rule's position (dropCapabilities) and here,
            // in the log, like the log watcher's directories; not an alert about the host.
            failures[key] = FailureState(signature: "\(error.rawValue)", nextAttempt: 0, backoff: 0, firstSeen: 0)
            logger.error(
                "Failed to open log directory '\(directory)/' for rotate rules (\(ruleLocations(plan: index))): \(cause); its logs are not rotated"
            )
            return
        }
        failures[key] = FailureState(
            signature: "\(error.rawValue)",
            nextAttempt: 0,
            backoff: 0,
            firstSeen: Clock.realtime().seconds
        )
        for rule in Set(plans[index].entries.map(\.rule)).sorted() {
            emitFailure(
                rule: rule,
                path: directory,
                Failure(
                    step: "directory",
                    errno: error.rawValue,
                    message: "Failed to open log directory '\(directory)/' for rotation: \(cause)"
                ),
                version: "\(key):\(error.rawValue):\(Clock.realtime().seconds)"
            )
        }
    }

    /// Where the rules of a plan are written, for messages.
    func ruleLocations(plan: Int) -> String {
        var seen = Set<Int>()
        return plans[plan].entries.compactMap { entry in
            seen.insert(entry.rule).inserted ? "\(rules[entry.rule].rule.location)" : nil
        }.joined(separator: ", ")
    }

    /// Checks every name in the plan's directory (start-up, a directory that appeared, an overflow).
    func scan(plan: Int, startUp: Bool) {
        let names: [String]
        do {
            names = try SafeDirectory.names(in: plans[plan].descriptor)
        } catch {
            logger.error("Failed to list '\(plans[plan].serverDirectory)/' for rotation: \(error)")
            return
        }
        for name in names.sorted() { check(plan: plan, name: name, startUp: startUp) }
    }

    // MARK: Which rule, and whether it is due

    /// The rule that rotates `name` in `plan` (the first, when several name it), or nil: rotations
    /// themselves (`app.log-20250413`, `….gz`) and Vigil's temporary files never are logs.
    func ruleFor(plan: Int, name: String) -> Int? {
        if name.hasPrefix(".vigil-gzip-") { return nil }
        var found: Int?
        for (pattern, rule) in plans[plan].entries where Self.matches(pattern, name) {
            let isRotation = rules[rule].names.parse(name) { base in Self.matches(pattern, base) } != nil
            if isRotation { continue }
            if let first = found, first != rule {
                let key = "\(plans[plan].serverDirectory)/\(name)"
                if overlapWarned.insert(key).inserted {
                    logger.warning(
                        "Log '\(key)' is named by rotate rules '\(rules[first].rule.id)' and '\(rules[rule].rule.id)'; only the first rotates it. Narrow one of the paths"
                    )
                }
                continue
            }
            found = rule
        }
        return found
    }

    static func matches(_ pattern: NamePattern, _ name: String) -> Bool {
        switch pattern {
        case .exact(let exact): exact == name
        case .glob(let glob): fnmatch(glob, name, FNM_PERIOD) == 0
        }
    }

    func serverPath(plan: Int, name: String) -> String {
        let directory = plans[plan].serverDirectory
        return directory == "/" ? "/" + name : directory + "/" + name
    }

    func failureKey(plan: Int, name: String) -> String { serverPath(plan: plan, name: name) }

    /// A name was modified or appeared (or start-up): rotate it when it is over its size, or (at start-up)
    /// when an `every:` boundary passed while Vigil was not running.
    func check(plan: Int, name: String, startUp: Bool = false) {
        guard let rule = ruleFor(plan: plan, name: name) else { return }
        let subject = rules[rule].subject
        let info: FileIdentity
        do {
            info = try SafeDirectory.status(name, in: plans[plan].descriptor)
        } catch {
            return  // gone already
        }
        if info.mode & S_IFMT == S_IFLNK {
            // Never followed: refused (and alerted once) by the rotation itself.
            rotateIfDue(plan: plan, name: name, rule: rule, reason: .size)
            return
        }
        if let maximum = subject.maximumBytes, info.size >= 0, UInt64(info.size) >= maximum, info.size > 0 {
            rotateIfDue(plan: plan, name: name, rule: rule, reason: .size)
            return
        }
        // Under its size again (a dry run reports the next crossing anew).
        settings.dryRun?.forget("rotate:" + serverPath(plan: plan, name: name))
        guard startUp, let interval = subject.interval, settings.boundaryOverrideNanoseconds == nil else { return }
        guard info.mode & S_IFMT == S_IFREG, info.size > 0 || subject.rotateEmpty else { return }
        let now = Clock.realtime().seconds
        let boundary = RotationSchedule.lastBoundary(atOrBefore: now, interval, zone: settings.zone)
        let boundaryNanoseconds = boundary * 1_000_000_000
        var passed = info.modificationNanoseconds < boundaryNanoseconds
        if !passed && !subject.copyTruncate,
            let born = try? SafeDirectory.birthTime(name, in: plans[plan].descriptor)
        {
            passed = born < boundaryNanoseconds
        }
        if passed { rotateIfDue(plan: plan, name: name, rule: rule, reason: .startup(interval)) }
    }

    /// Rotates unless the file failed lately and its backoff has not passed (a boundary always tries).
    func rotateIfDue(plan: Int, name: String, rule: Int, reason: Reason) {
        let key = failureKey(plan: plan, name: name)
        if case .size = reason, let state = failures[key], Clock.monotonicNanoseconds() < state.nextAttempt {
            return
        }
        do {
            let rotation = try rotate(plan: plan, name: name, rule: rule, reason: reason)
            guard let rotation else { return }
            failures[key] = nil
            counters.logRotations.add(1, ordering: .relaxed)
            batch.append(rotation)
        } catch {
            noteFailure(key: key, rule: rule, path: key, error)
        }
    }

    /// Records a failed rotation: alerted when its cause differs from the last one, retried after a backoff.
    func noteFailure(key: String, rule: Int, path: String, _ failure: Failure) {
        counters.logRotationFailures.add(1, ordering: .relaxed)
        let now = Clock.monotonicNanoseconds()
        let signature = "\(failure.step):\(failure.errno)"
        var state =
            failures[key]
            ?? FailureState(signature: "", nextAttempt: 0, backoff: 0, firstSeen: Clock.realtime().seconds)
        let repeated = state.signature == signature
        state.backoff =
            repeated ? min(state.backoff * 2, settings.maximumRetryNanoseconds) : settings.retryNanoseconds
        state.nextAttempt = now + state.backoff
        if !repeated {
            state.signature = signature
            state.firstSeen = Clock.realtime().seconds
        }
        failures[key] = state
        if repeated {
            logger.debug("Rotation of '\(path)' failed again: \(failure.message)")
            return
        }
        emitFailure(rule: rule, path: path, failure, version: "\(signature):\(state.firstSeen)")
    }

    // MARK: Rotating one file

    /// Renames (or copies and truncates) one log into its rotation directory and creates the new file.
    /// Returns nil when there is nothing to do after all (gone, shrunk, empty); throws a `Failure` with the
    /// whole message otherwise.
    func rotate(plan: Int, name: String, rule index: Int, reason: Reason) throws(Failure) -> Rotation? {
        let started = Clock.monotonicNanoseconds()
        let rule = rules[index]
        let subject = rule.subject
        let directory = plans[plan].descriptor
        let path = serverPath(plan: plan, name: name)
        let parent = plans[plan].serverDirectory == "/" ? "/" : plans[plan].serverDirectory + "/"

        // 1. The log itself, never through a symlink, and only a file that is nothing but this log.
        let log: CInt
        do {
            log = try SafeDirectory.openFile(
                name,
                in: directory,
                flags: subject.copyTruncate && settings.dryRun == nil ? O_RDWR : O_RDONLY
            )
        } catch {
            switch error {
            case .noSuchFileOrDirectory: return nil
            case .tooManySymbolicLinkLevels:
                throw Failure(
                    step: "open",
                    errno: error.rawValue,
                    message:
                        "Refused to rotate '\(path)': it is a symbolic link ('\(error)'); vigil never renames, creates, copies or compresses through a link, which anyone who can write '\(parent)' could plant to point at another file. Name the file it points to in rotate:"
                )
            case .permissionDenied, .notPermitted:
                throw Failure(
                    step: "open",
                    errno: error.rawValue,
                    message:
                        "Failed to rotate '\(path)': opening it returned '\(error)'; vigil needs CAP_DAC_OVERRIDE (or CAP_DAC_READ_SEARCH without copytruncate) in vigil.service"
                )
            default:
                throw Failure(
                    step: "open",
                    errno: error.rawValue,
                    message: "Failed to rotate '\(path)': opening it returned '\(error)'"
                )
            }
        }
        defer { Syscall.close(log) }
        let info: FileIdentity
        do { info = try SafeDirectory.status(of: log) } catch {
            throw Failure(
                step: "stat",
                errno: error.rawValue,
                message: "Failed to rotate '\(path)': fstat returned '\(error)'"
            )
        }
        guard info.mode & S_IFMT == S_IFREG else {
            throw Failure(
                step: "type",
                errno: 0,
                message:
                    "Refused to rotate '\(path)': it is not a regular file (a FIFO, device or socket); point rotate: at log files, or narrow its glob"
            )
        }
        guard info.links == 1 else {
            throw Failure(
                step: "links",
                errno: 0,
                message:
                    "Refused to rotate '\(path)': it has \(info.links) hard links, and a hard link planted in '\(parent)' could be any file of the filesystem (its content would be archived with the log's owner); remove the other links"
            )
        }
        switch reason {
        case .size:
            guard let maximum = subject.maximumBytes, info.size > 0, UInt64(info.size) >= maximum else { return nil }
        case .age, .startup:
            guard info.size > 0 || subject.rotateEmpty else { return nil }
        }

        if let dryRun = settings.dryRun {
            // Once per size crossing (the log stays over it); every boundary of `every:` once.
            if case .size = reason, !dryRun.isNew("rotate:" + path, "\(info.device):\(info.inode)") { return nil }
            reportDryRun(plan: plan, name: name, rule: index, reason: reason, info: info)
            return nil
        }

        // 2. The rotation directory (olddir:, created when missing), on the same filesystem.
        let archive = try openArchive(rule: index, plan: plan, logPath: path)
        defer { Syscall.close(archive.descriptor) }

        // 3. The new name: the date, then .1, .2… while taken (by a rotation or its .gz); never replaced.
        let suffix = LocalClock.format(Clock.realtime().seconds, subject.dateFormat)
        var rotatedName = ""
        var counter = 0
        while true {
            guard counter < 1000 else {
                throw Failure(
                    step: "name",
                    errno: EEXIST,
                    message:
                        "Failed to rotate '\(path)': '\(archive.path)\(name)\(suffix)' and its counters up to .999 are all taken; remove old rotations or lower keep:"
                )
            }
            let candidate = RotationNames.name(base: name, suffix: suffix, counter: counter)
            counter += 1
            if (try? SafeDirectory.status(candidate, in: archive.descriptor)) != nil { continue }
            if (try? SafeDirectory.status(candidate + ".gz", in: archive.descriptor)) != nil { continue }
            if subject.copyTruncate {
                guard try copy(log, info: info, to: candidate, archive: archive, path: path) else { continue }
            } else {
                do {
                    try SafeDirectory.renameWithoutReplacing(name, in: directory, to: candidate, in: archive.descriptor)
                } catch {
                    if error == .fileExists { continue }
                    throw renameFailure(error, path: path, archive: archive.path, candidate: candidate)
                }
            }
            rotatedName = candidate
            break
        }
        let rotatedPath = archive.path + rotatedName

        // 4. The name now holds the file that was opened (else something was swapped in between: leave it).
        if !subject.copyTruncate {
            guard let moved = try? SafeDirectory.status(rotatedName, in: archive.descriptor), moved.isSameFile(as: info)
            else {
                throw Failure(
                    step: "verify",
                    errno: 0,
                    message:
                        "Rotation of '\(path)' moved another file than the one checked: '\(path)' was replaced between the check and the rename, and '\(rotatedPath)' is not compressed or deleted by vigil. Find out who writes '\(parent)'"
                )
            }
        }
        var rotation = Rotation(
            rule: index,
            plan: plan,
            path: path,
            rotatedPath: rotatedPath,
            rotatedName: rotatedName,
            archivePath: archive.path,
            archiveKey: archive.key,
            bytes: UInt64(max(info.size, 0)),
            reason: reason,
            identity: info,
            started: started
        )

        // 5. create: the new, empty log under the old name, through the directory descriptor.
        if let create = rule.create, !subject.copyTruncate {
            rotation.outcome.append(createLog(name, in: directory, like: info, create, path: path, rule: index))
        } else if subject.copyTruncate {
            rotation.outcome.append("copied and truncated in place")
        }
        rotation.nanoseconds = Clock.monotonicNanoseconds() &- started
        return rotation
    }

    /// A rotation directory: its descriptor (the caller closes it), server path ending in `/`, and key.
    struct Archive {
        let descriptor: CInt
        let path: String
        /// `device:inode`: names the directory in compression bookkeeping.
        let key: String
    }

    /// Opens (creating when missing) the rotation directory of `rule` for logs of `plan`: `olddir:`, or the
    /// log's own directory.
    func openArchive(rule index: Int, plan: Int, logPath: String) throws(Failure) -> Archive {
        // Created when missing: a rotation is about to move a log into it.
        guard let archive = try openArchive(rule: index, plan: plan, logPath: logPath, create: true) else {
            preconditionFailure("openArchive(create: true) returned nil")
        }
        return archive
    }

    /// As above; with `create: false` a missing `olddir:` is nil (nothing to maintain in it yet).
    func openArchive(rule index: Int, plan: Int, logPath: String, create: Bool) throws(Failure) -> Archive? {
        let rule = rules[index]
        let logDirectory = plans[plan].serverDirectory
        guard let written = rule.oldDirectory else {
            let fd: CInt
            do { fd = try SafeDirectory.open(".", beneath: plans[plan].descriptor) } catch {
                throw Failure(
                    step: "directory",
                    errno: error.rawValue,
                    message: "Failed to rotate '\(logPath)': opening its directory again returned '\(error)'"
                )
            }
            return Archive(descriptor: fd, path: logDirectory == "/" ? "/" : logDirectory + "/", key: Self.key(fd))
        }
        let absolute = written.hasPrefix("/") ? written : (logDirectory == "/" ? "" : logDirectory) + "/" + written
        let shown = absolute.hasSuffix("/") ? absolute : absolute + "/"
        let attributes = rule.oldDirectoryAttributes
        let opened: (descriptor: CInt, created: Bool)
        do throws(Errno) {
            if !create {
                do {
                    opened = (try SafeDirectory.open(RootedPath.relative(absolute), beneath: rootDescriptor), false)
                } catch {
                    if error == .noSuchFileOrDirectory { return nil }
                    throw error
                }
            } else {
                opened = try SafeDirectory.make(
                    RootedPath.relative(absolute),
                    beneath: rootDescriptor,
                    mode: attributes.mode ?? 0o750,
                    owner: attributes.owner,
                    group: attributes.group
                )
            }
        } catch {
            let cause: String
            switch error {
            case .tooManySymbolicLinkLevels, .improperLink:
                cause =
                    "it (or a directory on the way) is a symbolic link ('\(error)'); vigil never follows links to the directory it moves logs into, where anyone who can write its parent could point one at /etc. Remove the link or name the real directory in olddir:"
            case .notDirectory:
                cause = "a component of the path is not a directory ('\(error)'); fix olddir:"
            case .permissionDenied, .notPermitted:
                cause = "'\(error)'; vigil needs CAP_DAC_OVERRIDE (and CAP_CHOWN to give it its owner)"
            case .noSpace:
                cause = "the filesystem is full ('\(error)'); free space"
            default:
                cause = "'\(error)'"
            }
            throw Failure(
                step: "olddir",
                errno: error.rawValue,
                message: "Failed to rotate '\(logPath)': cannot open or create olddir '\(shown)': \(cause)"
            )
        }
        if opened.created {
            logger.notice(
                "Created olddir '\(shown)' (mode \(String(attributes.mode ?? 0o750, radix: 8))) for rotate rule '\(rule.rule.id)'"
            )
        }
        return Archive(descriptor: opened.descriptor, path: shown, key: Self.key(opened.descriptor))
    }

    static func key(_ descriptor: CInt) -> String {
        guard let info = try? SafeDirectory.status(of: descriptor) else { return "fd\(descriptor)" }
        return "\(info.device):\(info.inode)"
    }

    private func renameFailure(_ error: Errno, path: String, archive: String, candidate: String) -> Failure {
        let fix: String
        switch error {
        case .improperLink:
            fix =
                "olddir '\(archive)' is on another filesystem than the log; a rename cannot cross filesystems and vigil never copies instead (the log tailer follows a renamed file, not a copy). Put olddir: on the log's filesystem"
        case .invalidArgument:
            fix =
                "this filesystem does not support renames that refuse to replace (RENAME_NOREPLACE); vigil never risks replacing a rotation. Move the logs to ext4, xfs, btrfs or tmpfs, or use copytruncate: true"
        case .permissionDenied, .notPermitted:
            fix = "vigil needs CAP_DAC_OVERRIDE in vigil.service, and the directories must not be immutable"
        case .noSpace:
            fix = "the filesystem is full; free space"
        case .readOnlyFileSystem:
            fix = "the filesystem is read-only"
        default:
            fix = "check the directories"
        }
        return Failure(
            step: "rename",
            errno: error.rawValue,
            message: "Failed to rotate '\(path)' to '\(archive)\(candidate)': renameat2 returned '\(error)'; \(fix)"
        )
    }

    /// copytruncate: copies the log into a new file `candidate` in the archive (never replacing one), makes the
    /// copy durable and gives it the log's owner, mode and times, then truncates the log. False when the name
    /// was taken (the caller tries the next counter).
    private func copy(
        _ log: CInt,
        info: FileIdentity,
        to candidate: String,
        archive: Archive,
        path: String
    ) throws(Failure) -> Bool {
        let output: CInt
        do { output = try SafeDirectory.createFile(candidate, in: archive.descriptor) } catch {
            if error == .fileExists { return false }
            throw Failure(
                step: "copy",
                errno: error.rawValue,
                message:
                    "Failed to rotate '\(path)': creating the copy '\(archive.path)\(candidate)' returned '\(error)'; the log is untouched"
            )
        }
        defer { Syscall.close(output) }
        func undo() {
            if let created = try? SafeDirectory.status(of: output),
                let named = try? SafeDirectory.status(candidate, in: archive.descriptor), named.isSameFile(as: created)
            {
                try? SafeDirectory.remove(candidate, in: archive.descriptor)
            }
        }
        do {
            _ = try SafeDirectory.copy(from: log, to: output, buffer: copyBuffer)
        } catch {
            undo()
            let fix = error == .noSpace ? "free space on the filesystem of '\(archive.path)'; " : ""
            throw Failure(
                step: "copy",
                errno: error.rawValue,
                message:
                    "Failed to rotate '\(path)' by copying it to '\(archive.path)\(candidate)': '\(error)'; \(fix)the log is untouched and the partial copy was removed"
            )
        }
        // The copy keeps the log's mtime (the time of its last line), as a rename would: retention and the
        // sweep order and age rotations by it.
        let modified = timespec(
            tv_sec: Int(info.modificationNanoseconds / 1_000_000_000),
            tv_nsec: Int(info.modificationNanoseconds % 1_000_000_000)
        )
        var times = [modified, modified]
        guard fsync(output) == 0, fchown(output, info.owner, info.group) == 0,
            fchmod(output, mode_t(info.mode & 0o7777)) == 0, futimens(output, &times) == 0
        else {
            let code = errno
            undo()
            throw Failure(
                step: "copy",
                errno: code,
                message:
                    "Failed to rotate '\(path)' by copying it to '\(archive.path)\(candidate)': finishing the copy returned '\(String(cString: strerror(code)))'; the log is untouched and the copy was removed"
            )
        }
        guard ftruncate(log, 0) == 0 else {
            let code = errno
            throw Failure(
                step: "truncate",
                errno: code,
                message:
                    "Rotated '\(path)' by copying it to '\(archive.path)\(candidate)', but truncating it returned '\(String(cString: strerror(code)))'; its lines are now in both files"
            )
        }
        return true
    }

    /// `create:`: a new, empty log under the old name (`O_CREAT | O_EXCL | O_NOFOLLOW` through the directory
    /// descriptor) with the rule's mode and owner, else the old file's. Returns the outcome text; a failure is
    /// alerted (the rotation itself stands).
    private func createLog(
        _ name: String,
        in directory: CInt,
        like old: FileIdentity,
        _ create: Attributes,
        path: String,
        rule: Int
    ) -> String {
        let mode = create.mode ?? (old.mode & 0o7777)
        let owner = create.owner ?? old.owner
        let group = create.group ?? old.group
        let fd: CInt
        do { fd = try SafeDirectory.createFile(name, in: directory) } catch {
            if error == .fileExists { return "its writer re-created it first" }
            emitFailure(
                rule: rule,
                path: path,
                Failure(
                    step: "create",
                    errno: error.rawValue,
                    message:
                        "Rotated '\(path)', but creating the new empty log returned '\(error)'; its writer creates it when it reopens, or create it with mode \(String(mode, radix: 8))"
                ),
                version: "create:\(path):\(Clock.realtime().seconds):\(Clock.monotonicNanoseconds())"
            )
            return "new file not created (\(error))"
        }
        defer { Syscall.close(fd) }
        // Owner first: fchown clears set-id bits that fchmod then sets.
        guard fchown(fd, owner, group) == 0, fchmod(fd, mode_t(mode)) == 0 else {
            let code = errno
            emitFailure(
                rule: rule,
                path: path,
                Failure(
                    step: "create",
                    errno: code,
                    message:
                        "Rotated '\(path)' and created it anew, but setting its owner \(owner):\(group) and mode \(String(mode, radix: 8)) returned '\(String(cString: strerror(code)))'; vigil needs CAP_CHOWN and CAP_FOWNER"
                ),
                version: "create-owner:\(path):\(Clock.realtime().seconds):\(Clock.monotonicNanoseconds())"
            )
            return "created anew, owner or mode not set"
        }
        return
            "created anew with mode 0\(String(mode, radix: 8)) owner \(names.userName(owner)):\(names.groupName(group))"
    }

    /// A dry run's rotation: what `rotate` would do with this log (the name it would take, create:,
    /// compress:, postrotate:), as an alert of kind `log.rotate_dry_run` with the text in its `dry_run`
    /// label, and a notice. Nothing is renamed, created, compressed, deleted, run or signalled.
    private func reportDryRun(plan: Int, name: String, rule index: Int, reason: Reason, info: FileIdentity) {
        let rule = rules[index]
        let subject = rule.subject
        let path = serverPath(plan: plan, name: name)
        let suffix = LocalClock.format(Clock.realtime().seconds, subject.dateFormat)
        // The name the rotation would take: the first not taken (by a rotation or its .gz), as in `rotate`.
        let archive = try? openArchive(rule: index, plan: plan, logPath: path, create: false)
        defer { if let archive { Syscall.close(archive.descriptor) } }
        let archivePath =
            archive?.path ?? (plans[plan].serverDirectory == "/" ? "/" : plans[plan].serverDirectory + "/")
        var candidate = RotationNames.name(base: name, suffix: suffix, counter: 0)
        if let archive {
            for counter in 0..<1000 {
                candidate = RotationNames.name(base: name, suffix: suffix, counter: counter)
                let taken =
                    (try? SafeDirectory.status(candidate, in: archive.descriptor)) != nil
                    || (try? SafeDirectory.status(candidate + ".gz", in: archive.descriptor)) != nil
                if !taken { break }
            }
        }
        let why: String
        switch reason {
        case .size:
            why = "size \(DryRun.bytes(UInt64(max(info.size, 0)))) ≥ \(DryRun.bytes(subject.maximumBytes ?? 0))"
        case .age, .startup:
            why = "\(reason.label) rotation"
        }
        var text =
            "would \(subject.copyTruncate ? "copy and truncate" : "rotate") \(path) (\(why)) to \(archivePath)\(candidate)"
        if subject.compress { text += subject.delayCompress ? " and gzip it at the next rotation" : " and gzip it" }
        if let create = rule.create, !subject.copyTruncate {
            let mode = create.mode ?? (info.mode & 0o7777)
            let owner = create.owner ?? info.owner
            let group = create.group ?? info.group
            text +=
                "; would create \(path) anew with mode 0\(String(mode, radix: 8)) owner \(names.userName(owner)):\(names.groupName(group))"
        }
        if let post = postRotate(rule: index, paths: [path]).text { text += "; postrotate: " + post }
        settings.dryRun?.note(rule: rule.rule.id, text)
        var labels = rule.labels
        labels[DryRun.label] = text
        labels["reason"] = reason.label
        outlet.sendRuleAlert(
            host: settings.host,
            rule: rule.rule.id,
            severity: rule.rule.severity.rawValue,
            instance: path,
            state: .event,
            version: "rotate-dry-run:\(info.device):\(info.inode):\(Clock.monotonicNanoseconds())",
            kind: "log.rotate_dry_run",
            path: path,
            message: "Dry run: \(text)",
            labels: labels,
            sinkMask: allSinks,
            eventTime: 0
        )
    }
}
