import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// One `exec:` of a rule, as the runner keeps it: what to run, for how long, and where it was written (for
/// the failure alerts).
struct ExecCommand: Sendable {
    /// The rule's id.
    let rule: String
    /// `file:line` of the `exec:` in the rule file.
    let location: String
    /// argv; `argv[0]` is the program's absolute path (checked when the rules were loaded).
    let argv: [String]
    /// SIGTERM after this long, SIGKILL `ExecRunner.killGraceNanoseconds` later.
    let timeoutNanoseconds: UInt64
    /// Also run for resolutions.
    let onResolved: Bool

    init(rule: String, spec: ExecSpec) {
        self.rule = rule
        location = "\(spec.location.file):\(spec.location.line)"
        argv = spec.command
        timeoutNanoseconds = UInt64(max(spec.timeoutMilliseconds, 1)) * 1_000_000
        onResolved = spec.onResolved
    }

    /// The argv as `vigil run --dry-run` and the failure alerts print it: `[/bin/sh, -c, 'echo hi']`.
    var argvText: String {
        "["
            + argv.map { $0.contains(where: { $0 == " " || $0 == "," || $0 == "'" }) ? "'\($0)'" : $0 }
            .joined(separator: ", ") + "]"
    }
}

/// One program to run: the command, and the environment built (once) from the alert that caused it.
struct ExecRequest: Sendable {
    let command: ExecCommand
    /// `KEY=value` strings: a fixed `PATH` and the alert's fields as `VIGIL_*`.
    let environment: [String]
    /// The id of the alert that caused it, named in the failure alert.
    let alertID: String
}

/// Runs the programs of the rules' `exec:` actions on a thread of its own (`vigil-exec`), so that neither a
/// matcher nor a watcher nor the action worker ever waits for one.
///
/// A producer's `AlertOutlet` hands over each alert of a rule with `exec:` (`submit`, on the producer's
/// thread: one dictionary lookup and the environment built once per program) into a bounded queue and rings
/// this thread's eventfd. The thread spawns at once with `posix_spawn` (never fork: the daemon is threaded),
/// so the only hop between the event and the program is one eventfd wake-up. It waits for its children in
/// `epoll` on their pidfds and on the socket that takes their standard output and error; a child that
/// outlives its `timeout:` gets SIGTERM and, 2 s later, SIGKILL, both sent to its process group.
///
/// At most `concurrency` programs run at once; up to `queueLimit` more wait. A request beyond that is
/// dropped, counted (`execsDropped`) and reported: one `vigil.exec_dropped` alert per minute at most, never
/// silently. A program that cannot start, exits non-zero, dies of a signal or times out raises one
/// `vigil.exec_failed` event naming the rule, its file:line, the program, the status and the first line of
/// what it printed.
final class ExecRunner: @unchecked Sendable {
    // @unchecked Sendable: `table` and `pending` are behind locks; everything else mutable is used only by
    // the runner's thread after `run()` starts.

    /// Programs running at once.
    static let concurrency = 16
    /// Requests waiting while `concurrency` programs run.
    static let queueLimit = 256
    /// How much of a failed program's output is kept for its alert.
    static let outputLimit = 1024
    /// From SIGTERM to SIGKILL.
    static let killGraceNanoseconds: UInt64 = 2_000_000_000
    /// At most one `vigil.exec_dropped` alert per window.
    static let dropWindowNanoseconds: UInt64 = 60_000_000_000
    /// The `PATH` the programs get: the daemon's own environment is not passed on.
    static let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Rung by a producer after queueing (or dropping) a request.
    let doorbell: EventFD
    /// Rung by `Daemon.stop`: running programs are stopped (SIGTERM, then SIGKILL) and the thread returns.
    let shutdown: EventFD
    private let counters: PipelineCounters
    private let logger: Logger
    private let host: String
    /// True under `vigil run --dry-run`: nothing is spawned; the alert says what would have run.
    private let dryRun: Bool
    /// The `exec:` actions by rule id; replaced whole at each reload.
    private let table: Locked<[String: [ExecCommand]]>
    /// Requests waiting for the thread, and requests dropped since the thread last looked.
    private let pending = Locked(Pending())
    /// The runner's own way to the sinks, for `vigil.exec_failed` and `vigil.exec_dropped`.
    private let outlet: AlertOutlet

    /// The queue between the producers and the thread.
    private struct Pending {
        var requests: [ExecRequest] = []
        var dropped: UInt64 = 0
        var lastDroppedRule = ""
    }

    /// A program running now.
    private struct Running {
        var request: ExecRequest
        var child: CapturedChild
        var output: [UInt8] = []
        var outputOpen = true
        /// Monotonic time of the spawn, and when SIGTERM is due.
        var started: UInt64
        var termAt: UInt64
        /// When SIGKILL is due, once SIGTERM was sent.
        var killAt: UInt64?
        /// SIGTERM was sent because the timeout passed (not because vigil is stopping).
        var timedOut = false
    }

    private var slots: [Running?] = Array(repeating: nil, count: ExecRunner.concurrency)
    private var running = 0
    /// Drops not yet reported, and when the last `vigil.exec_dropped` went out (0: never).
    private var unreportedDrops: UInt64 = 0
    private var dropRule = ""
    private var lastDropReport: UInt64 = 0

    private static let doorbellTag: UInt64 = 1
    private static let shutdownTag: UInt64 = 2
    /// Child i's pidfd is tagged `childTagBase + 2i`, its output `childTagBase + 2i + 1`.
    private static let childTagBase: UInt64 = 16

    init(
        rules: [Rule],
        host: String,
        dryRun: Bool,
        outlet: AlertOutlet,
        counters: PipelineCounters,
        logger: Logger
    ) throws {
        doorbell = try EventFD()
        shutdown = try EventFD()
        table = Locked(Self.commands(of: rules))
        self.host = host
        self.dryRun = dryRun
        self.outlet = outlet
        self.counters = counters
        self.logger = logger
    }

    /// The `exec:` actions of the enabled rules, by rule id.
    static func commands(of rules: [Rule]) -> [String: [ExecCommand]] {
        var table: [String: [ExecCommand]] = [:]
        for rule in rules where rule.enabled {
            for case .exec(let spec) in rule.actions {
                table[rule.id, default: []].append(ExecCommand(rule: rule.id, spec: spec))
            }
        }
        return table
    }

    /// Takes the `exec:` actions of a reloaded rule set; programs already running keep running.
    func update(rules: [Rule]) {
        let commands = Self.commands(of: rules)
        table.withLock { $0 = commands }
    }

    // MARK: Producers

    /// Called on a producer's thread for an alert of a rule whose sink mask asks for exec: queues each of
    /// the rule's programs that applies to the record's state, with its environment. Under `--dry-run`,
    /// nothing is queued; returns the text for the alert's `dry_run` label (`would exec [argv]`).
    func submit(_ record: AlertRecord) -> String? {
        guard let commands = table.withLock({ $0[record.rule] }) else { return nil }
        var environment: [String]?
        var wouldRun: [String] = []
        var queued = false
        for command in commands where record.state != .resolved || command.onResolved {
            if dryRun {
                wouldRun.append("would exec \(command.argvText)")
                logger.notice("Dry run: rule '\(record.rule)' would exec \(command.argvText)")
                continue
            }
            let env = environment ?? Self.environment(for: record)
            environment = env
            let request = ExecRequest(command: command, environment: env, alertID: record.id)
            pending.withLock { pending in
                if pending.requests.count < Self.queueLimit {
                    pending.requests.append(request)
                } else {
                    pending.dropped &+= 1
                    pending.lastDroppedRule = record.rule
                    counters.execsDropped.add(1, ordering: .relaxed)
                }
            }
            queued = true
        }
        if queued { doorbell.ring() }
        return wouldRun.isEmpty ? nil : wouldRun.joined(separator: "; ")
    }

    /// The program's environment: a fixed `PATH`, the record's fields, and one `VIGIL_<LABEL>` per label
    /// (upper-cased, anything but letters and digits as `_`); a label never replaces a field. The record's
    /// path is both `VIGIL_PATH` and, unless a label is called `file`, `VIGIL_FILE`. The message
    /// and labels are the alert's, already masked: a secret in a log line reaches the program as the alert
    /// shows it.
    static func environment(for record: AlertRecord) -> [String] {
        var time: [UInt8] = []
        RFC3339.format(seconds: record.timeSeconds, nanoseconds: record.timeNanoseconds, into: &time)
        var environment = [
            path,
            "VIGIL_RULE=\(record.rule)",
            "VIGIL_STATE=\(record.state.rawValue)",
            "VIGIL_SEVERITY=\(record.severity)",
            "VIGIL_ID=\(record.id)",
            "VIGIL_MESSAGE=\(record.message)",
            "VIGIL_TIME=\(String(decoding: time, as: UTF8.self))",
            "VIGIL_KIND=\(record.kind)",
            "VIGIL_HOST=\(record.host)",
            "VIGIL_FINGERPRINT=\(record.fingerprint)",
        ]
        var taken: Set<String> = [
            "RULE", "STATE", "SEVERITY", "ID", "MESSAGE", "TIME", "KIND", "HOST", "FINGERPRINT",
        ]
        if let path = record.path {
            environment.append("VIGIL_PATH=\(path)")
            taken.insert("PATH")
        }
        for key in record.labels.keys.sorted() {
            let name = variableName(key)
            guard !taken.contains(name), let value = record.labels[key] else { continue }
            taken.insert(name)
            environment.append("VIGIL_\(name)=\(value.contains("\0") ? value.replacing("\0", with: "") : value)")
        }
        // The file an alert is about, under the name a script expects whichever rule kind raised it.
        if let path = record.path, !taken.contains("FILE") { environment.append("VIGIL_FILE=\(path)") }
        return environment
    }

    /// A label's variable name after `VIGIL_`: upper-cased ASCII letters and digits, `_` for anything else.
    static func variableName(_ label: String) -> String {
        String(
            decoding: label.utf8.map { byte -> UInt8 in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - 32
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): byte
                default: UInt8(ascii: "_")
                }
            },
            as: UTF8.self
        )
    }

    // MARK: The thread

    /// The thread body (`vigil-exec`): runs until `shutdown` rings and every program it started is reaped.
    func run() {
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.add(doorbell.descriptor, tag: Self.doorbellTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
        } catch {
            preconditionFailure("ExecRunner: epoll setup failed: \(error)")
        }
        var stopping = false
        var ready: [UInt64] = []
        ready.reserveCapacity(8)
        while true {
            _ = doorbell.drain()
            if stopping {
                discardQueue()
            } else {
                startWaiting(epoll)
            }
            let now = Clock.monotonicNanoseconds()
            enforceDeadlines(now: now, stopping: stopping)
            reportDrops(now: now)
            if stopping && running == 0 { break }
            let timeout = nextTimeout(now: now)
            ready.removeAll(keepingCapacity: true)
            do {
                try epoll.wait(timeoutMilliseconds: timeout) { ready.append($0) }
            } catch {
                preconditionFailure("ExecRunner: epoll_wait failed: \(error)")
            }
            for tag in ready {
                if tag == Self.shutdownTag {
                    // Drained, or epoll would wake at once again while the programs are being stopped.
                    _ = shutdown.drain()
                    stopping = true
                } else if tag >= Self.childTagBase {
                    let index = Int((tag - Self.childTagBase) / 2)
                    if (tag - Self.childTagBase) % 2 == 1 {
                        readOutput(index, epoll)
                    } else {
                        reapIfExited(index, epoll)
                    }
                }
            }
            // Without pidfds (before Linux 5.3), look for exits on every wake-up.
            for index in slots.indices where slots[index]?.child.pidfd == -1 { reapIfExited(index, epoll) }
        }
    }

    /// Starts queued programs while fewer than `concurrency` run.
    private func startWaiting(_ epoll: borrowing Epoll) {
        let free = Self.concurrency - running
        let (requests, dropped, rule) = pending.withLock { pending in
            let count = min(pending.requests.count, free)
            let taken = Array(pending.requests.prefix(count))
            pending.requests.removeFirst(count)
            let dropped = pending.dropped
            pending.dropped = 0
            return (taken, dropped, pending.lastDroppedRule)
        }
        if dropped > 0 {
            unreportedDrops &+= dropped
            dropRule = rule
        }
        for request in requests { start(request, epoll) }
    }

    /// Spawns one program into a free slot, or reports why it could not start.
    private func start(_ request: ExecRequest, _ epoll: borrowing Epoll) {
        guard let index = slots.firstIndex(where: { $0 == nil }) else { return }
        let argv = request.command.argv
        let child: CapturedChild
        do {
            child = try Spawn.startCapturing(
                argv[0],
                arguments: Array(argv.dropFirst()),
                environment: request.environment
            )
        } catch {
            counters.execsStarted.add(1, ordering: .relaxed)
            fail(
                request,
                outcome: "could not be started: \(error.errno)",
                status: ["error": "\(error.errno)"],
                output: []
            )
            return
        }
        counters.execsStarted.add(1, ordering: .relaxed)
        let now = Clock.monotonicNanoseconds()
        slots[index] = Running(
            request: request,
            child: child,
            started: now,
            termAt: now &+ request.command.timeoutNanoseconds
        )
        running += 1
        let tag = Self.childTagBase + UInt64(index) * 2
        if child.pidfd >= 0 { try? epoll.add(child.pidfd, tag: tag) }
        try? epoll.add(child.output, tag: tag + 1)
    }

    /// Reads what child `index` printed (the first `outputLimit` bytes are kept).
    private func readOutput(_ index: Int, _ epoll: borrowing Epoll) {
        guard var entry = slots[index], entry.outputOpen else { return }
        if !Spawn.drainCaptured(entry.child.output, into: &entry.output, limit: Self.outputLimit) {
            entry.outputOpen = false
            epoll.remove(entry.child.output)
        }
        slots[index] = entry
    }

    /// Reaps child `index` if it exited, and reports a failure.
    private func reapIfExited(_ index: Int, _ epoll: borrowing Epoll) {
        guard var entry = slots[index] else { return }
        let status: Int32
        do {
            guard let exited = try Spawn.poll(entry.child.pid) else { return }
            status = exited
        } catch {
            // ECHILD: reaped elsewhere; nothing more can be known.
            status = 0
        }
        if entry.outputOpen {
            _ = Spawn.drainCaptured(entry.child.output, into: &entry.output, limit: Self.outputLimit)
        }
        if entry.child.pidfd >= 0 {
            epoll.remove(entry.child.pidfd)
            Syscall.close(entry.child.pidfd)
        }
        epoll.remove(entry.child.output)
        Syscall.close(entry.child.output)
        slots[index] = nil
        running -= 1
        finish(entry, status: status)
    }

    /// Judges a reaped child: exit 0 within its time is success; anything else is a `vigil.exec_failed`.
    private func finish(_ entry: Running, status: Int32) {
        let signal = status & 0x7f
        let exitCode = (status >> 8) & 0xff
        let timeout = ExecRunner.durationText(entry.request.command.timeoutNanoseconds)
        if entry.killAt != nil && !entry.timedOut {
            // Stopped with vigil (SIGTERM at shutdown): said in the log, not alerted as the program's failure.
            let command = entry.request.command
            logger.notice(
                "Rule '\(command.rule)' (\(command.location)): exec '\(command.argv[0])' was stopped because vigil is stopping"
            )
        } else if entry.killAt != nil {
            let how = signal != 0 ? "killed by \(Self.signalName(signal))" : "exited with status \(exitCode)"
            fail(
                entry.request,
                outcome: "timed out after \(timeout) and was stopped (SIGTERM, then SIGKILL 2 s later): \(how)",
                status: [
                    "timeout": timeout,
                    signal != 0 ? "signal" : "exit_code": signal != 0 ? Self.signalName(signal) : String(exitCode),
                ],
                output: entry.output
            )
        } else if signal != 0 {
            fail(
                entry.request,
                outcome: "was killed by \(Self.signalName(signal))",
                status: ["signal": Self.signalName(signal)],
                output: entry.output
            )
        } else if exitCode != 0 {
            fail(
                entry.request,
                outcome: "exited with status \(exitCode)",
                status: ["exit_code": String(exitCode)],
                output: entry.output
            )
        }
    }

    /// Sends SIGTERM to programs past their timeout (and to every one when stopping), SIGKILL 2 s later; both
    /// to the child's process group, so what a `sh -c` started stops too.
    private func enforceDeadlines(now: UInt64, stopping: Bool) {
        for index in slots.indices {
            guard var entry = slots[index] else { continue }
            if let killAt = entry.killAt {
                if now >= killAt {
                    _ = kill(-entry.child.pid, SIGKILL)
                    _ = kill(entry.child.pid, SIGKILL)
                    entry.killAt = .max
                }
            } else if now >= entry.termAt || stopping {
                entry.timedOut = now >= entry.termAt
                _ = kill(-entry.child.pid, SIGTERM)
                _ = kill(entry.child.pid, SIGTERM)
                entry.killAt = now &+ Self.killGraceNanoseconds
            }
            slots[index] = entry
        }
    }

    /// Milliseconds until the next deadline (a SIGTERM, a SIGKILL, a drop report), -1 for none.
    private func nextTimeout(now: UInt64) -> CInt {
        var next = UInt64.max
        for entry in slots {
            guard let entry else { continue }
            let due = entry.killAt ?? entry.termAt
            if due != .max { next = min(next, due) }
            if entry.child.pidfd == -1 { next = min(next, now &+ 50_000_000) }
        }
        if unreportedDrops > 0 { next = min(next, lastDropReport &+ Self.dropWindowNanoseconds) }
        guard next != .max else { return -1 }
        guard next > now else { return 0 }
        return CInt(min((next - now) / 1_000_000 + 1, UInt64(CInt.max)))
    }

    /// At shutdown: requests not started are logged and forgotten.
    private func discardQueue() {
        let count = pending.withLock { pending in
            let count = pending.requests.count
            pending.requests.removeAll()
            return count
        }
        if count > 0 { logger.warning("\(count) exec request(s) not started: vigil is stopping") }
    }

    /// One `vigil.exec_dropped` per window, with the number dropped since the last one.
    private func reportDrops(now: UInt64) {
        guard unreportedDrops > 0, lastDropReport == 0 || now &- lastDropReport >= Self.dropWindowNanoseconds
        else { return }
        let count = unreportedDrops
        unreportedDrops = 0
        lastDropReport = now
        let message =
            "\(count) exec request(s) dropped (last of rule '\(dropRule)'): \(Self.concurrency) programs were running and \(Self.queueLimit) waiting; make the programs quicker, or the rules fire less often"
        logger.error("\(message)")
        outlet.sendRuleAlert(
            host: host,
            rule: "vigil-exec",
            severity: "error",
            instance: host,
            state: .event,
            version: "dropped:\(Clock.realtime().seconds):\(count)",
            kind: "vigil.exec_dropped",
            path: nil,
            message: message,
            labels: ["dropped": String(count), "rule": dropRule],
            sinkMask: SinkMasks.everySink,
            eventTime: 0
        )
    }

    /// Counts and reports a program that failed: `vigil.exec_failed`, naming the rule, where its `exec:` is
    /// written, the program, what happened and the first line it printed.
    private func fail(_ request: ExecRequest, outcome: String, status: [String: String], output: [UInt8]) {
        counters.execsFailed.add(1, ordering: .relaxed)
        let command = request.command
        let firstLine = Self.firstLine(output)
        var labels = status
        labels["command"] = command.argv[0]
        labels["location"] = command.location
        labels["alert_id"] = request.alertID
        if !firstLine.isEmpty { labels["output"] = firstLine }
        let message =
            "Rule '\(command.rule)' (\(command.location)): exec '\(command.argv[0])' \(outcome)"
            + (firstLine.isEmpty ? "" : ": \(firstLine)")
        logger.warning("\(message)")
        outlet.sendRuleAlert(
            host: host,
            rule: command.rule,
            severity: "error",
            instance: "\(command.rule) exec \(command.argv[0])",
            state: .event,
            version: "exec:\(request.alertID):\(Clock.monotonicNanoseconds())",
            kind: "vigil.exec_failed",
            path: nil,
            message: message,
            labels: labels,
            sinkMask: SinkMasks.everySink,
            eventTime: 0
        )
    }

    /// The first non-empty line of a program's output, at most 200 characters, control bytes dropped.
    static func firstLine(_ output: [UInt8]) -> String {
        let line = output.split(separator: UInt8(ascii: "\n")).first { !$0.allSatisfy { $0 == 13 || $0 == 32 } }
        guard let line else { return "" }
        let text = String(decoding: line.filter { $0 >= 32 && $0 != 127 }, as: UTF8.self)
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }

    /// `SIGKILL (9)`: the name of a signal number (Linux numbering) and the number.
    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
            9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
        ]
        return "\(names[signal] ?? "signal") (\(signal))"
    }

    /// A timeout as rules write it: `10s`, `1500ms`.
    static func durationText(_ nanoseconds: UInt64) -> String {
        let milliseconds = nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}
