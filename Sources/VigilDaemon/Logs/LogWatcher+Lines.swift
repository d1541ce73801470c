import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

extension LogWatcher {
    /// Longest line text an alert carries (the rest is cut, with a mark).
    static let alertLineLimit = 2048

    /// Reads what was appended to `file` since its offset and processes every complete line. A line
    /// longer than the limit is processed in pieces of the limit, each flagged. `final`: the last line
    /// without its newline is processed too (the file is being retired).
    func read(_ file: LogFile, eventTime: UInt64, final: Bool = false) {
        guard let size = file.size else { return }
        if size < file.offset { truncated(file, size: size) }
        let limit = settings.lineLimit
        while true {
            let n = pread(file.descriptor, buffer.baseAddress, buffer.count, off_t(file.offset))
            if n < 0 {
                if errno == EINTR { continue }
                if !file.reportedWriteFailure {
                    logger.error(
                        "Failed to read log '\(file.path)': \(String(cString: strerror(errno))); its lines are read again from byte \(file.offset) on its next change. Check the filesystem (an I/O error) and vigil's read access"
                    )
                    file.reportedWriteFailure = true
                }
                return
            }
            guard n > 0 else {
                // Nothing at the offset: truncated since the last look (copy-and-truncate)?
                if let now = file.size, now < file.offset {
                    truncated(file, size: now)
                    continue
                }
                return
            }
            file.lastGrowth = Clock.monotonicNanoseconds()
            // The fingerprint covers the first kilobyte once the file has it.
            let covered = Int(min(file.offset + Int64(n), Int64(LogFingerprint.span)))
            if file.fingerprint.length < covered, let grown = LogFingerprint.read(file.descriptor, length: covered) {
                file.fingerprint = grown
            }
            var start = 0
            while start < n {
                let window = min(n - start, limit)
                let base = buffer.baseAddress! + start
                if let newline = memchr(base, 0x0A, window) {
                    let length = newline - base
                    line(
                        file,
                        UnsafeMutableRawBufferPointer(start: base, count: length),
                        at: file.offset + Int64(start),
                        split: false,
                        eventTime: eventTime
                    )
                    start += length + 1
                } else if window == limit || (final && n < buffer.count) {
                    line(
                        file,
                        UnsafeMutableRawBufferPointer(start: base, count: window),
                        at: file.offset + Int64(start),
                        split: window == limit,
                        eventTime: eventTime
                    )
                    start += window
                } else {
                    break  // a partial line: it waits for its newline
                }
            }
            file.offset += Int64(start)
            if start > 0 { stateChanged = true }
            // Up to the size seen on entry: a writer faster than this thread must not keep it here for
            // ever (no timer, no state save, no stop); what it wrote since has raised an event of its own.
            if n < buffer.count || start == 0 || file.offset >= size { return }
        }
    }

    /// The file is shorter than what was read: copied and truncated (copytruncate), or truncated by hand.
    /// Lines written between the copy and the truncation are gone from this file; say so, and read it again
    /// from its start.
    private func truncated(_ file: LogFile, size: Int64) {
        outlet.sendVigilAlert(
            host: settings.host,
            rule: "vigil-log-truncated",
            severity: "warning",
            kind: "vigil.log_truncated",
            message:
                "Log '\(file.path)' was truncated from \(file.offset) to \(size) bytes (copy-and-truncate rotation?); reading it again from the start. Lines written between the copy and the truncation may be lost: rotate by renaming (logrotate without copytruncate) to lose none",
            version: "\(file.key.device):\(file.key.inode):\(file.offset):\(size)",
            sinkMask: allSinks,
            eventTime: 0
        )
        file.offset = 0
        file.fingerprint = LogFingerprint(hash: 0, length: 0)
        file.sanitizer?.state = SecretMasker.State()
        stateChanged = true
    }

    /// One line (without its newline) at byte `offset` of the file: match, alert, mask.
    private func line(
        _ file: LogFile,
        _ text: UnsafeMutableRawBufferPointer,
        at offset: Int64,
        split: Bool,
        eventTime: UInt64
    ) {
        counters.logLines.add(1, ordering: .relaxed)
        hits.removeAll(keepingCapacity: true)
        var masks = false
        patterns.match(UnsafeRawBufferPointer(text), scratch: scratch) { rule in
            guard file.applies(rule) else { return }
            if rules[rule].sinkMask != 0 { hits.append(rule) }
            if rules[rule].sanitize != nil { masks = true }
        }
        for rule in hits {
            fire(
                rule,
                file: file,
                line: UnsafeRawBufferPointer(text),
                offset: offset,
                split: split,
                eventTime: eventTime
            )
        }
        // A sanitize rule masks the lines it matches (every line, without match:).
        if masks { sanitize(file, text, at: offset) }
    }

    // MARK: Alerts (only for lines that matched)

    private func fire(
        _ index: Int,
        file: LogFile,
        line: UnsafeRawBufferPointer,
        offset: Int64,
        split: Bool,
        eventTime: UInt64
    ) {
        let compiled = rules[index]
        let rule = compiled.rule
        var fields: [String: String] = [:]
        if compiled.subject.patterns.contains(where: { !$0.captureNames.isEmpty }) {
            for (name, value) in patterns.captures(ruleIndex: index, line: line) {
                fields[name] = alertMasker.masked(value)
            }
        }
        fields["path"] = file.path
        var count = 1
        var key = ""
        if compiled.windows != nil {
            key = compiled.subject.count?.key?.render { fields[$0] ?? "" } ?? ""
            guard let fired = rules[index].windows!.count(key, now: Clock.monotonicNanoseconds()) else { return }
            count = fired
        }
        var text = alertMasker.masked(String(decoding: line.prefix(Self.alertLineLimit), as: UTF8.self))
        if line.count > Self.alertLineLimit { text += "…" }
        fields["line"] = text
        fields["rule"] = rule.id
        fields["severity"] = rule.severity.rawValue
        fields["host"] = settings.host
        fields["offset"] = String(offset)
        fields["count"] = String(count)
        fields["key"] = key
        fields["window"] = compiled.windowText
        let message = rule.message.render { fields[$0] }
        let fingerprint = AlertIdentity.fingerprint(
            rule: rule.id,
            instance: compiled.windows == nil ? file.instance : "\(file.instance):\(key)"
        )
        let id = AlertIdentity.id(fingerprint: fingerprint, state: .event, version: String(offset))
        let sinks = ledger.isEmpty ? compiled.sinkMask : ledger.unwritten(id, of: compiled.sinkMask)
        guard sinks != 0 else { return }  // already in every sink before the restart
        var labels = compiled.labels
        labels["offset"] = String(offset)
        labels["line"] = text
        if split { labels["split"] = "true" }
        if compiled.windows != nil {
            labels["count"] = String(count)
            if !key.isEmpty { labels["key"] = key }
        }
        for pattern in compiled.subject.patterns {
            for name in pattern.captureNames { if let value = fields[name] { labels[name] = value } }
        }
        let time = Clock.realtime()
        let record = AlertRecord(
            id: id,
            timeSeconds: time.seconds,
            timeNanoseconds: time.nanoseconds,
            host: settings.host,
            rule: rule.id,
            severity: rule.severity.rawValue,
            state: .event,
            kind: compiled.windows == nil ? "log.matched" : "log.threshold",
            path: file.path,
            message: message,
            fingerprint: fingerprint,
            labels: labels
        )
        outlet.send(record, sinkMask: sinks, eventTime: eventTime)
    }

    // MARK: Sanitize

    /// Masks the secrets of one complete line in place (same length, `pwrite` over the bytes already in the
    /// file, only where they still are what was read) and appends the masked line to the redacted copy.
    private func sanitize(_ file: LogFile, _ text: UnsafeMutableRawBufferPointer, at offset: Int64) {
        guard let sanitizer = file.sanitizer else { return }
        if sanitizer.inPlace { original.replaceSubrange(original.startIndex..., with: UnsafeRawBufferPointer(text)) }
        var changed = sanitizer.masker.mask(text, state: &sanitizer.state)
        if let custom = sanitizer.custom { changed += custom.patterns.mask(text, scratch: custom.scratch) }
        if settings.dryRun != nil {
            // The masker counts bytes; each run of masked bytes is one secret.
            var secrets = 0
            if sanitizer.inPlace {
                var inRun = false
                for index in 0..<text.count {
                    let differs = text[index] != original[index]
                    if differs && !inRun { secrets += 1 }
                    inRun = differs
                }
            }
            reportDryRun(file, sanitizer, secrets: secrets, bytes: changed, at: offset)
            return
        }
        if changed > 0 && sanitizer.inPlace {
            var first = 0
            while first < text.count && text[first] == original[first] { first += 1 }
            var last = text.count - 1
            while last > first && text[last] == original[last] { last -= 1 }
            if first <= last {
                writeBack(file, text, original: original, range: first..<(last + 1), lineOffset: offset)
            }
        }
        if sanitizer.copyDescriptor >= 0 {
            var ok = writeAll(sanitizer.copyDescriptor, UnsafeRawBufferPointer(text))
            var newline = UInt8(ascii: "\n")
            ok = ok && Glibc.write(sanitizer.copyDescriptor, &newline, 1) == 1
            if ok {
                sanitizer.copySize += Int64(text.count + 1)
            } else if !file.reportedWriteFailure {
                file.reportedWriteFailure = true
                logger.error(
                    "Failed to write the redacted copy '\(sanitizer.copyPath ?? "")': \(String(cString: strerror(errno))); free space or fix permissions"
                )
            }
        }
    }

    /// A dry run's sanitize: what would be masked in place and copied, as an alert (kind
    /// `log.sanitize_dry_run`, the text in its `dry_run` label) and a notice; nothing is written.
    private func reportDryRun(
        _ file: LogFile,
        _ sanitizer: LogFile.Sanitizer,
        secrets: Int,
        bytes: Int,
        at offset: Int64
    ) {
        guard let dryRun = settings.dryRun else { return }
        var steps: [String] = []
        if secrets > 0 {
            steps.append(
                "would mask \(secrets) secret\(secrets == 1 ? "" : "s") (\(bytes) bytes) in \(file.path) at offset \(offset)"
            )
        }
        if let copy = sanitizer.copyPath {
            let server =
                copy.hasPrefix(settings.root.root + "/") ? String(copy.dropFirst(settings.root.root.count)) : copy
            steps.append(
                bytes > 0
                    ? "would append the masked line to the redacted copy \(server)"
                    : "would append its lines to the redacted copy \(server)"
            )
        }
        // The copy takes every line: reported once per file, then for each line with a secret.
        guard !steps.isEmpty, bytes > 0 || dryRun.isNew("copy:" + file.path, "reported") else { return }
        let text = steps.joined(separator: "; ")
        guard let index = rules.indices.first(where: { rules[$0].sanitize != nil && file.applies($0) }) else { return }
        let rule = rules[index].rule
        dryRun.note(rule: rule.id, text)
        var labels = rules[index].labels
        labels[DryRun.label] = text
        labels["offset"] = String(offset)
        outlet.sendRuleAlert(
            host: settings.host,
            rule: rule.id,
            severity: rule.severity.rawValue,
            instance: file.instance,
            state: .event,
            version: "sanitize-dry-run:\(offset)",
            kind: "log.sanitize_dry_run",
            path: file.path,
            message: "Dry run: \(text)",
            labels: labels,
            sinkMask: allSinks,
            eventTime: 0
        )
    }

    private func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer) -> Bool {
        do {
            try Syscall.writeAll(fd, bytes)
            return true
        } catch {
            return false
        }
    }

    /// Writes the masked bytes `range` of a line at `lineOffset` back into the file, after checking the
    /// file still holds the original bytes there (a copy-and-truncate between the read and now would
    /// otherwise get the mask over other text).
    private func writeBack(
        _ file: LogFile,
        _ masked: UnsafeMutableRawBufferPointer,
        original: [UInt8],
        range: Range<Int>,
        lineOffset: Int64
    ) {
        let at = off_t(lineOffset + Int64(range.lowerBound))
        var current = [UInt8](repeating: 0, count: range.count)
        let n = current.withUnsafeMutableBytes { pread(file.descriptor, $0.baseAddress, range.count, at) }
        guard n == range.count, current[...] == original[range] else {
            counters.sanitizeSkipped.add(1, ordering: .relaxed)
            return
        }
        let written = pwrite(file.descriptor, masked.baseAddress! + range.lowerBound, range.count, at)
        if written == range.count {
            counters.secretsMasked.add(1, ordering: .relaxed)
        } else if !file.reportedWriteFailure {
            file.reportedWriteFailure = true
            logger.error(
                "Failed to mask a secret in place in '\(file.path)' at byte \(at): \(String(cString: strerror(errno))); alerts still mask it"
            )
        }
    }
}
