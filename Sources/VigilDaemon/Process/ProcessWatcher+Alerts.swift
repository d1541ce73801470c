import VigilCore
import VigilRules
import VigilSystem

// Alert records of process rules. The message is the rule's template over the process's fields; command
// lines are masked (`password=…`, `--token …`) before any field reaches a template.
extension ProcessWatcher {
    /// An event rule fired (exec, exit, core dump, a root process).
    func emitProcessEvent(
        _ index: Int,
        _ entry: ProcessEntry,
        event: String,
        exit: ExitStatus?,
        status: String? = nil
    ) {
        let rule = rules[index].rule
        let base = self.fields(rule, entry, event: event, exit: exit)
        let fields: (String) -> String? = { field in field == "status" ? status ?? base(field) : base(field) }
        emit(
            index,
            state: .event,
            kind: "process.\(event)",
            message: rule.message.render(fields),
            instance: "name:" + entry.name,
            version:
                "\(event):\(entry.pid):\(entry.startTime):\(eventTime == 0 ? Clock.monotonicNanoseconds() : eventTime)",
            entry: entry,
            exit: exit
        )
    }

    /// An `expect: running` rule fired (none running) or resolved (one runs again).
    func emitExpected(_ index: Int, state: AlertState, entry: ProcessEntry?, exit: ExitStatus?) {
        let rule = rules[index].rule
        guard case .expectRunning(let minimum) = rules[index].process.trigger else { return }
        let count = runningCount[index] ?? 0
        let fallback = ProcessEntry(pid: 0, parent: 0)
        let base = fields(rule, entry ?? fallback, event: state == .firing ? "missing" : "running", exit: exit)
        // Firing: the rule's process (the entry that left may have become another program); resolved: the one
        // that runs now.
        let name = state == .firing ? ruleProcessName(index) : (entry?.name ?? ruleProcessName(index))
        let fields: (String) -> String? = { field in
            switch field {
            case "count": String(count)
            case "minimum": String(minimum)
            case "name": name
            case "pid", "ppid", "exe", "argv", "user", "uid", "euid", "parent", "unit", "cgroup":
                entry == nil ? "(none)" : base(field)
            case "status": exit?.description ?? (entry == nil ? "not running at start-up" : "running")
            default: base(field)
            }
        }
        let message = rule.renderMessage(resolved: state == .resolved, fields)
        emit(
            index,
            state: state,
            kind: state == .firing ? "process.missing" : "process.running",
            message: message,
            instance: "expect",
            version: "\(state.rawValue):\(entry?.pid ?? 0):\(entry?.startTime ?? 0):\(Clock.monotonicNanoseconds())",
            entry: entry,
            exit: exit
        )
    }

    func emitZombie(_ index: Int, _ watch: ZombieWatch, state: AlertState) {
        let rule = rules[index].rule
        guard case .zombie(let grace) = rules[index].process.trigger else { return }
        let base = fields(rule, watch.entry, event: "zombie", exit: watch.exit)
        let fields: (String) -> String? = { field in
            field == "grace" ? Durations.text(milliseconds: grace) : base(field)
        }
        let message = rule.renderMessage(resolved: state == .resolved, fields)
        emit(
            index,
            state: state,
            kind: "process.zombie",
            message: message,
            instance: "zombie:\(watch.entry.pid):\(watch.entry.startTime):\(watch.exitedAt)",
            version: state.rawValue,
            entry: watch.entry,
            exit: nil,
            extraLabels: ["parent_pid": String(watch.entry.parent)]
        )
    }

    /// An `above:` rule fired for a process (held above the limit) or resolved (back at or below, exited).
    func emitThreshold(
        _ index: Int,
        entry: ProcessEntry,
        sample: ProcessSampler.Sample,
        state: AlertState,
        since: UInt64,
        now: UInt64,
        status: String?
    ) {
        let rule = rules[index].rule
        guard case .threshold(let threshold) = rules[index].process.trigger else { return }
        let base = fields(rule, entry, event: "threshold", exit: nil)
        let held = Durations.text(milliseconds: Int((now >= since ? now - since : 0) / 1_000_000))
        let fields: (String) -> String? = { field in
            switch field {
            case "cpu": sample.cpuPercent.map(Self.percentText) ?? "(not measured yet)"
            case "memory": Self.percentText(sample.memoryPercent)
            case "rss": Self.bytesText(sample.rssBytes)
            case "threshold": Self.thresholdText(threshold)
            case "held": held
            case "status": status ?? "above \(Self.thresholdText(threshold)) for \(held)"
            default: base(field)
            }
        }
        let message = rule.renderMessage(resolved: state == .resolved, fields)
        emit(
            index,
            state: state,
            kind: "process.threshold",
            message: message,
            instance: "threshold:\(entry.pid):\(sample.startTime)",
            version: String(since),
            entry: entry.pid == 0 ? nil : entry,
            exit: nil,
            extraLabels: [
                "threshold": Self.thresholdText(threshold), "cpu": fields("cpu") ?? "",
                "memory": fields("memory") ?? "",
                "rss": String(sample.rssBytes), "held": held,
            ]
        )
    }

    /// An action's outcome (restarted, failed, flapping, reloaded).
    func emitAction(
        _ index: Int,
        kind: String,
        severity: Severity,
        message: String,
        version: String,
        entry: ProcessEntry? = nil
    ) {
        emit(
            index,
            state: .event,
            kind: kind,
            message: message,
            instance: "action",
            version: version,
            entry: entry ?? lastTrigger[index],
            exit: nil,
            severity: severity
        )
    }

    /// The fields of a process for message templates.
    func fields(_ rule: Rule, _ entry: ProcessEntry, event: String, exit: ExitStatus?) -> (String) -> String? {
        let host = settings.host
        let root = settings.root
        return { field in
            switch field {
            case "rule": rule.id
            case "severity": rule.severity.rawValue
            case "host": host
            case "pid": String(entry.pid)
            case "ppid": String(entry.parent)
            case "name": entry.name.isEmpty ? "pid \(entry.pid)" : entry.name
            case "exe": entry.executable.isEmpty ? "(unknown)" : Self.serverPath(entry.executable, root: root)
            case "argv": CommandLineMasking.mask(entry.commandLine)
            case "user": entry.realUser == .max ? "(unknown)" : self.displayUsers.userName(entry.realUser)
            case "uid": entry.realUser == .max ? "(unknown)" : String(entry.realUser)
            case "euid": entry.effectiveUser == .max ? "(unknown)" : String(entry.effectiveUser)
            case "parent": self.table[entry.parent].map { $0.name } ?? "pid \(entry.parent)"
            case "unit": entry.unit ?? ""
            case "cgroup": entry.cgroup
            case "event": event
            case "code": exit?.code.map(String.init) ?? "(none)"
            case "signal": exit?.signal.map { SignalNames.name(of: $0) } ?? "(none)"
            case "core": exit?.coreDumped == true ? "true" : "false"
            case "status":
                exit?.description
                    ?? (event == "exec" || event == "root"
                        ? "started" : event == "exit" ? "exited (status unknown: events were lost)" : event)
            case "restarts": String(self.restartCount(rule: rule.id))
            default: nil
            }
        }
    }

    /// The process a rule is about, from its selector: the first name, else the first executable's base name.
    func ruleProcessName(_ index: Int) -> String {
        let selector = rules[index].process.selector
        if let name = selector.names.first { return name }
        if let exe = selector.executables.first { return String(exe.split(separator: "/").last ?? Substring(exe)) }
        return selector.units.first ?? rules[index].rule.id
    }

    private func restartCount(rule id: String) -> Int {
        rules.first { $0.rule.id == id }?.restart?.history.count ?? 0
    }

    /// A host path inside `--root` shown as the server path it stands for.
    static func serverPath(_ hostPath: String, root: RootedPath) -> String {
        guard !root.root.isEmpty, hostPath.hasPrefix(root.root + "/") else { return hostPath }
        return String(hostPath.dropFirst(root.root.count))
    }

    private func emit(
        _ index: Int,
        state: AlertState,
        kind: String,
        message: String,
        instance: String,
        version: String,
        entry: ProcessEntry?,
        exit: ExitStatus?,
        severity: Severity? = nil,
        extraLabels: [String: String] = [:]
    ) {
        let compiled = rules[index]
        var labels = compiled.labels
        if let entry, entry.pid != 0 {
            labels["pid"] = String(entry.pid)
            labels["process"] = entry.name
            // The executable too, as rules name it (inside --root), for dedup keys and receivers that group.
            if !entry.executable.isEmpty { labels["exe"] = Self.serverPath(entry.executable, root: settings.root) }
            if entry.realUser != .max { labels["user"] = displayUsers.userName(entry.realUser) }
            if let unit = entry.unit { labels["unit"] = unit }
        }
        if let exit {
            if let code = exit.code { labels["exit_code"] = String(code) }
            if let signal = exit.signal { labels["signal"] = SignalNames.name(of: signal) }
            if exit.coreDumped { labels["core_dumped"] = "true" }
        }
        labels.merge(extraLabels) { $1 }
        outlet.sendRuleAlert(
            host: settings.host,
            rule: compiled.rule.id,
            severity: (severity ?? compiled.rule.severity).rawValue,
            instance: instance,
            state: state,
            version: version,
            kind: kind,
            path: entry.flatMap { $0.executable.isEmpty ? nil : Self.serverPath($0.executable, root: settings.root) },
            message: message,
            labels: labels,
            // A dry run's report goes out even for a rule without `alert`.
            sinkMask: compiled.sinkMask == 0 && extraLabels[DryRun.label] != nil ? allSinks : compiled.sinkMask,
            eventTime: eventTime
        )
    }

    /// A restart or reload a dry run did not do: an alert of kind `process.restart_dry_run` (or reload) with
    /// the action's text in its `dry_run` label, and a notice in the log.
    func emitDryRun(_ index: Int, kind: ServiceSupervisor.Kind, _ text: String) {
        settings.dryRun?.note(rule: rules[index].rule.id, text)
        emit(
            index,
            state: .event,
            kind: "process.\(kind.rawValue)_dry_run",
            message: "Dry run: \(kind.rawValue) of \(displayName(index)) not done: \(text)",
            instance: "action",
            version: "\(kind.rawValue)-dry-run:\(Clock.monotonicNanoseconds())",
            entry: lastTrigger[index],
            exit: nil,
            extraLabels: [DryRun.label: text]
        )
    }

    func emitInternal(rule: String, severity: Severity, kind: String, message: String, version: String) {
        outlet.sendVigilAlert(
            host: settings.host,
            rule: rule,
            severity: severity.rawValue,
            kind: kind,
            message: message,
            version: version,
            sinkMask: allSinks,
            eventTime: eventTime
        )
    }
}

/// Masks secrets in a command line before it reaches an alert: the value of `key=value` and
/// `--key=value` when the key names a secret (`password`, `token`, …), and the argument after a
/// `--password`-style flag.
enum CommandLineMasking {
    static func mask(_ line: String) -> String {
        var out: [String] = []
        var maskNext = false
        for word in line.split(separator: " ", omittingEmptySubsequences: false) {
            if maskNext {
                out.append(SecretKeys.mask(String(word)))
                maskNext = false
                continue
            }
            let trimmed = word.drop { $0 == "-" }
            if let equals = trimmed.firstIndex(of: "=") {
                let key = String(trimmed[..<equals])
                if SecretKeys.isSecret(key) {
                    let prefix = word[..<word.index(after: word.firstIndex(of: "=")!)]
                    out.append(String(prefix) + SecretKeys.mask(String(trimmed[trimmed.index(after: equals)...])))
                    continue
                }
            } else if word.hasPrefix("-") && SecretKeys.isSecret(String(trimmed)) {
                maskNext = true
            }
            out.append(String(word))
        }
        return out.joined(separator: " ")
    }
}
