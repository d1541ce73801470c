import Logging
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// Restart and reload: systemctl where systemd is PID 1, else the rule's command, else a signal to the
// matching processes. Commands run with posix_spawn (never fork in a threaded process, never a shell),
// in a new session with default signal handling. A restart is confirmed by the new process's exec.
extension ProcessWatcher {
    /// How an action reaches the service.
    enum Mechanism {
        case systemctl(path: String, unit: String)
        case command([String])
        case signal(Int32)
        /// None applies here; the text says why and what to add.
        case unavailable(String)
    }

    /// The rule fired: ask its supervisors what to do.
    func requestActions(_ index: Int, entry: ProcessEntry?) {
        if let entry { lastTrigger[index] = entry }
        for kind in [ServiceSupervisor.Kind.restart, .reload] {
            guard var supervisor = kind == .restart ? rules[index].restart : rules[index].reload else { continue }
            let now = Clock.monotonicNanoseconds()
            let decision = supervisor.trigger(now: now)
            store(supervisor, index, kind)
            logger.debug("\(kind.rawValue) for rule '\(rules[index].rule.id)': \(decision)")
            switch decision {
            case .runNow:
                perform(index, kind: kind)
            case .runAt(let deadline):
                schedule(.scheduledAction(rule: index, kind: kind), at: deadline)
            case .flapping(let count, let within):
                emitAction(
                    index,
                    kind: "process.\(kind.rawValue)_flapping",
                    severity: .critical,
                    message:
                        "\(displayName(index)) was \(kind == .restart ? "restarted" : "reloaded") \(count) times within \(Durations.text(milliseconds: within)) and keeps failing; Vigil stops \(kind == .restart ? "restarting" : "reloading") it until it runs again or vigil restarts",
                    version: "flap:\(now)"
                )
            case .alreadyPending, .stopped:
                break
            }
        }
    }

    func runScheduledAction(rule index: Int, kind: ServiceSupervisor.Kind) {
        guard var supervisor = kind == .restart ? rules[index].restart : rules[index].reload else { return }
        let due = supervisor.takeScheduled()
        store(supervisor, index, kind)
        if due { perform(index, kind: kind) }
    }

    private func store(_ supervisor: ServiceSupervisor, _ index: Int, _ kind: ServiceSupervisor.Kind) {
        if kind == .restart { rules[index].restart = supervisor } else { rules[index].reload = supervisor }
    }

    private func mechanism(_ index: Int, kind: ServiceSupervisor.Kind, action: ServiceAction) -> Mechanism {
        let entry = lastTrigger[index]
        if settings.systemdRunning, let unit = action.unit.map(Self.unitName) ?? entry?.unit {
            let candidates = ["/usr/bin/systemctl", "/bin/systemctl"]
            if let path = candidates.first(where: { candidate in access(candidate, X_OK) == 0 }) {
                return .systemctl(path: path, unit: unit)
            }
        }
        if var command = action.command {
            command[0] = settings.root.hostPath(command[0])
            return .command(command)
        }
        if let signal = action.signal ?? (kind == .reload ? SIGHUP : nil) { return .signal(signal) }
        if settings.systemdRunning {
            return .unavailable("no systemd unit is known for it (give unit:), and the rule has no command:")
        }
        return .unavailable(
            "systemd is not PID 1 here and the rule gives no command: or signal:; add command: [/path/to/start]"
        )
    }

    /// Runs the restart or reload now.
    private func perform(_ index: Int, kind: ServiceSupervisor.Kind) {
        guard var supervisor = kind == .restart ? rules[index].restart : rules[index].reload else { return }
        let now = Clock.monotonicNanoseconds()
        let verb = kind.rawValue
        switch mechanism(index, kind: kind, action: supervisor.action) {
        case .unavailable(let why):
            emitActionFailure(index, kind: kind, message: "Cannot \(verb) \(displayName(index)): \(why)")
        case .systemctl(_, let unit) where settings.dryRun != nil:
            emitDryRun(index, kind: kind, "would run systemctl \(verb) \(unit)")
        case .command(let argv) where settings.dryRun != nil:
            let shown = [Self.serverPath(argv[0], root: settings.root)] + argv.dropFirst()
            emitDryRun(index, kind: kind, "would run \(shown[0]) (argv \(shown.joined(separator: " ")))")
        case .systemctl(let path, let unit):
            spawnAction(
                index,
                kind: kind,
                argv: [path, verb, unit],
                description: "systemctl \(verb) \(unit)",
                supervisor: &supervisor,
                now: now
            )
        case .command(let argv):
            let shown = [Self.serverPath(argv[0], root: settings.root)] + argv.dropFirst()
            spawnAction(
                index,
                kind: kind,
                argv: argv,
                description: "'\(shown.joined(separator: " "))'",
                supervisor: &supervisor,
                now: now
            )
        case .signal(let signal):
            let targets: [Int32]
            if let selector = rules[index].signalTargets[kind] {
                targets = table.values.filter { entry in
                    entry.pid != ownPid && selector.matches(entry, parent: { table[$0] })
                }.map(\.pid)
            } else if rules[index].selector.matchesEverything {
                targets = []  // never signal every process on the host
            } else {
                targets = table.values.filter { $0.matched.contains(index) && $0.pid != ownPid }.map(\.pid)
            }
            guard !targets.isEmpty else {
                emitActionFailure(
                    index,
                    kind: kind,
                    message:
                        "Cannot \(verb) \(displayName(index)) with \(SignalNames.name(of: signal)): no matching process is running"
                )
                break
            }
            if settings.dryRun != nil {
                let named = targets.sorted().map { pid in "\(pid) (\(table[pid]?.name ?? "?"))" }
                let text =
                    "would send \(SignalNames.name(of: signal)) to pid\(named.count > 1 ? "s" : "") \(named.joined(separator: ", "))"
                emitDryRun(index, kind: kind, text)
                break
            }
            var sent: [Int32] = []
            var failures: [String] = []
            for pid in targets.sorted() {
                if kill(pid, signal) == 0 {
                    sent.append(pid)
                } else {
                    let code = errno
                    failures.append(
                        "pid \(pid): \(String(cString: strerror(code)))"
                            + (code == EPERM ? " (Vigil lacks CAP_KILL)" : "")
                    )
                }
            }
            let via = "\(SignalNames.name(of: signal)) to pid \(sent.map(String.init).joined(separator: ", "))"
            if sent.isEmpty {
                emitActionFailure(
                    index,
                    kind: kind,
                    message: "Failed to \(verb) \(displayName(index)): \(failures.joined(separator: "; "))"
                )
                break
            }
            ran(index, kind: kind, via: via, supervisor: &supervisor, now: now)
            if kind == .reload {
                emitAction(
                    index,
                    kind: "process.reloaded",
                    severity: .info,
                    message: "Reloaded \(displayName(index)): sent \(via)",
                    version: "reload:\(now)"
                )
            }
        }
        store(supervisor, index, kind)
    }

    private func spawnAction(
        _ index: Int,
        kind: ServiceSupervisor.Kind,
        argv: [String],
        description: String,
        supervisor: inout ServiceSupervisor,
        now: UInt64
    ) {
        let entry = lastTrigger[index]
        var environment = [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "VIGIL_RULE=\(rules[index].rule.id)",
            "VIGIL_ACTION=\(kind.rawValue)",
        ]
        if let entry {
            environment.append("VIGIL_PID=\(entry.pid)")
            environment.append("VIGIL_NAME=\(entry.name)")
            if let unit = entry.unit { environment.append("VIGIL_UNIT=\(unit)") }
        }
        // A service started here must not inherit the pipeline's raised priority: run it through nice(1)
        // back at nice 0 (systemctl asks PID 1, whose services never inherit it).
        var argv = argv
        errno = 0
        let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        if errno == 0 && nice < 0 && access("/usr/bin/nice", X_OK) == 0 {
            argv = ["/usr/bin/nice", "-n", String(-nice)] + argv
        }
        do {
            let pid = try Spawn.start(
                argv[0],
                arguments: Array(argv.dropFirst()),
                environment: environment,
                streams: .null,
                newSession: true
            )
            children[pid] = .action(rule: index, kind: kind, description: description)
            ran(index, kind: kind, via: description, supervisor: &supervisor, now: now)
        } catch {
            emitActionFailure(
                index,
                kind: kind,
                message: "Failed to \(kind.rawValue) \(displayName(index)): could not start \(description): \(error)"
            )
        }
    }

    /// Records that the action ran; a restart then waits for its new process's exec until `confirm_within:`.
    private func ran(
        _ index: Int,
        kind: ServiceSupervisor.Kind,
        via: String,
        supervisor: inout ServiceSupervisor,
        now: UInt64
    ) {
        let token = supervisor.ran(now: now, via: via)
        guard kind == .restart else { return }
        schedule(
            .confirmRestart(rule: index, token: token),
            at: now + UInt64(supervisor.action.confirmMilliseconds) * 1_000_000
        )
    }

    /// One of Vigil's own children ended: reap it, and report a failed action.
    func reapChild(pid: Int32, purpose: ChildPurpose, exit: ExitStatus) {
        _ = try? Spawn.poll(pid)
        switch purpose {
        case .probe:
            if pid == probePid { probeSawExit = true }
        case .action(let index, let kind, let description):
            let failed = exit.signal != nil || (exit.code ?? 0) != 0
            if failed {
                if kind == .restart, var supervisor = rules[index].restart {
                    supervisor.failed()
                    rules[index].restart = supervisor
                }
                emitActionFailure(
                    index,
                    kind: kind,
                    message: "Failed to \(kind.rawValue) \(displayName(index)): \(description) \(exit.description)"
                )
            } else if kind == .reload {
                emitAction(
                    index,
                    kind: "process.reloaded",
                    severity: .info,
                    message: "Reloaded \(displayName(index)) with \(description)",
                    version: "reload:\(Clock.monotonicNanoseconds())"
                )
            }
        }
    }

    /// A matching process ran a program: if a restart was waiting for it, report success.
    func confirmRestart(rule index: Int, entry: ProcessEntry) {
        guard var supervisor = rules[index].restart else { return }
        let confirmed = supervisor.processStarted()
        rules[index].restart = supervisor
        guard let (ranAt, via) = confirmed else { return }
        let milliseconds = Double(Clock.monotonicNanoseconds() &- ranAt) / 1e6
        emitAction(
            index,
            kind: "process.restarted",
            severity: .info,
            message:
                "Restarted \(entry.name): new pid \(entry.pid) ran \(Durations.text(milliseconds: milliseconds)) after \(via)",
            version: "restarted:\(entry.pid):\(entry.startTime)",
            entry: entry
        )
    }

    func restartConfirmationExpired(rule index: Int, token: Int) {
        guard var supervisor = rules[index].restart else { return }
        let expired = supervisor.confirmationExpired(token: token)
        rules[index].restart = supervisor
        guard let (_, via) = expired else { return }
        emitActionFailure(
            index,
            kind: .restart,
            message:
                "Failed to restart \(displayName(index)): no matching process started within \(Durations.text(milliseconds: supervisor.action.confirmMilliseconds)) of \(via)"
        )
    }

    private func emitActionFailure(_ index: Int, kind: ServiceSupervisor.Kind, message: String) {
        emitAction(
            index,
            kind: "process.\(kind.rawValue)_failed",
            severity: rules[index].rule.severity,
            message: message,
            version: "\(kind.rawValue)-failed:\(Clock.monotonicNanoseconds())"
        )
    }

    /// What the rule is about, for action messages: the process name, or the rule's first name.
    func displayName(_ index: Int) -> String {
        if let entry = lastTrigger[index] { return entry.name.isEmpty ? "pid \(entry.pid)" : entry.name }
        return ruleProcessName(index)
    }

    /// `upload-service` → `upload-service.service`; names with a suffix stay.
    static func unitName(_ unit: String) -> String {
        let suffixes = [".service", ".scope", ".socket", ".target", ".timer", ".mount", ".path", ".slice"]
        return suffixes.contains(where: unit.hasSuffix) ? unit : unit + ".service"
    }
}

/// Durations as people write them.
enum Durations {
    static func text(milliseconds: Int) -> String { text(milliseconds: Double(milliseconds)) }

    static func text(milliseconds: Double) -> String {
        if milliseconds >= 1000 && milliseconds.truncatingRemainder(dividingBy: 1000) == 0 {
            return "\(Int(milliseconds / 1000)) s"
        }
        if milliseconds >= 10 { return "\(Int(milliseconds.rounded())) ms" }
        let hundredths = (milliseconds * 100).rounded() / 100
        return "\(hundredths) ms"
    }
}
