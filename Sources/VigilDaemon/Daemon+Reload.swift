import Logging
import VigilCore
public import VigilRules
import VigilSystem

/// What a reload changed: rules by id, and the watchers it rebuilt.
public struct ReloadSummary: Sendable, CustomStringConvertible {
    public var added: [String] = []
    public var removed: [String] = []
    public var changed: [String] = []
    public var unchanged = 0
    /// Threads rebuilt (`vigil-log`); the matcher (`vigil-match`) is changed in place.
    public var rebuilt: [String] = []

    public var description: String {
        func part(_ ids: [String], _ what: String) -> String? {
            guard !ids.isEmpty else { return nil }
            let shown = ids.prefix(8).joined(separator: ", ") + (ids.count > 8 ? ", …" : "")
            return "\(ids.count) \(what) (\(shown))"
        }
        let parts = [part(added, "added"), part(removed, "removed"), part(changed, "changed")].compactMap { $0 }
        let rules = parts.isEmpty ? "no rule changed" : parts.joined(separator: ", ")
        let threads = rebuilt.isEmpty ? "" : "; restarted \(rebuilt.joined(separator: ", "))"
        return "\(rules), \(unchanged) unchanged\(threads)"
    }
}

extension Daemon {
    /// Runs `newSet` instead of the running rules, without a gap: watchers whose rules did not change are
    /// not touched; the matcher swaps its rules between two batches on its own thread, keeping every file's
    /// state and the firing state of unchanged rules; other watchers with changed rules are stopped (after
    /// handling what the kernel already reported; the log watcher saves its offsets) and built again with
    /// their kernel socket, outlet and process table handed over. Conditions of rebuilt watchers are
    /// inherited by the firing ledger: found still true, they are not sent again; not asserted again within
    /// their rule's confirmation time, they are resolved (`runDueSweeps`).
    ///
    /// Throws, changing nothing, when the sinks changed (they are opened once; a restart applies them).
    /// Call from the thread that called `start`.
    public func reload(to compiled: RuleSet) throws(DaemonError) -> ReloadSummary {
        let newSet = dryRun ? Self.dryRunRules(compiled) : compiled
        let oldSet = ruleSet
        if oldSet.sinks != newSet.sinks {
            let before = Set(oldSet.sinks.map(\.name))
            let after = Set(newSet.sinks.map(\.name))
            var names = before.symmetricDifference(after)
            for sink in newSet.sinks where oldSet.sinks.first(where: { $0.name == sink.name }) != sink {
                names.insert(sink.name)
            }
            // Where each is written now (a removed one: where it was).
            let places = names.sorted().map { name in
                let sink = newSet.sinks.first { $0.name == name } ?? oldSet.sinks.first { $0.name == name }
                return sink.map { "'\(name)' (\($0.location))" } ?? "'\(name)'"
            }
            throw DaemonError(
                "The alert sinks changed: \(places.joined(separator: ", ")); sinks are opened once, so restart vigil to apply that (systemctl restart vigil), or undo the change. The running rules and sinks are kept"
            )
        }
        // New rules may need what start-up dropped: said with their positions (a restart gets it back).
        let changedRules = newSet.rules.filter { rule in
            !oldSet.rules.contains { $0.enabled && rule.enabled && $0.sameDefinition(as: rule) }
        }
        let (_, spawnsPrograms) = capabilityNeeds(
            of: changedRules,
            held: Capabilities.current().permitted,
            reloading: true
        )
        // A start-up without programs to run dropped the bounding set: an exec: added now runs weakened.
        if spawnsPrograms && !Capabilities.current().bounding.has(.dacOverride) {
            for rule in changedRules where rule.actions.contains(where: { if case .exec = $0 { true } else { false } })
            {
                logger.warning(
                    "\(rule.location): warning: rule '\(rule.id)' has exec:, whose program will run as root without root's capabilities (start-up dropped the bounding set: no rule ran programs then); restart vigil to give them back"
                )
            }
        }
        var summary = ReloadSummary()
        let oldByID = Dictionary(oldSet.rules.filter(\.enabled).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let newByID = Dictionary(newSet.rules.filter(\.enabled).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for rule in newSet.rules where rule.enabled {
            if let old = oldByID[rule.id] {
                if old.sameDefinition(as: rule) { summary.unchanged += 1 } else { summary.changed.append(rule.id) }
            } else {
                summary.added.append(rule.id)
            }
        }
        summary.removed = oldSet.rules.filter { $0.enabled && newByID[$0.id] == nil }.map(\.id)
        let now = Clock.monotonicNanoseconds()
        for kind in WatcherKind.allCases {
            let before = kind.rules(of: oldSet.rules)
            let after = kind.rules(of: newSet.rules)
            if before.count == after.count && zip(before, after).allSatisfy({ $0.sameDefinition(as: $1) }) { continue }
            let judgedAgain: [Rule]
            if kind == .files {
                // In place: unchanged rules keep their state; removed and changed ones are judged again.
                judgedAgain = before.filter { old in !after.contains { $0.sameDefinition(as: old) } }
                worker.ledger.inherit(rules: Set(judgedAgain.map(\.id)))
                matcher.reload(after)
            } else {
                judgedAgain = before
                worker.ledger.inherit(rules: Set(before.map(\.id)))
                do {
                    try rebuild(kind, rules: after)
                } catch {
                    // Back to the rules that ran: they were built before, so they build again.
                    try? rebuild(kind, rules: before)
                    throw DaemonError("\(error); the running \(kind.threadName) rules are kept")
                }
                summary.rebuilt.append(kind.threadName)
            }
            for rule in judgedAgain {
                let delay = newByID[rule.id].map(Self.reassertionNanoseconds) ?? 0
                pendingSweeps.append(
                    PendingSweep(
                        deadline: now + delay,
                        rules: [rule.id],
                        reason: newByID[rule.id] == nil ? .ruleRemoved : .reloaded
                    )
                )
            }
        }
        board?.update(rules: newSet.rules.filter(\.enabled))
        worker.exec?.update(rules: newSet.rules)
        ruleSet = newSet
        return summary
    }

    /// Stops the `kind` watcher (after it handled what the kernel reported) and starts one with `rules`,
    /// handing over its outlet, and for processes the connector and the table. Returns once it is ready.
    private func rebuild(_ kind: WatcherKind, rules: [Rule]) throws(DaemonError) {
        guard let outlet = outlets[kind] else { return }
        switch kind {
        case .files:
            matcher.reload(rules)
        case .logs:
            let previous = logWatcher
            try Self.replace(&logWatcher, &logThread, kind) { () throws(DaemonError) in
                let watcher = try Self.makeLogWatcher(wiring, rules: rules, outlet: outlet)
                // The old thread has ended (replace halts it first): its windows can be read.
                if let watcher, let previous { watcher.inheritCountWindows(from: previous) }
                return watcher
            }
        case .rotation:
            try Self.replace(&rotationWatcher, &rotationThread, kind) { () throws(DaemonError) in
                try Self.makeRotationWatcher(wiring, rules: rules, outlet: outlet)
            }
        case .permissions:
            try Self.replace(&permissionWatcher, &permissionThread, kind) { () throws(DaemonError) in
                try Self.makePermissionWatcher(wiring, rules: rules, outlet: outlet)
            }
        case .escalation:
            try Self.replace(&escalationWatcher, &escalationThread, kind) { () throws(DaemonError) in
                try Self.makeEscalationWatcher(wiring, rules: rules, outlet: outlet)
            }
        case .system:
            let logRules = WatcherKind.logs.rules(of: ruleSet.rules)
            try Self.replace(&systemWatcher, &systemThread, kind) { () throws(DaemonError) in
                try Self.makeSystemWatcher(wiring, rules: rules, logRules: logRules, outlet: outlet)
            }
        case .processes:
            guard wiring.options.processRules else { return }
            let old = processWatcher
            Self.halt(old, watcherThread)
            processWatcher = nil
            watcherThread = nil
            guard !rules.isEmpty else {
                old?.connector.close()
                return
            }
            // The connector is handed over: events queued in it wait for the new watcher.
            let connector: ProcConnector
            if let handed = old?.connector { connector = handed } else { connector = try Self.openConnector(wiring) }
            let watcher: ProcessWatcher
            do {
                watcher = try Self.makeProcessWatcher(
                    wiring,
                    rules: rules,
                    connector: connector,
                    probe: old == nil && wiring.options.probeProcessEvents,
                    outlet: outlet
                )
            } catch {
                if old == nil { connector.close() }
                throw error
            }
            watcher.inheritedTable = old?.table
            processWatcher = watcher
            watcherThread = Self.launch(watcher, kind)
            watcher.ready.wait()
            if let failure = watcher.startFailure { throw DaemonError(failure) }
        }
    }

    /// Stops `watcher`'s thread (after it handled what the kernel reported), then starts the one `make`
    /// builds (nil: the kind has no rules left) and waits until it is ready.
    private static func replace<Watcher: WatcherThread>(
        _ watcher: inout Watcher?,
        _ thread: inout ThreadHandle?,
        _ kind: WatcherKind,
        make: () throws(DaemonError) -> Watcher?
    ) throws(DaemonError) {
        halt(watcher, thread)
        watcher = nil
        thread = nil
        watcher = try make()
        thread = launch(watcher, kind)
        watcher?.ready.wait()
    }

    /// How long after its watcher starts a rule that is still true has asserted it again: 0 for rules judged
    /// before the watcher is ready; the window or hold for rules that need time to see it.
    static func reassertionNanoseconds(_ rule: Rule) -> UInt64 {
        let second: UInt64 = 1_000_000_000
        switch rule.subject {
        case .pressure(let subject):
            return UInt64(max(0, subject.windowMicroseconds)) * 1000 + 2 * second
        case .listening:
            return 2 * second
        case .log(let subject):
            return UInt64(max(0, subject.count?.windowMilliseconds ?? 0)) * 1_000_000
        case .process(let subject):
            switch subject.trigger {
            case .threshold(let threshold):
                return UInt64(max(0, threshold.holdMilliseconds + 2 * threshold.sampleMilliseconds)) * 1_000_000
                    + second
            case .zombie(let grace):
                return UInt64(max(0, grace)) * 1_000_000 + second
            case .expectRunning, .events, .root:
                return 0
            }
        case .config, .file, .permissions, .rotate, .disk, .escalation:
            return 0
        }
    }

    /// Sends the resolution of every inherited condition whose confirmation time passed without it being
    /// asserted again; returns the monotonic deadline of the next sweep, nil when none is pending. Call from
    /// the thread that called `start`.
    public func runDueSweeps(now: UInt64) -> UInt64? {
        var due: [PendingSweep] = []
        pendingSweeps.removeAll { sweep in
            guard sweep.deadline <= now else { return false }
            due.append(sweep)
            return true
        }
        for sweep in due {
            for condition in worker.ledger.sweep(rules: sweep.rules) { sendResolution(condition, reason: sweep.reason) }
        }
        return pendingSweeps.map(\.deadline).min()
    }

    /// The resolution of a condition that nothing asserted again, to the sinks its rule names (every sink
    /// for a rule that is gone and for Vigil's own conditions).
    private func sendResolution(_ condition: FiringLedger.Condition, reason: PendingSweep.Reason) {
        let masks = SinkMasks(sinkNames: wiring.sinkNames)
        let rule = ruleSet.rules.first { $0.enabled && $0.id == condition.rule }
        let mask = rule.map { masks.mask(for: $0) } ?? masks.all
        let why: String
        switch reason {
        case .restarted: why = "no longer true when vigil started"
        case .reloaded: why = "no longer true when the rules were reloaded"
        case .ruleRemoved: why = "its rule was removed"
        }
        let time = Clock.realtime()
        let record = AlertRecord(
            id: AlertIdentity.id(
                fingerprint: condition.fingerprint,
                state: .resolved,
                version: "swept:\(time.seconds)"
            ),
            timeSeconds: time.seconds,
            timeNanoseconds: time.nanoseconds,
            host: wiring.host,
            rule: condition.rule,
            severity: condition.severity,
            state: .resolved,
            kind: condition.kind,
            path: condition.path,
            message: "Resolved (\(why)): \(condition.message)",
            fingerprint: condition.fingerprint,
            labels: ["resolved_by": reason.rawValue]
        )
        ownOutlet.send(record, sinkMask: mask, eventTime: 0)
    }
}

/// Conditions inherited by a reload or a restart, to resolve at `deadline` unless asserted again.
struct PendingSweep {
    enum Reason: String {
        case restarted = "restart"
        case reloaded = "reload"
        case ruleRemoved = "rule_removed"
    }

    var deadline: UInt64
    /// Rule ids.
    var rules: Set<String>
    var reason: Reason
}

// MARK: Firing conditions across restarts

extension Daemon {
    /// Host path of the firing conditions' state file.
    var firingStatePath: String { wiring.stateDirectory + "/firing.state" }

    /// Reads back the conditions that were firing when Vigil last stopped (before the watchers start, so
    /// their start-up judgement finds them inherited) and schedules their sweep: each rule's conditions are
    /// resolved unless asserted again within its confirmation time after start-up.
    func restoreFiringState() {
        switch WholeFileReader.read(firingStatePath, limit: 16 << 20) {
        case .missing:
            return
        case .busy:
            logger.warning("The firing state file '\(firingStatePath)' is held open by a writer; starting afresh")
        case .failed(let error):
            logger.warning("Failed to read the firing state: \(error); conditions firing before are fired again")
        case .content(let bytes, _):
            guard let conditions = FiringLedger.decode(String(decoding: bytes, as: UTF8.self)) else {
                logger.warning(
                    "The firing state file '\(firingStatePath)' is not a Vigil state file (damaged?); conditions firing before are fired again if still true. Remove the file to silence this"
                )
                return
            }
            worker.ledger.restore(conditions)
            restoredRules = Set(conditions.map(\.rule))
            if !conditions.isEmpty {
                logger.info(
                    "\(conditions.count) condition(s) were firing when vigil stopped; not sent again while still true"
                )
            }
        }
    }

    /// Schedules the sweep of the restored conditions, from the moment the watchers are ready.
    func scheduleRestartSweeps() {
        let now = Clock.monotonicNanoseconds()
        for id in restoredRules {
            let rule = ruleSet.rules.first { $0.enabled && $0.id == id }
            // Vigil's own conditions (a sink failing, a spool filling) are asserted again by the worker
            // within its retries.
            // The rules compiled (or vigil would not run): an earlier failed reload is over at once.
            let delay: UInt64 =
                rule.map(Self.reassertionNanoseconds)
                ?? (id.hasPrefix("vigil.") && id != "vigil.reload_failed" ? 60_000_000_000 : 0)
            pendingSweeps.append(
                PendingSweep(
                    deadline: now + delay,
                    rules: [id],
                    reason: rule == nil && !id.hasPrefix("vigil.") ? .ruleRemoved : .restarted
                )
            )
        }
        restoredRules = []
    }

    /// Rung when the firing conditions changed: then call `saveFiringState`.
    public var firingStateDescriptor: CInt { worker.ledger.changed.descriptor }

    /// Writes the firing conditions to the state file when they changed since the last save (`durable`: with
    /// fsync, at stop). A failure is logged once and retried at the next change.
    public func saveFiringState(durable: Bool) {
        _ = worker.ledger.changed.drain()
        let count = worker.ledger.changeCount
        guard !wiring.options.dryRun, count != savedFiringChanges || durable else { return }
        do throws(AtomicFileError) {
            try AtomicFile.replace(firingStatePath, with: Array(worker.ledger.encoded().utf8), durable: durable)
            savedFiringChanges = count
            if reportedFiringStateFailure {
                logger.notice("The firing state file '\(firingStatePath)' is written again")
                reportedFiringStateFailure = false
            }
        } catch {
            if !reportedFiringStateFailure {
                logger.error(
                    "Failed to save the firing conditions to '\(error.path)': \(error.reason); a restart may send them again. Check that the state directory exists and vigil may write it (--state-dir, StateDirectory= in vigil.service)"
                )
                reportedFiringStateFailure = true
            }
        }
    }
}

// MARK: Vigil's own reload alerts

extension Daemon {
    /// Sends `vigil.reload_failed` (firing, one per failed attempt, each with its own id): what failed, with
    /// the first diagnostics. The running rules stay.
    public func reportReloadFailure(_ lines: [String], cause: String) {
        counters.recordReload(succeeded: false)
        reloadFailures += 1
        let errors = lines.filter { $0.contains(": error: ") }
        let shown = (errors.isEmpty ? lines : errors).prefix(3).joined(separator: "; ")
        let more = max(0, (errors.isEmpty ? lines.count : errors.count) - 3)
        let time = Clock.realtime()
        ownOutlet.sendRuleAlert(
            host: wiring.host,
            rule: "vigil.reload_failed",
            severity: "error",
            instance: wiring.host,
            state: .firing,
            version: "\(time.seconds).\(time.nanoseconds):\(reloadFailures)",
            kind: "vigil.reload_failed",
            path: nil,
            message:
                "Reloading the rules (\(cause)) failed; the running rules are kept: \(shown)\(more > 0 ? " (and \(more) more)" : "")",
            labels: ["errors": String(max(1, errors.count)), "cause": cause],
            sinkMask: SinkMasks(sinkNames: wiring.sinkNames).all,
            eventTime: 0
        )
    }

    /// After a successful reload: resolves `vigil.reload_failed` if an earlier attempt failed.
    public func reportReloadSuccess(_ summary: ReloadSummary, cause: String) {
        counters.recordReload(succeeded: true)
        guard reloadFailures > 0 else { return }
        reloadFailures = 0
        let time = Clock.realtime()
        ownOutlet.sendRuleAlert(
            host: wiring.host,
            rule: "vigil.reload_failed",
            severity: "error",
            instance: wiring.host,
            state: .resolved,
            version: "\(time.seconds).\(time.nanoseconds)",
            kind: "vigil.reload_failed",
            path: nil,
            message: "Resolved: the rules were reloaded (\(cause)): \(summary)",
            sinkMask: SinkMasks(sinkNames: wiring.sinkNames).all,
            eventTime: 0
        )
    }
}
