import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// The kernel's events applied to the process table, and the table built from `/proc`.
extension ProcessWatcher {
    /// Applies one event. Threads are not processes: a thread's fork or exit (pid ≠ tgid) changes nothing.
    func handle(_ record: ProcessEventRecord) {
        counters.processEvents.add(1, ordering: .relaxed)
        switch record.kind {
        case .fork:
            guard record.childPid == record.childTgid else { return }
            forked(child: record.childTgid, parent: record.parentTgid, parentThread: record.parentPid)
        case .exec:
            executed(pid: record.tgid)
        case .exit:
            guard record.pid == record.tgid else {
                if !exitRecords.isEmpty { exitRecords.removeValue(forKey: record.pid) }
                return
            }
            let named = exitRecords.isEmpty ? nil : exitRecords.removeValue(forKey: record.tgid)
            if named == nil && connector.exitRecords != nil { exitsWithoutRecord.insert(record.tgid) }
            exited(record, exitRecord: named)
        case .uid:
            guard record.pid == record.tgid else { return }
            userChanged(pid: record.tgid, real: record.realId, effective: record.effectiveId)
        case .comm:
            guard record.pid == record.tgid, var entry = table[record.tgid] else { return }
            entry.comm = record.commString
            rematch(&entry, executed: false)
        default:
            return
        }
    }

    // MARK: Table

    /// A new process: it runs its parent's program until it execs, so it inherits the parent's details.
    private func forked(child: Int32, parent: Int32, parentThread: Int32) {
        var entry =
            table[parent].map { parentEntry -> ProcessEntry in
                var copy = parentEntry
                copy.captured = false
                return copy
            } ?? ProcessEntry(pid: child, parent: parent)
        entry.pid = child
        entry.parent = parent
        // Forked by the rotation watcher (a postrotate command): Vigil's action, like its own restarts.
        if parent == ownPid && ActionThreads.contains(parentThread) { entry.startedByVigil = true }
        // Unknown until it execs (0): a zombie check then accepts the pid without comparing start times,
        // which saves a /proc read on every fork.
        entry.startTime = 0
        table[child] = entry
        listenerCue(pid: child, executed: false)
        updateThresholdMembership(entry)
        for index in entry.matched { changeRunning(index, by: 1, entry: entry) }
        for index in everyProcessRules {
            if case .expectRunning = rules[index].process.trigger { changeRunning(index, by: 1, entry: entry) }
        }
    }

    /// A process ran a new program: read what it is now, and judge exec and root rules.
    private func executed(pid: Int32) {
        let parentFromTable = table[pid]?.parent ?? 0
        var entry =
            capture(pid: pid)
            ?? {
                // Gone (reaped) before /proc could be read. It ran some other program than the parent it was
                // forked from, so it keeps none of the parent's names: no rule matches it by a wrong name.
                var unknown = table[pid] ?? ProcessEntry(pid: pid, parent: parentFromTable)
                unknown.executable = ""
                unknown.comm = ""
                unknown.commandLine = ""
                unknown.captured = false
                counters.processDetailsMissed.add(1, ordering: .relaxed)
                return unknown
            }()
        if entry.parent == 0 { entry.parent = parentFromTable }
        entry.matched = table[pid]?.matched ?? []
        entry.startedByVigil = (table[pid]?.startedByVigil ?? false) || children[pid] != nil
        if pid == probePid { probeSawExec = true }
        rematch(&entry, executed: true)
        listenerCue(pid: pid, executed: true)
    }

    /// Recomputes which rules match `entry` after its program, name or users changed; moves expected
    /// counts, and judges exec and root rules when it ran a new program.
    func rematch(_ entry: inout ProcessEntry, executed: Bool) {
        let before = entry.matched
        var now: [Int] = []
        for index in specificRules where rules[index].selector.matches(entry, parent: { table[$0] }) {
            now.append(index)
        }
        entry.matched = now
        table[entry.pid] = entry
        updateThresholdMembership(entry)
        for index in before where !now.contains(index) { changeRunning(index, by: -1, entry: entry) }
        for index in now where !before.contains(index) { changeRunning(index, by: 1, entry: entry) }
        guard executed else { return }
        for index in chain(now, everyProcessRules) {
            switch rules[index].process.trigger {
            case .events(let kinds, _) where kinds.contains(.exec):
                emitProcessEvent(index, entry, event: "exec", exit: nil)
            case .root:
                if entry.effectiveUser == 0 && !isAllowedRoot(index, entry) {
                    emitProcessEvent(index, entry, event: "root", exit: nil)
                }
            default:
                break
            }
            // A restart waiting for its new process: this exec is it.
            if now.contains(index) || rules[index].selector.matchesEverything {
                confirmRestart(rule: index, entry: entry)
            }
        }
    }

    private func userChanged(pid: Int32, real: UInt32, effective: UInt32) {
        guard var entry = table[pid] else { return }
        let wasRoot = entry.realUser == 0 || entry.effectiveUser == 0
        entry.realUser = real
        entry.effectiveUser = effective
        rematch(&entry, executed: false)
        guard !wasRoot && (real == 0 || effective == 0) else { return }
        for index in chain(entry.matched, everyProcessRules) {
            if case .root = rules[index].process.trigger, !isAllowedRoot(index, entry) {
                emitProcessEvent(index, entry, event: "root", exit: nil, status: "became root")
            }
        }
    }

    /// A root process the rule accepts: on its allow list, Vigil itself, or started by Vigil's own actions.
    /// An unknown executable is never on the list (the safe side).
    func isAllowedRoot(_ index: Int, _ entry: ProcessEntry) -> Bool {
        if entry.startedByVigil || entry.pid == ownPid { return true }
        guard !entry.executable.isEmpty else { return false }
        return rules[index].allowed.contains { $0.matches(entry.executable) }
    }

    /// A process ended (its thread group leader exited).
    private func exited(_ record: ProcessEventRecord, exitRecord: TaskExitStats.Exit?) {
        let pid = record.tgid
        var entry = table.removeValue(forKey: pid) ?? ProcessEntry(pid: pid, parent: record.parentTgid)
        if entry.parent == 0 || entry.parent == 1 && record.parentTgid > 1 { entry.parent = record.parentTgid }
        if !entry.captured && entry.comm.isEmpty && entry.executable.isEmpty {
            nameFromExitRecord(&entry, exitRecord)
        }
        // The connector's exit_code is the wait status the parent will collect.
        let exit = ExitStatus(waitStatus: record.rawExitStatus)
        // One of Vigil's own children (the probe, a restart or reload command): reap it and report. A
        // command that is itself the service is also judged as the service below.
        if let purpose = children.removeValue(forKey: pid) {
            reapChild(pid: pid, purpose: purpose, exit: exit)
            if case .probe = purpose { return }
        }
        processEnded(entry, exit: exit)
        listenerOwnerExited(pid: pid)
        // Zombies whose parent just died are reparented and reaped by init or a subreaper: check soon.
        if !zombies.isEmpty {
            for (zombiePid, watch) in zombies where watch.entry.parent == pid {
                schedule(
                    .zombieCheck(pid: zombiePid, startTime: watch.entry.startTime),
                    at: Clock.monotonicNanoseconds() + 10_000_000
                )
            }
        }
    }

    /// A process gone before its exec could be read in /proc: its name and real uid from the kernel's exit
    /// record, and the rules that match it now. Only rules that judge an end are taken: it was never
    /// counted as running, and it never passed an exec or root check.
    private func nameFromExitRecord(_ entry: inout ProcessEntry, _ exitRecord: TaskExitStats.Exit?) {
        // The record was read before the exec was handled, or is still in the socket.
        var found = exitRecord
        if found == nil && connector.exitRecords != nil {
            // Not kept yet: its record is in the socket (this exit was just noted as without one, so that a
            // record read later is dropped; this read is the exception).
            exitsWithoutRecord.remove(entry.pid)
            receiveExitRecords()
            found = exitRecords.removeValue(forKey: entry.pid)
        }
        guard let found, !found.comm.isEmpty else { return }
        entry.comm = found.comm
        entry.realUser = found.realUser
        if entry.parent <= 1 && found.parent > 1 { entry.parent = found.parent }
        // The record names the executable by device and inode: one of the rules' own paths, if it is that file.
        if found.executableInode != 0 {
            for path in literalExecutables {
                var info = stat()
                guard stat(path, &info) == 0, UInt64(info.st_ino) == found.executableInode,
                    UInt64(info.st_dev) == found.executableDevice
                else { continue }
                entry.executable = path
                break
            }
        }
        counters.processNamedAtExit.add(1, ordering: .relaxed)
        entry.matched = specificRules.filter { index in
            switch rules[index].process.trigger {
            case .events, .zombie: rules[index].selector.matches(entry, parent: { table[$0] })
            case .expectRunning, .root, .threshold: false
            }
        }
    }

    /// Judges the end of a process (from its exit event, or found gone by a resynchronisation).
    func processEnded(_ entry: ProcessEntry, exit: ExitStatus?) {
        thresholdProcessEnded(entry)
        for index in chain(entry.matched, everyProcessRules) {
            let rule = rules[index]
            switch rule.process.trigger {
            case .expectRunning:
                changeRunning(index, by: -1, entry: entry, exit: exit)
            case .events(let kinds, let filter):
                if kinds.contains(.exit), filter?.matches(code: exit?.code, signal: exit?.signal) ?? true {
                    emitProcessEvent(index, entry, event: "exit", exit: exit)
                    requestActions(index, entry: entry)
                } else if kinds.contains(.coreDump), exit?.coreDumped == true {
                    emitProcessEvent(index, entry, event: "core-dump", exit: exit)
                    requestActions(index, entry: entry)
                }
            case .zombie:
                if let exit { watchForZombie(entry, rule: index, exit: exit) }
            case .root, .threshold:
                break
            }
        }
    }

    /// Moves the count of an `expect: running` rule; fires when it drops below the minimum, resolves when
    /// it reaches it again.
    func changeRunning(_ index: Int, by delta: Int, entry: ProcessEntry, exit: ExitStatus? = nil) {
        guard case .expectRunning(let minimum) = rules[index].process.trigger else { return }
        let count = max(0, (runningCount[index] ?? 0) + delta)
        runningCount[index] = count
        guard started else { return }
        let firing = expectFiring[index] ?? false
        if count < minimum && !firing {
            expectFiring[index] = true
            emitExpected(index, state: .firing, entry: entry, exit: exit)
            requestActions(index, entry: entry)
        } else if count >= minimum && firing {
            expectFiring[index] = false
            emitExpected(index, state: .resolved, entry: entry, exit: nil)
        }
    }

    // MARK: /proc

    /// Reads what a process is now; nil when it is gone.
    func capture(pid: Int32) -> ProcessEntry? {
        ProcessEntry.capture(
            pid: pid,
            procfs: procfs,
            users: needsUsers,
            commandLine: needsCommandLine,
            cgroup: needsCgroup
        )
    }

    /// Builds the table from `/proc` (at start-up), or brings it back in line after events were lost:
    /// processes gone meanwhile are judged as ended (status unknown), new ones as started.
    func walkProc(resynchronising: Bool) {
        let pids = procfs.pids()
        var seen = Set<Int32>()
        seen.reserveCapacity(pids.count)
        // New processes (or a pid now used by another process), and known ones whose program changed
        // while events were lost (their exec was lost: the table still has what they forked from).
        var found: [ProcessEntry] = []
        var changed: [ProcessEntry] = []
        for pid in pids {
            guard var entry = capture(pid: pid) else { continue }
            seen.insert(pid)
            guard let known = table[pid] else {
                found.append(entry)
                continue
            }
            guard known.startTime == entry.startTime || known.startTime == 0 else {
                found.append(entry)  // the pid was reused
                continue
            }
            if known.captured && known.executable == entry.executable && known.comm == entry.comm { continue }
            entry.matched = known.matched
            entry.startedByVigil = known.startedByVigil
            if known.executable == entry.executable && known.comm == entry.comm {
                table[pid] = entry  // the same program, read now (it had only what its fork inherited)
                rematch(&entry, executed: false)
            } else {
                changed.append(entry)
            }
        }
        if resynchronising {
            let restarted = Set(found.map(\.pid))  // the pid runs another process than the table says
            for (pid, entry) in table where !seen.contains(pid) || restarted.contains(pid) {
                table[pid] = nil
                processEnded(entry, exit: nil)
            }
        }
        // Into the table first (new ones match nothing yet; changed ones keep what they matched, so counts
        // move right), parents before children so `parent:` selectors find them; then judge each.
        for var entry in found {
            entry.matched = []
            table[entry.pid] = entry
        }
        for entry in changed { table[entry.pid] = entry }
        for pid in (found + changed).map(\.pid).sorted() {
            guard var current = table[pid] else { continue }
            rematch(&current, executed: resynchronising)
        }
        if !resynchronising {
            started = true
            reviewRootProcesses()
            for index in rules.indices {
                guard case .expectRunning(let minimum) = rules[index].process.trigger else { continue }
                let count = runningCount[index] ?? 0
                if count < minimum {
                    expectFiring[index] = true
                    emitExpected(index, state: .firing, entry: nil, exit: nil)
                    requestActions(index, entry: nil)
                } else {
                    expectFiring[index] = false
                }
            }
        }
    }

    /// The seed's `ps -U root` review, once at start-up: every running root process a root rule does not
    /// allow. Kernel threads (children of kthreadd, no executable) are the kernel's, not programs.
    private func reviewRootProcesses() {
        let rootRules = rules.indices.filter { if case .root = rules[$0].process.trigger { true } else { false } }
        guard !rootRules.isEmpty else { return }
        for entry in table.values.sorted(by: { $0.pid < $1.pid }) {
            guard entry.effectiveUser == 0, !entry.executable.isEmpty, entry.pid != 2, entry.parent != 2 else {
                continue
            }
            for index in rootRules where rules[index].selector.matchesEverything || entry.matched.contains(index) {
                if !isAllowedRoot(index, entry) { emitProcessEvent(index, entry, event: "root", exit: nil) }
            }
        }
    }

    /// After `ENOBUFS` (the socket buffer overflowed and the kernel dropped events, counted as they came):
    /// resynchronise from /proc and alert once for the burst.
    func eventsLost() {
        // Vigil's own children whose exit was among the lost events: reap them now, not leave zombies.
        for (pid, purpose) in children {
            guard let status = try? Spawn.poll(pid) else { continue }
            children[pid] = nil
            reapChild(pid: pid, purpose: purpose, exit: ExitStatus(waitStatus: status))
        }
        let before = table.count
        walkProc(resynchronising: true)
        let count = counters.processEventsLost.load(ordering: .relaxed)
        let burst = lossesSinceResync
        lossesSinceResync = 0
        emitInternal(
            rule: "vigil.process_events_lost",
            severity: .warning,
            kind: "vigil.process_events_lost",
            message:
                "The kernel dropped process events: the proc connector's socket buffer of \(connector.receiveBuffer.effective / 1024) KiB overflowed \(burst) time(s) in this burst (\(count) so far). Vigil walked /proc again (\(before) → \(table.count) processes); processes that ended in between were judged with status unknown. See docs/troubleshooting.md#process-events-lost",
            version: "lost:\(count):\(Clock.realtime().seconds)"
        )
    }

    // MARK: Probe

    func startProbe() {
        guard settings.probe else { return }
        do {
            let pid = try Spawn.start("/bin/true", streams: .null)
            probePid = pid
            children[pid] = .probe
        } catch {
            startFailure = "Failed to probe process events: could not start '/bin/true': \(error)"
        }
    }

    func probeFailureMessage() -> String {
        if let startFailure { return startFailure }
        let seen = probeSawExec ? "its exec but not its exit" : (probeSawExit ? "its exit but not its exec" : "nothing")
        return
            "Failed to receive process events: Vigil subscribed to the proc connector and started '/bin/true' (pid \(probePid)), but within \(settings.probeTimeoutNanoseconds / 1_000_000) ms the kernel reported \(seen). "
            + Self.silenceExplanation()
            + " Run 'vigil probe' for details, or start with --no-process-rules to run without process rules. See docs/troubleshooting.md#proc-connector-silent"
    }
}

extension ProcessWatcher {
    /// Why the kernel may send no process events here: a second, independent probe names the cause it
    /// detects (namespaces, the subscription's acknowledgement, CAP_NET_ADMIN, lost events).
    static func silenceExplanation() -> String {
        let probe = ConnectorProbe.run(timeout: 500)
        if let cause = probe.likelyCause { return "Likely cause: \(cause)." }
        return "A second probe did see events, so they arrive only intermittently here."
    }
}

/// Both lists of rule indices in turn, without building a third array per event (`a + b` allocates).
func chain(_ first: [Int], _ second: [Int]) -> RuleIndices { RuleIndices(first: first, second: second) }

struct RuleIndices: Sequence, IteratorProtocol {
    let first: [Int]
    let second: [Int]
    private var position = 0

    init(first: [Int], second: [Int]) {
        self.first = first
        self.second = second
    }

    mutating func next() -> Int? {
        defer { position += 1 }
        if position < first.count { return first[position] }
        let index = position - first.count
        return index < second.count ? second[index] : nil
    }
}

/// How a process ended: an exit code, or a signal (and whether it dumped core).
struct ExitStatus {
    var code: Int32?
    var signal: Int32?
    var coreDumped: Bool

    /// From a wait status (`waitpid(2)`, or the connector's exit event, which carries the same).
    init(waitStatus status: Int32) {
        let decoded = WaitStatus(status)
        code = decoded.exitCode
        signal = decoded.terminatingSignal
        coreDumped = decoded.coreDumped
    }

    /// "exited with code 3", "killed by SIGKILL", "killed by SIGSEGV (core dumped)".
    var description: String {
        if let signal {
            return "killed by \(SignalNames.name(of: signal))" + (coreDumped ? " (core dumped)" : "")
        }
        return "exited with code \(code ?? 0)"
    }
}
