import Logging
import Synchronization
import SystemPackage
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// After the renames of a batch: the writer is told (postrotate, once per rule and batch), old rotations are
// deleted (keep:, max_age:), waiting ones compressed on the gzip worker, and the archive swept.
extension RotationWatcher {
    /// One rotation of a log as found in its rotation directory: the plain file and/or its `.gz`.
    struct ArchivedRotation {
        let stem: String
        let counter: Int
        var plain: FileIdentity?
        var compressed: FileIdentity?

        /// The later mtime of the two (they are equal once compressed: the `.gz` keeps the rotation's).
        var modified: Int64 { max(plain?.modificationNanoseconds ?? .min, compressed?.modificationNanoseconds ?? .min) }
    }

    /// Finishes the rotations of the current batch: postrotate once per rule, then retention, compression
    /// and the sweep; alerts go out now or, for a rotation being compressed, when its compression ends.
    func finishBatch() {
        guard !batch.isEmpty else { return }
        let rotations = batch
        batch.removeAll()
        var byRule: [Int: [Rotation]] = [:]
        for rotation in rotations { byRule[rotation.rule, default: []].append(rotation) }
        for rule in byRule.keys.sorted() {
            var group = byRule[rule]!
            let post = postRotate(rule: rule, paths: group.map(\.path))
            if let text = post.text { for index in group.indices { group[index].outcome.append(text) } }
            if post.spawned {
                // Deleting and sweeping need not wait; compressing the rotation waits until the writer was
                // told to reopen (the command ended), as logrotate's postrotate runs before compress.
                for plan in Set(group.map(\.plan)).sorted() {
                    maintain(rule: rule, plan: plan, retention: true, compress: false, sweep: true)
                }
                awaitingChild[rule, default: []] += group
                continue
            }
            complete(rule: rule, rotations: group, retention: true)
        }
    }

    /// Compresses what waits in the rotation directories of `rotations` and sends the alerts of those not
    /// waiting for a compression.
    func complete(rule: Int, rotations: [Rotation], retention: Bool) {
        var unattached = rotations
        for plan in Set(rotations.map(\.plan)).sorted() {
            unattached = maintain(
                rule: rule,
                plan: plan,
                retention: retention,
                compress: true,
                sweep: retention,
                rotations: unattached
            )
        }
        for rotation in unattached { emitRotated(rotation) }
    }

    /// Retention, compression and the sweep in the rotation directory of `rule` for the logs of `plan`.
    /// `rotations` are this batch's (their alerts wait for their own compression); returns those whose alert
    /// does not wait, each with its outcome.
    @discardableResult
    func maintain(
        rule index: Int,
        plan: Int,
        retention: Bool,
        compress: Bool,
        sweep: Bool,
        rotations: [Rotation] = []
    ) -> [Rotation] {
        var unattached = rotations
        guard plans[plan].descriptor >= 0 else { return unattached }
        let rule = rules[index]
        let subject = rule.subject
        let archive: Archive
        do {
            let path = plans[plan].serverDirectory + "/"
            guard let opened = try openArchive(rule: index, plan: plan, logPath: path, create: false) else {
                return unattached
            }
            archive = opened
        } catch {
            noteFailure(key: "olddir:\(index):\(plan)", rule: index, path: plans[plan].serverDirectory, error)
            return unattached
        }
        defer { Syscall.close(archive.descriptor) }
        let names: [String]
        do {
            names = try SafeDirectory.names(in: archive.descriptor)
        } catch {
            logger.error("Failed to list rotation directory '\(archive.path)': \(error)")
            return unattached
        }
        let now = Int64(Clock.realtime().seconds) * 1_000_000_000 + Int64(Clock.realtime().nanoseconds)

        // The rotations of each log, newest first (by mtime, then counter).
        let patterns = plans[plan].entries.filter { $0.rule == index }.map(\.name)
        var byBase: [String: [String: ArchivedRotation]] = [:]
        for name in names {
            guard let parsed = rule.names.parse(name, isBase: { base in patterns.contains { Self.matches($0, base) } }),
                let info = try? SafeDirectory.status(name, in: archive.descriptor), info.mode & S_IFMT == S_IFREG
            else { continue }
            var entry =
                byBase[parsed.base]?[parsed.stem]
                ?? ArchivedRotation(stem: parsed.stem, counter: parsed.counter, plain: nil, compressed: nil)
            if parsed.compressed { entry.compressed = info } else { entry.plain = info }
            byBase[parsed.base, default: [:]][parsed.stem] = entry
        }
        var deleted = 0
        var deleteErrors: [String] = []
        var queueFull = false
        /// A dry run's deletions and compressions, reported together at the end.
        var wouldDo: [String] = []
        for base in byBase.keys.sorted() {
            let ordered = byBase[base]!.values.sorted { ($0.modified, $0.counter) > ($1.modified, $1.counter) }
            var survivors: [ArchivedRotation] = []
            if retention {
                var kept = 0
                let maximumAge = subject.maximumAgeMilliseconds.map { Int64($0) * 1_000_000 }
                for item in ordered {
                    let tooOld = maximumAge.map { now - item.modified > $0 } ?? false
                    if kept < subject.keep && !tooOld {
                        kept += 1
                        survivors.append(item)
                        continue
                    }
                    if inFlight.contains(archive.key + "/" + item.stem) {
                        // Being compressed: deleted once the compression ends (never under the worker's feet).
                        retentionPending.insert([index, plan])
                        survivors.append(item)
                        continue
                    }
                    for (present, name) in [(item.plain, item.stem), (item.compressed, item.stem + ".gz")]
                    where present != nil {
                        if settings.dryRun != nil {
                            wouldDo.append("would delete \(archive.path)\(name)")
                            continue
                        }
                        do {
                            try SafeDirectory.remove(name, in: archive.descriptor)
                            deleted += 1
                        } catch {
                            deleteErrors.append("'\(archive.path)\(name)': \(error)")
                        }
                    }
                }
            } else {
                survivors = ordered
            }
            guard compress && subject.compress else { continue }
            for (position, item) in survivors.enumerated() {
                guard let plain = item.plain, item.compressed == nil else { continue }
                // delaycompress: the newest rotation waits for the next one (its writer may still append).
                if subject.delayCompress && position == 0 { continue }
                let key = archive.key + "/" + item.stem
                guard !inFlight.contains(key) else { continue }
                if settings.dryRun != nil {
                    wouldDo.append("would gzip \(archive.path)\(item.stem) to \(item.stem).gz")
                    continue
                }
                if submitCompression(rule: index, plan: plan, archive: archive, item.stem, plain, &unattached) {
                    inFlight.insert(key)
                } else {
                    queueFull = true
                }
            }
        }
        if deleted > 0 {
            counters.logArchivesDeleted.add(UInt64(deleted), ordering: .relaxed)
            logger.info(
                "Deleted \(deleted) old rotation file(s) in '\(archive.path)' (rule '\(rule.rule.id)': keep \(subject.keep)\(subject.maximumAgeMilliseconds.map { ", max_age \(Durations.text(milliseconds: $0))" } ?? ""))"
            )
        }
        if !deleteErrors.isEmpty {
            emitFailure(
                rule: index,
                path: archive.path,
                Failure(
                    step: "retention",
                    errno: 0,
                    message:
                        "Failed to delete old rotations: \(deleteErrors.joined(separator: "; ")); they are kept. vigil needs CAP_DAC_OVERRIDE, and the directory must not be immutable"
                ),
                version: "retention:\(archive.key):\(now)"
            )
        }
        if queueFull {
            counters.logCompressionFailures.add(1, ordering: .relaxed)
            emitFailure(
                rule: index,
                path: archive.path,
                Failure(
                    step: "compress",
                    errno: 0,
                    message:
                        "Rotations in '\(archive.path)' were left uncompressed: the compression queue is full (\(compression.capacity) waiting, a slow disk or very large logs); they are compressed at the next rotation of rule '\(rule.rule.id)'"
                ),
                version: "queue-full:\(archive.key):\(now)"
            )
        }
        for position in unattached.indices where unattached[position].plan == plan {
            if !subject.compress {
                unattached[position].outcome.append("not compressed (compress: false)")
            } else if subject.delayCompress {
                unattached[position].outcome.append("compressed at the next rotation (delaycompress)")
            } else if queueFull {
                unattached[position].outcome.append("not compressed yet: the compression queue is full")
            }
        }
        if !wouldDo.isEmpty { reportDryRun(rule: index, path: archive.path, wouldDo) }
        if sweep, let policy = subject.sweep { self.sweep(archive, policy, rule: index, names: names, now: now) }
        return unattached
    }

    /// Hands one rotation to the gzip worker; false when its queue is full. A rotation of this batch whose
    /// name it is moves from `unattached` into the job's ticket: its alert waits for the outcome.
    private func submitCompression(
        rule index: Int,
        plan: Int,
        archive: Archive,
        _ stem: String,
        _ plain: FileIdentity,
        _ unattached: inout [Rotation]
    ) -> Bool {
        guard let source = try? SafeDirectory.open(".", beneath: archive.descriptor),
            let own = try? SafeDirectory.open(".", beneath: archive.descriptor)
        else { return false }
        let create = rules[index].create
        let id = nextTicket
        nextTicket += 1
        let job = CompressionWorker.Job(
            id: id,
            sourceDirectory: source,
            destinationDirectory: source,
            sourceName: stem,
            destinationName: stem + ".gz",
            level: min(max(rules[index].subject.compressLevel, 1), 9),
            mode: create?.mode ?? (plain.mode & 0o7777),
            owner: create?.owner ?? plain.owner,
            group: create?.group ?? plain.group
        )
        guard compression.submit(job) else {
            Syscall.close(own)
            return false
        }
        var ticket = CompressionTicket(
            rule: index,
            plan: plan,
            archiveKey: archive.key,
            archivePath: archive.path,
            directory: own,
            stem: stem,
            size: plain.size,
            modified: plain.modificationNanoseconds
        )
        if let position = unattached.firstIndex(where: { $0.archiveKey == archive.key && $0.rotatedName == stem }) {
            ticket.rotation = unattached.remove(at: position)
        }
        tickets[id] = ticket
        return true
    }

    /// Turns the gzip worker's outcomes into counters, alerts and retries.
    func handleCompressionOutcomes() {
        let outcomes = compression.takeOutcomes()
        guard !outcomes.isEmpty else { return }
        defer {
            // Retention that waited for these compressions.
            let pending = retentionPending
            retentionPending.removeAll()
            for pair in pending.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                maintain(rule: pair[0], plan: pair[1], retention: true, compress: false, sweep: false)
            }
        }
        for outcome in outcomes {
            guard let ticket = tickets.removeValue(forKey: outcome.id) else { continue }
            defer { Syscall.close(ticket.directory) }
            let key = ticket.archiveKey + "/" + ticket.stem
            inFlight.remove(key)
            let shown = ticket.archivePath + ticket.stem
            var rotation = ticket.rotation
            switch outcome.result {
            case .compressed(let result):
                counters.logCompressions.add(1, ordering: .relaxed)
                counters.logCompressionInputBytes.add(result.inputBytes, ordering: .relaxed)
                counters.logCompressionOutputBytes.add(result.outputBytes, ordering: .relaxed)
                writerRetries[key] = nil
                failures["gz:" + key] = nil
                if var done = rotation {
                    done.compressedPath = shown + ".gz"
                    done.compressedBytes = result.outputBytes
                    done.compressNanoseconds = outcome.nanoseconds
                    done.outcome.append("compressed to \(ticket.stem).gz (\(result.outputBytes) bytes)")
                    emitRotated(done)
                } else {
                    logger.debug(
                        "Compressed '\(shown)' (\(result.inputBytes) → \(result.outputBytes) bytes) in \(outcome.nanoseconds / 1_000_000) ms"
                    )
                }
            case .failed(let error):
                if error.errno == ENOENT {
                    // Deleted meanwhile (retention, or by hand): nothing to compress.
                    rotation?.outcome.append("removed before it was compressed")
                    if let rotation { emitRotated(rotation) }
                    continue
                }
                var writerNote = ""
                if stillWritten(ticket) {
                    let attempts = writerRetries[key, default: 0] + 1
                    writerRetries[key] = attempts
                    if attempts <= settings.writerRetryLimit {
                        timers.push(
                            Clock.monotonicNanoseconds() + settings.writerRetryNanoseconds,
                            .compressionPass(rule: ticket.rule)
                        )
                        rotation?.outcome.append("compression waits until its writer stops appending to it")
                        if let rotation { emitRotated(rotation) }
                        continue
                    }
                    writerRetries[key] = nil
                    writerNote =
                        " A process kept appending to it through \(settings.writerRetryLimit) attempts: tell the writer to reopen its log (postrotate:), or use delaycompress: true."
                }
                counters.logCompressionFailures.add(1, ordering: .relaxed)
                rotation?.outcome.append("compression failed (see the log.rotation_failed alert)")
                if let rotation { emitRotated(rotation) }
                let signature = "compress:\(error.errno)"
                guard failures["gz:" + key]?.signature != signature else {
                    logger.debug("Compression of '\(shown)' failed again: \(error)")
                    continue
                }
                failures["gz:" + key] = FailureState(
                    signature: signature,
                    nextAttempt: 0,
                    backoff: 0,
                    firstSeen: Clock.realtime().seconds
                )
                emitFailure(
                    rule: ticket.rule,
                    path: shown,
                    Failure(
                        step: "compress",
                        errno: error.errno,
                        message:
                            "\(error.message). The rotation stays uncompressed and intact; vigil compresses it again at the next rotation.\(writerNote)"
                    ),
                    version: "compress:\(key):\(error.errno):\(Clock.realtime().seconds)"
                )
            case .cancelled:
                rotation?.outcome.append("not compressed yet: vigil stopped (compressed at its next start)")
                if let rotation { emitRotated(rotation) }
            }
        }
    }

    /// Whether the rotation changed since it was handed to the worker: a writer still appends to it.
    private func stillWritten(_ ticket: CompressionTicket) -> Bool {
        guard let now = try? SafeDirectory.status(ticket.stem, in: ticket.directory) else { return false }
        return now.size != ticket.size || now.modificationNanoseconds != ticket.modified
    }

    // MARK: The sweep

    /// `sweep:` in a rotation directory: every `*.gz` regular file older than `after` gets `mode` (through a
    /// descriptor opened without following symlinks, and only with a single link), older than `delete_after`
    /// is deleted, like the seed's `find -mtime +30 -exec chmod 600` and `find -mtime +90 -delete`. Symlinks
    /// are never followed nor changed.
    private func sweep(_ archive: Archive, _ policy: ArchiveSweep, rule: Int, names: [String], now: Int64) {
        var restricted = 0
        var removed = 0
        var problems: [String] = []
        var wouldDo: [String] = []
        defer { if !wouldDo.isEmpty { reportDryRun(rule: rule, path: archive.path, wouldDo) } }
        for name in names where name.hasSuffix(".gz") {
            guard let info = try? SafeDirectory.status(name, in: archive.descriptor), info.mode & S_IFMT == S_IFREG
            else { continue }
            let age = now - info.modificationNanoseconds
            if let limit = policy.deleteAfterMilliseconds, age > Int64(limit) * 1_000_000 {
                if settings.dryRun != nil {
                    wouldDo.append("would delete \(archive.path)\(name) (sweep)")
                    continue
                }
                do {
                    try SafeDirectory.remove(name, in: archive.descriptor)
                    removed += 1
                } catch {
                    problems.append("deleting '\(archive.path)\(name)' returned '\(error)'")
                }
                continue
            }
            guard let mode = policy.mode, let after = policy.chmodAfterMilliseconds, age > Int64(after) * 1_000_000,
                info.mode & 0o7777 != mode & 0o7777
            else { continue }
            do {
                let handle = try SafeFile.open(name, beneath: archive.descriptor)
                defer { handle.close() }
                guard handle.isRegularFile, handle.links == 1, handle.device == info.device, handle.inode == info.inode
                else {
                    problems.append(
                        "'\(archive.path)\(name)' has \(handle.links) hard links or was replaced; its mode is left alone"
                    )
                    continue
                }
                if settings.dryRun != nil {
                    wouldDo.append(
                        "would chmod 0\(String(mode, radix: 8)) \(archive.path)\(name) (now 0\(String(info.mode & 0o7777, radix: 8)))"
                    )
                    continue
                }
                try SafeFile.changeMode(handle, to: mode)
                restricted += 1
            } catch {
                problems.append("setting the mode of '\(archive.path)\(name)' returned '\(error)'")
            }
        }
        if restricted + removed > 0 {
            counters.logArchivesRestricted.add(UInt64(restricted), ordering: .relaxed)
            counters.logArchivesDeleted.add(UInt64(removed), ordering: .relaxed)
            logger.info(
                "Swept '\(archive.path)' (rule '\(rules[rule].rule.id)'): \(restricted) archive(s) set to mode 0\(String(policy.mode ?? 0, radix: 8)), \(removed) deleted"
            )
        }
        if !problems.isEmpty {
            emitFailure(
                rule: rule,
                path: archive.path,
                Failure(
                    step: "sweep",
                    errno: 0,
                    message:
                        "The sweep of '\(archive.path)' could not finish: \(problems.joined(separator: "; ")); vigil needs CAP_FOWNER and CAP_DAC_OVERRIDE"
                ),
                version: "sweep:\(archive.key):\(now)"
            )
        }
    }

    /// A dry run's retention, compression or sweep in one rotation directory: one alert (kind
    /// `log.rotate_dry_run`, the steps in its `dry_run` label) and a notice. Runs at start-up and at the
    /// daily sweep only (a dry run rotates nothing, so no rotation asks for it).
    private func reportDryRun(rule index: Int, path: String, _ steps: [String]) {
        let text = steps.joined(separator: "; ")
        settings.dryRun?.note(rule: rules[index].rule.id, text)
        var labels = rules[index].labels
        labels[DryRun.label] = text
        outlet.sendRuleAlert(
            host: settings.host,
            rule: rules[index].rule.id,
            severity: rules[index].rule.severity.rawValue,
            instance: path,
            state: .event,
            version: "maintain-dry-run:\(Clock.monotonicNanoseconds())",
            kind: "log.rotate_dry_run",
            path: path,
            message: "Dry run: \(text)",
            labels: labels,
            sinkMask: allSinks,
            eventTime: 0
        )
    }
}
