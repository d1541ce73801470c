import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

extension EscalationWatcher {
    /// Checks `program` again and records which paths its verdict depends on.
    func check(_ program: String) {
        if let old = verdicts[program] {
            for key in old.keys { dependents[key]?.remove(program) }
        }
        guard programsByRule.contains(where: { $0[program] != nil }) else {
            verdicts[program] = nil
            return
        }
        let verdict = examine(program)
        verdicts[program] = verdict
        for key in verdict.keys { dependents[key, default: []].insert(program) }
    }

    /// Walks `program` from `/`, one component at a time with `lstat` (never following a symlink without
    /// saying so): each directory on the way and the program itself are judged. A symlink is resolved by
    /// hand: the directories of the link were judged on the way to it, and the walk goes on along the
    /// target (from `/` for an absolute one, inside the root).
    func examine(_ program: String) -> Verdict {
        var verdict = Verdict()
        var pending = Array(program.split(separator: "/").map(String.init).reversed())
        var current = "/"
        var currentInfo = stat()
        guard lstatServer("/", &currentInfo) else { return verdict }
        verdict.looked.append(Looked(path: "/", isDirectory: true, info: currentInfo))
        verdict.keys.insert("/")
        var hops = 0
        while let name = pending.popLast() {
            if name == "." || name.isEmpty { continue }
            if name == ".." {
                current = Self.parent(of: current) ?? "/"
                guard lstatServer(current, &currentInfo) else { return verdict }
                continue
            }
            let child = Self.join(current, name)
            verdict.keys.insert(child)
            var info = stat()
            guard lstatServer(child, &info) else {
                // Missing: whoever can write the directory above can create it.
                judge(current, currentInfo, entryOwner: nil, isDirectory: true, into: &verdict)
                verdict.missing = true
                return verdict
            }
            judge(current, currentInfo, entryOwner: UInt32(info.st_uid), isDirectory: true, into: &verdict)
            if info.st_mode & S_IFMT == S_IFLNK {
                hops += 1
                guard hops <= 40, let target = readLink(child) else {
                    verdict.missing = true
                    return verdict
                }
                verdict.links.append("\(child) -> \(target)")
                if target.hasPrefix("/") {
                    current = "/"
                    guard lstatServer("/", &currentInfo) else { return verdict }
                }
                pending.append(contentsOf: target.split(separator: "/").map(String.init).reversed())
                continue
            }
            if pending.isEmpty {
                let isDirectory = info.st_mode & S_IFMT == S_IFDIR
                verdict.looked.append(Looked(path: child, isDirectory: isDirectory, info: info))
                judge(child, info, entryOwner: nil, isDirectory: false, into: &verdict)
                return verdict
            }
            guard info.st_mode & S_IFMT == S_IFDIR else {
                verdict.missing = true
                return verdict
            }
            current = child
            currentInfo = info
            verdict.looked.append(Looked(path: child, isDirectory: true, info: info))
        }
        return verdict
    }

    /// Adds a finding when someone other than root can write `path`: a non-root owner (who can chmod it), a
    /// group other than gid 0 with write permission, or everyone. A sticky directory (`/tmp`) whose entry
    /// on the way is root's lets no one else replace that entry, so its group and world bits do not count.
    func judge(_ path: String, _ info: stat, entryOwner: UInt32?, isDirectory: Bool, into verdict: inout Verdict) {
        guard !verdict.findings.contains(where: { $0.path == path }) else { return }
        let mode = UInt32(info.st_mode) & 0o7777
        let owner = UInt32(info.st_uid)
        let group = UInt32(info.st_gid)
        let stickyExempt = isDirectory && mode & UInt32(S_ISVTX) != 0 && entryOwner == 0
        var writers: [String] = []
        var grounds: [String] = []
        if owner != 0 {
            writers.append("user " + names.userName(owner))
            grounds.append("owned by \(names.userName(owner)), who can chmod it")
        }
        if mode & 0o020 != 0 && group != 0 && !stickyExempt {
            writers.append("group " + names.groupName(group))
            grounds.append("group-writable")
        }
        if mode & 0o002 != 0 && !stickyExempt {
            writers.append("everyone")
            grounds.append("world-writable")
        }
        guard !writers.isEmpty else { return }
        let kind = isDirectory ? "directory" : "file"
        let reason =
            "\(kind) \(path) is \(names.userName(owner)):\(names.groupName(group)) mode \(Self.octal(mode)), "
            + grounds.joined(separator: " and ")
        verdict.findings.append(Finding(path: path, writers: writers, reason: reason))
    }

    /// `lstat` of a server path inside the root.
    private func lstatServer(_ path: String, _ info: inout stat) -> Bool {
        lstatCount += 1
        return lstat(settings.root.hostPath(path), &info) == 0
    }

    /// The target of the symlink at server path `path`, as written in the link.
    private func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(settings.root.hostPath(path), &buffer, 4096)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `0755`: four octal digits, as `stat -c %a` would print with the special bits.
    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    // MARK: Alerts

    /// Fires, fires again (what is wrong changed) or resolves each rule's alert about each of `programs`.
    func report(_ programs: Set<String>, eventTime: UInt64) {
        for program in programs.sorted() {
            for index in rules.indices {
                let key = "\(index)\u{0}\(program)"
                guard let lines = programsByRule[index][program] else {
                    if firing.removeValue(forKey: key) != nil {
                        emit(
                            index,
                            program: program,
                            lines: [],
                            verdict: nil,
                            outcome: "root no longer runs it",
                            eventTime: eventTime
                        )
                    }
                    continue
                }
                let verdict = verdicts[program] ?? Verdict()
                if verdict.findings.isEmpty {
                    if firing.removeValue(forKey: key) != nil {
                        let outcome =
                            verdict.missing
                            ? "it is gone, and only root can write where it was"
                            : "only root can write it and the directories above it"
                        emit(
                            index,
                            program: program,
                            lines: lines,
                            verdict: nil,
                            outcome: outcome,
                            eventTime: eventTime
                        )
                    }
                    continue
                }
                // Fires once; again only when someone new can write (a writer fixed meanwhile says nothing).
                let writers = Set(verdict.findings.flatMap(\.writers))
                if let known = firing[key], writers.isSubset(of: known) { continue }
                firing[key] = writers.union(firing[key] ?? [])
                emit(index, program: program, lines: lines, verdict: verdict, outcome: "", eventTime: eventTime)
            }
        }
    }

    /// Sends one alert of rule `index` about `program`: firing with `verdict`, resolved without.
    private func emit(
        _ index: Int,
        program: String,
        lines: [RootProgram],
        verdict: Verdict?,
        outcome: String,
        eventTime: UInt64
    ) {
        let compiled = rules[index]
        guard compiled.sinkMask != 0 else { return }
        var source = lines.first?.source ?? ""
        if lines.count > 1 { source += " and \(lines.count - 1) more" }
        var path = program
        var writer = ""
        var reason = ""
        var fix = ""
        if let verdict, let first = verdict.findings.first {
            path = first.path
            var writers: [String] = []
            for finding in verdict.findings {
                for name in finding.writers where !writers.contains(name) { writers.append(name) }
            }
            writer = writers.joined(separator: ", ")
            var reasons = verdict.findings.map(\.reason)
            if verdict.missing {
                reasons.insert("the program does not exist, so whoever can write there can create it", at: 0)
            }
            if !verdict.links.isEmpty { reasons.append("through symlink " + verdict.links.joined(separator: ", ")) }
            if let note = lines.first?.note { reasons.append(note) }
            reason = reasons.joined(separator: "; ")
            let paths = verdict.findings.map(\.path).joined(separator: " ")
            fix =
                "chown root:root \(paths) && chmod go-w \(paths) (or move the program where only root can write, such as /usr/local/sbin, and change \(lines.first?.source ?? "where it is run"))"
        }
        let state: AlertState = verdict == nil ? .resolved : .firing
        let fields: (String) -> String? = { name in
            switch name {
            case "rule": compiled.rule.id
            case "severity": compiled.rule.severity.rawValue
            case "host": self.settings.host
            case "program": program
            case "path": path
            case "source": source
            case "writer": writer
            case "reason": reason
            case "fix": fix
            case "outcome": outcome
            default: nil
            }
        }
        let message = compiled.rule.renderMessage(resolved: state == .resolved, fields)
        var labels = compiled.labels
        labels["program"] = program
        labels["source"] = source
        if !writer.isEmpty { labels["writer"] = writer }
        if !outcome.isEmpty { labels["outcome"] = outcome }
        outlet.sendRuleAlert(
            host: settings.host,
            rule: compiled.rule.id,
            severity: compiled.rule.severity.rawValue,
            instance: program,
            state: state,
            version: "escalation:\(Clock.monotonicNanoseconds())",
            kind: "escalation.writable_by_others",
            path: path,
            message: message,
            labels: labels,
            sinkMask: compiled.sinkMask,
            eventTime: eventTime
        )
    }
}

extension EscalationWatcher.Looked {
    /// A path and the inode `lstat` found there.
    init(path: String, isDirectory: Bool, info: stat) {
        self.init(path: path, isDirectory: isDirectory, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}
