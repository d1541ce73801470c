import Synchronization
import SystemPackage
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

extension PermissionWatcher {
    /// What is wrong with a file, against its rule.
    struct Drift {
        var mode: UInt32?
        var owner: UInt32?
        var group: UInt32?
        var isEmpty: Bool { mode == nil && owner == nil && group == nil }
    }

    /// Judges the file `path` (named `relative` beneath the open directory `base`) against claim `claim`'s
    /// rule, and puts it right if the rule says so.
    func check(_ path: String, relative: String, beneath base: CInt, claim: Int, eventTime: UInt64) {
        counters.permissionChecks.add(1, ordering: .relaxed)
        let ruleIndex = claims.claims[claim].rule
        let compiled = rules[ruleIndex]
        var handle: SafeFile.Handle
        do {
            handle = try SafeFile.open(relative, beneath: base)
        } catch {
            // Gone (the next event says so), or a symlink: Vigil never changes a symlink or what it points to.
            if error == .noSuchFileOrDirectory { resolveGone(path) }
            return
        }
        defer { handle.close() }
        // The descriptor must be the file the name named: a name swapped between the open and now is judged
        // by the event its swap causes, never through this descriptor.
        var named = stat()
        guard fstatat(base, relative, &named, AT_SYMLINK_NOFOLLOW) == 0, UInt64(named.st_dev) == handle.device,
            UInt64(named.st_ino) == handle.inode
        else { return }

        let found = drift(of: handle, against: compiled)
        if found.isEmpty {
            if let open = firing[path] { resolve(path, open, handle: handle, eventTime: eventTime) }
            return
        }
        let wantsChange =
            compiled.restoresMode && found.mode != nil
            || compiled.restoresOwner && (found.owner != nil || found.group != nil)
        // nil: everything the rule restores was put right.
        let problem: String?
        var wouldDo: String?
        if !wantsChange {
            problem = "not changed (audit: add chmod or chown to then: to restore)"
        } else if handle.isRegularFile && handle.links > 1 {
            problem =
                "refused: it has \(handle.links) hard links, and a hard link is the file itself (it may be /etc/shadow); remove the extra links"
        } else if let dryRun = settings.dryRun {
            // The file stays wrong: reported once per change (the firing entry below), never restored.
            let text = wouldRestore(path, handle: handle, found: found, compiled: compiled)
            if firing[path]?.found != describe(found) { dryRun.note(rule: compiled.rule.id, text) }
            wouldDo = text
            problem = "not changed (dry run)"
        } else {
            problem = restore(&handle, found: found, compiled: compiled)
        }
        let left = drift(of: handle, against: compiled)
        if left.isEmpty {
            counters.permissionsRestored.add(1, ordering: .relaxed)
            // A drift reported before (a change that failed then) is resolved by this restore.
            let state: AlertState = firing.removeValue(forKey: path) != nil ? .resolved : .event
            emit(
                ruleIndex,
                path: path,
                handle: handle,
                drift: found,
                state: state,
                outcome: "restored",
                eventTime: eventTime
            )
            return
        }
        // The rule restores one part (chmod without chown): the rest is reported.
        let outcome =
            problem ?? "partly restored; the rest is not changed (audit: add chmod or chown to then: to restore it)"
        let description = describe(left)
        if let open = firing[path], open.found == description { return }  // Already reported, unchanged.
        firing[path] = Firing(rule: ruleIndex, found: description)
        emit(
            ruleIndex,
            path: path,
            handle: handle,
            drift: left,
            state: .firing,
            outcome: outcome,
            eventTime: eventTime,
            dryRun: wouldDo
        )
    }

    /// What `restore` would do with `found`, from the same values: "would chown root:analytics PATH (now
    /// app:app), would chmod 0640 PATH (now 0666)". A chown clears setuid and setgid bits, which the chmod
    /// after it sets again, as in `restore`.
    private func wouldRestore(_ path: String, handle: SafeFile.Handle, found: Drift, compiled: CompiledRule) -> String {
        var steps: [String] = []
        if compiled.restoresOwner && (found.owner != nil || found.group != nil) {
            let owner = found.owner != nil ? compiled.owner : nil
            let group = found.group != nil ? compiled.group : nil
            let wanted = (owner.map(names.userName) ?? "") + (group.map { ":" + names.groupName($0) } ?? "")
            let now = names.userName(handle.owner) + ":" + names.groupName(handle.group)
            steps.append("would chown \(wanted) \(path) (now \(now))")
        }
        let wanted = handle.isDirectory ? compiled.subject.directoryMode : compiled.subject.fileMode
        if compiled.restoresMode, let wanted, handle.mode & 0o7777 != wanted {
            steps.append("would chmod \(Self.octal(wanted)) \(path) (now \(Self.octal(handle.mode & 0o7777)))")
        }
        return steps.joined(separator: ", then ")
    }

    /// What differs from the rule (only what the rule names).
    func drift(of handle: SafeFile.Handle, against compiled: CompiledRule) -> Drift {
        var drift = Drift()
        let wanted = handle.isDirectory ? compiled.subject.directoryMode : compiled.subject.fileMode
        if let wanted, handle.mode & 0o7777 != wanted { drift.mode = handle.mode & 0o7777 }
        if let owner = compiled.owner, handle.owner != owner { drift.owner = handle.owner }
        if let group = compiled.group, handle.group != group { drift.group = handle.group }
        return drift
    }

    /// Changes owner and group first (a chown clears setuid and setgid bits), then the mode, through the
    /// descriptor. Returns nil, or what failed and what to do.
    private func restore(_ handle: inout SafeFile.Handle, found: Drift, compiled: CompiledRule) -> String? {
        do {
            if compiled.restoresOwner && (found.owner != nil || found.group != nil) {
                try SafeFile.changeOwner(
                    handle,
                    owner: found.owner != nil ? compiled.owner : nil,
                    group: found.group != nil ? compiled.group : nil
                )
                handle = try SafeFile.refresh(handle)
            }
            let wanted = handle.isDirectory ? compiled.subject.directoryMode : compiled.subject.fileMode
            if compiled.restoresMode, let wanted, handle.mode & 0o7777 != wanted {
                try SafeFile.changeMode(handle, to: wanted)
                handle = try SafeFile.refresh(handle)
            }
        } catch {
            let fix =
                error == .readOnlyFileSystem
                ? "the filesystem is read-only"
                : "vigil needs CAP_CHOWN and CAP_FOWNER (CapabilityBoundingSet= in vigil.service)"
            return "could not restore: \(error); \(fix)"
        }
        return nil
    }

    /// A drift put right, or gone, or the file deleted: the firing alert is resolved.
    private func resolve(_ path: String, _ open: Firing, handle: SafeFile.Handle, eventTime: UInt64) {
        firing[path] = nil
        emit(
            open.rule,
            path: path,
            handle: handle,
            drift: Drift(),
            state: .resolved,
            outcome: "right again",
            eventTime: eventTime
        )
    }

    /// The file is gone: a drift reported for it is resolved.
    func resolveGone(_ path: String) {
        guard let open = firing.removeValue(forKey: path) else { return }
        emit(open.rule, path: path, handle: nil, drift: Drift(), state: .resolved, outcome: "gone", eventTime: 0)
    }

    /// "mode 0777, owner root, group root".
    func describe(_ drift: Drift) -> String {
        var parts: [String] = []
        if let mode = drift.mode { parts.append("mode " + Self.octal(mode)) }
        if let owner = drift.owner { parts.append("owner " + names.userName(owner)) }
        if let group = drift.group { parts.append("group " + names.groupName(group)) }
        return parts.joined(separator: ", ")
    }

    /// What the rule wants, for the attributes in `drift` (all of the rule's when `drift` is empty).
    func expected(_ compiled: CompiledRule, drift: Drift, isDirectory: Bool) -> String {
        let all = drift.isEmpty
        var parts: [String] = []
        let wanted = isDirectory ? compiled.subject.directoryMode : compiled.subject.fileMode
        if let wanted, all || drift.mode != nil { parts.append("mode " + Self.octal(wanted)) }
        if let owner = compiled.owner, all || drift.owner != nil { parts.append("owner " + names.userName(owner)) }
        if let group = compiled.group, all || drift.group != nil { parts.append("group " + names.groupName(group)) }
        return parts.joined(separator: ", ")
    }

    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Sends one alert of rule `ruleIndex` about `path`.
    private func emit(
        _ ruleIndex: Int,
        path: String,
        handle: SafeFile.Handle?,
        drift: Drift,
        state: AlertState,
        outcome: String,
        eventTime: UInt64,
        dryRun: String? = nil
    ) {
        let compiled = rules[ruleIndex]
        // A dry run's report goes out even for a rule without `alert` (chmod alone restores silently).
        let sinkMask = dryRun != nil && compiled.sinkMask == 0 ? allSinks : compiled.sinkMask
        guard sinkMask != 0 else { return }
        let isDirectory = handle?.isDirectory ?? false
        let found = drift.isEmpty ? "" : describe(drift)
        let expected = expected(compiled, drift: drift, isDirectory: isDirectory)
        let kindName = isDirectory ? "directory" : "file"
        let fields: (String) -> String? = { name in
            switch name {
            case "rule": compiled.rule.id
            case "severity": compiled.rule.severity.rawValue
            case "host": self.settings.host
            case "path": path
            case "kind": kindName
            case "found": found
            case "expected": expected
            case "outcome": outcome
            default: nil
            }
        }
        let message = compiled.rule.renderMessage(resolved: state == .resolved, fields)
        var labels = compiled.labels
        if !found.isEmpty { labels["found"] = found }
        labels["expected"] = expected
        labels["outcome"] = outcome
        if let dryRun { labels[DryRun.label] = dryRun }
        // The same drift seen again (a rescan) has the same inode and change time, so the same id.
        let version =
            handle.map { "\($0.device):\($0.inode):\($0.changeTime)" } ?? "gone:\(Clock.monotonicNanoseconds())"
        outlet.sendRuleAlert(
            host: settings.host,
            rule: compiled.rule.id,
            severity: compiled.rule.severity.rawValue,
            instance: path,
            state: state,
            version: version,
            kind: state == .event ? "file.permissions_restored" : "file.permissions_drift",
            path: path,
            message: message,
            labels: labels,
            sinkMask: sinkMask,
            eventTime: eventTime
        )
    }
}
