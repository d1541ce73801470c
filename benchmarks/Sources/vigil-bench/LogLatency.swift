import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Appended log line → alert line: the seed's `SSL certificate verification disabled` line appended to
/// today's unified log (one `write(2)`, `O_APPEND`, as the service writes it), timed to the moment the
/// subject's output line is seen (inotify on that file, the same follower for everyone). Vigil runs the
/// shipped rules; the peer is `tail -F LOG | grep --line-buffered PATTERN >> OUT`, what an SRE writes by
/// hand. Between the measured lines, filler lines that match nothing are appended too (a real log is
/// mostly lines nobody alerts on).
struct LogLatencyResult {
    let subject: String
    var latencies: [UInt64] = []
    var expected = 0
    var missed = 0
    var doubled = 0
    var failures: [String] = []

    mutating func merge(_ other: LogLatencyResult) {
        latencies += other.latencies
        expected += other.expected
        missed += other.missed
        doubled += other.doubled
        failures += other.failures
    }
}

let logLatencyRule = "upload-ssl-verification-disabled-logged"

/// The measured line, numbered so a late line cannot be taken for the next one.
func sslLine(_ number: Int) -> String {
    "2025-04-13 07:15:22 UPLOAD WARN [SSLConnector] SSL certificate verification disabled for endpoint: https://api\(number).analytics-partner.com\n"
}

let fillerLines = (0..<8).map {
    "2025-04-13 07:15:2\($0) UPLOAD INFO [Uploader] batch \($0) uploaded: 1842 records in 0.\($0)3 s\n"
}

/// Today's unified log in the sandbox, opened for appending as the service opens it.
func openUnifiedLog(in sandbox: SeedSandbox) throws(HarnessError) -> CInt {
    let log = sandbox.hostPath(SeedSandbox.unifiedLogPath())
    let fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
    guard fd >= 0 else {
        throw HarnessError(
            "Failed to create '\(log)': \(String(cString: strerror(errno))); check that TMPDIR is writable"
        )
    }
    return fd
}

/// Appends `text` with one write(2), as an application logs a line.
func appendLine(_ fd: CInt, _ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
}

/// A subject of the appended-line scenarios.
enum LogSubject: CaseIterable {
    case vigil
    case vigilExec
    case tailGrep
    case swatch
    case sec
    case fail2ban

    var name: String {
        switch self {
        case .vigil: "vigil"
        case .vigilExec: "vigil (exec)"
        case .tailGrep: "tail -F | grep --line-buffered"
        case .swatch: "swatchdog (exec)"
        case .sec: "SEC (shellcmd)"
        case .fail2ban: "fail2ban (actionban; \(Fail2banPeer.backend))"
        }
    }

    /// Whether it spawns the one-shot per line (the ones vigil (exec) is compared with).
    var spawnsCommand: Bool { self == .swatch || self == .sec || self == .fail2ban }

    /// Lines measured per round: `lines` for vigil and tail (the scenario's own count), fewer for the peers
    /// that start slowly or act slowly.
    func trials(lines: Int, rotation: Bool) -> Int {
        if rotation { return PeerTrials.rotationPerRound }
        switch self {
        case .vigil, .tailGrep: return lines
        case .fail2ban: return min(lines, PeerTrials.fail2banPerRound)
        case .sec: return min(lines, PeerTrials.quick ? 5 : PeerTrials.logPerRound)
        case .vigilExec, .swatch: return min(lines, PeerTrials.logPerRound)
        }
    }

    /// Milliseconds a line's output may take before it counts as missed.
    func missTimeout(rotation: Bool) -> Int {
        rotation || spawnsCommand ? 5_000 : missTimeoutMilliseconds
    }

    /// The line appended for trial `number`: the seed's line; fail2ban's names an address, which it needs.
    func line(_ number: Int) -> String {
        self == .fail2ban ? Fail2banPeer.line(number) : sslLine(number)
    }

    /// The line that proves a peer is reading the log (vigil and vigil (exec) are ready at READY=1).
    func probeLine(_ k: Int) -> String {
        switch self {
        case .tailGrep: "probe \(k) SSL certificate verification disabled for endpoint: probe\n"
        case .fail2ban: Fail2banPeer.probeLine(k)
        default: "probe \(k) ready\n"
        }
    }
}

/// What an output line is.
enum LogOutput: Equatable {
    /// A trial's output; nil when the subject's lines carry no number (swatch and SEC: the next line is the
    /// next trial's, since the harness waits for each).
    case trial(Int?)
    /// A readiness probe's output.
    case probe
    /// Anything else (vigil's alerts of other rules).
    case other
}

/// `https://apiN.analytics-partner.com` → N.
func endpointNumber(_ endpoint: Substring) -> Int? {
    guard endpoint.hasPrefix("https://api"), endpoint.hasSuffix(".analytics-partner.com") else { return nil }
    return Int(endpoint.dropFirst("https://api".count).dropLast(".analytics-partner.com".count))
}

extension LogSubject {
    /// Reads one line of the subject's output.
    func classify(_ line: String) -> LogOutput {
        switch self {
        case .vigil:
            guard JSONField.string(line, "rule") == logLatencyRule,
                let endpoint = JSONField.label(line, "endpoint")
            else { return .other }
            return endpointNumber(Substring(endpoint)).map { .trial($0) } ?? .other
        case .vigilExec:
            return endpointNumber(Substring(line)).map { .trial($0) } ?? .other
        case .tailGrep:
            if line.hasSuffix(" probe") { return .probe }
            guard let range = line.firstRange(of: "endpoint: ") else { return .other }
            return endpointNumber(line[range.upperBound...]).map { .trial($0) } ?? .other
        case .swatch, .sec:
            return line == "probe" ? .probe : line == "match" ? .trial(nil) : .other
        case .fail2ban:
            return Fail2banPeer.classify(line)
        }
    }
}

/// fail2ban as a log peer: a jail on the log with `maxretry = 1` whose action's `actionban` is the one-shot
/// (`<ip>` is what fail2ban passes: the address its filter captured).
enum Fail2banPeer {
    /// `pyinotify` when fail2ban's python has it, else `polling`.
    static let backend: String = {
        let status = (try? ChildProcess(executable: "/usr/bin/python3", arguments: ["-c", "import pyinotify"]))?
            .wait(timeoutMilliseconds: 10_000)
        return status.map { ChildProcess.exitCode($0) == 0 } == true ? "pyinotify" : "polling"
    }()

    static func address(_ number: Int) -> String { "10.1.\(number / 250).\(number % 250 + 1)" }

    /// The seed's line with an address as the endpoint, which the filter captures as `<HOST>`.
    static func line(_ number: Int) -> String {
        "2025-04-13 07:15:22 UPLOAD WARN [SSLConnector] SSL certificate verification disabled for endpoint: https://\(address(number))/\n"
    }

    static func probeLine(_ k: Int) -> String {
        "2025-04-13 07:15:22 UPLOAD WARN [SSLConnector] SSL certificate verification disabled for endpoint: https://10.255.\(k / 250).\(k % 250 + 1)/\n"
    }

    static func classify(_ line: String) -> LogOutput {
        let parts = line.split(separator: ".")
        guard parts.count == 4, parts[0] == "10", let c = Int(parts[2]), let d = Int(parts[3]) else { return .other }
        if parts[1] == "255" { return .probe }
        return parts[1] == "1" ? .trial(c * 250 + d - 1) : .other
    }

    /// Writes the configuration directory (`fail2ban.conf`, `jail.conf`, the filter and the action) under
    /// `work/fail2ban` and returns `fail2ban-server`'s arguments: foreground, its own socket and pid file.
    static func prepare(work: String, log: String, output: String) throws(HarnessError) -> [String] {
        let conf = work + "/fail2ban"
        guard FileTree.makeDirectories(conf + "/filter.d", mode: 0o755),
            FileTree.makeDirectories(conf + "/action.d", mode: 0o755)
        else { throw HarnessError("Failed to create '\(conf)'; check that TMPDIR is writable") }
        try FileSaves.inPlace(
            conf + "/fail2ban.conf",
            """
            [Definition]
            loglevel = INFO
            logtarget = \(work)/fail2ban.log
            syslogsocket = auto
            socket = \(work)/fail2ban.sock
            pidfile = \(work)/fail2ban.pid
            dbfile = :memory:
            dbpurgeage = 1d
            allowipv6 = auto

            """
        )
        try FileSaves.inPlace(
            conf + "/jail.conf",
            """
            [vigil-bench]
            enabled = true
            backend = \(backend)
            logpath = \(log)
            filter = vigil-bench
            action = one-shot
            maxretry = 1
            findtime = 600
            bantime = 86400
            usedns = no
            ignoreself = false

            """
        )
        // datepattern {NONE}: the line's own (seed) date is not now; fail2ban takes the time it read it.
        try FileSaves.inPlace(
            conf + "/filter.d/vigil-bench.conf",
            """
            [Definition]
            failregex = SSL certificate verification disabled for endpoint: https://<HOST>/
            datepattern = {NONE}

            """
        )
        try FileSaves.inPlace(
            conf + "/action.d/one-shot.conf",
            """
            [Definition]
            actionstart =
            actionstop =
            actioncheck =
            actionban = \(oneShot(data: "<ip>", output: output))
            actionunban =

            """
        )
        return [
            "fail2ban-server", "-c", conf, "-f", "-x", "-s", work + "/fail2ban.sock", "-p", work + "/fail2ban.pid",
        ]
    }
}

/// Renames the log away (over `LOG.1`) and creates it again, as logrotate's `create` does; returns the new
/// file's descriptor (the old one closed).
func rotateUnifiedLog(_ fd: CInt, in sandbox: SeedSandbox) throws(HarnessError) -> CInt {
    let log = sandbox.hostPath(SeedSandbox.unifiedLogPath())
    guard rename(log, log + ".1") == 0 else {
        throw HarnessError("Failed to rename '\(log)': \(String(cString: strerror(errno)))")
    }
    close(fd)
    return try openUnifiedLog(in: sandbox)
}

/// Runs one subject on a fresh sandbox: `trials` lines appended (after 0–7 fillers each; with `rotation`,
/// each right after the log was renamed away and created again), each waited for in the subject's output.
func runLogSubject(
    _ subject: LogSubject,
    vigil: String,
    rules: String,
    trials: Int,
    rotation: Bool
) -> LogLatencyResult {
    var result = LogLatencyResult(subject: subject.name)
    guard let sandbox = freshSandbox("bench-log", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    var daemon: DaemonProcess?
    var peer: PeerDaemon?
    defer {
        _ = daemon?.stop()
        peer?.stop()
    }
    do {
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
        let log = sandbox.hostPath(SeedSandbox.unifiedLogPath())
        var fd = try openUnifiedLog(in: sandbox)
        defer { close(fd) }
        let output = work + "/out"
        let follower = try LineFollower(path: output)
        var peerArguments: [String]?
        switch subject {
        case .vigil:
            daemon = try DaemonProcess(
                executable: vigil,
                arguments: ["--rules", rules, "--root", sandbox.root, "--alerts", output, "--no-process-rules"],
                workDirectory: work
            )
        case .vigilExec:
            try writeExecRules(
                from: rules,
                into: work + "/rules",
                rule: logLatencyRule,
                command: ["/bin/sh", "-c", oneShot(data: "$VIGIL_ENDPOINT", output: output)],
                onResolved: false
            )
            try checkRules(vigil: vigil, rules: work + "/rules", work: work)
            daemon = try DaemonProcess(
                executable: vigil,
                arguments: [
                    "--rules", work + "/rules", "--root", sandbox.root, "--alerts", work + "/alerts.jsonl",
                    "--no-process-rules",
                ],
                workDirectory: work
            )
        case .tailGrep:
            peerArguments = [
                "/bin/sh", "-c",
                "exec tail -n 0 -F '\(log)' | grep --line-buffered 'SSL certificate verification disabled' >> '\(output)'",
            ]
        case .swatch:
            guard let swatchdog = requireTool("swatchdog", package: "swatch", failures: &result.failures) else {
                return result
            }
            try FileSaves.inPlace(
                work + "/swatchrc",
                """
                watchfor /SSL certificate verification disabled/
                  exec \(oneShot(data: "match", output: output))
                watchfor /^probe /
                  exec \(oneShot(data: "probe", output: output))

                """
            )
            peerArguments = [
                swatchdog, "--config-file=\(work)/swatchrc", "--tail-file=\(log)", "--script-dir=\(work)",
            ]
        case .sec:
            guard let sec = requireTool("sec", package: "sec", failures: &result.failures) else { return result }
            try FileSaves.inPlace(
                work + "/sec.conf",
                """
                type=Single
                ptype=SubStr
                pattern=SSL certificate verification disabled
                desc=ssl
                action=shellcmd \(oneShot(data: "match", output: output))

                type=Single
                ptype=RegExp
                pattern=^probe
                desc=probe
                action=shellcmd \(oneShot(data: "probe", output: output))

                """
            )
            peerArguments = [sec, "--input=\(log)", "--conf=\(work)/sec.conf", "--log=\(work)/sec.log"]
        case .fail2ban:
            guard requireTool("fail2ban-server", package: "fail2ban", failures: &result.failures) != nil else {
                return result
            }
            peerArguments = try Fail2banPeer.prepare(work: work, log: log, output: output)
        }
        if let peerArguments {
            peer = try PeerDaemon(
                arguments: peerArguments,
                output: work + "/peer.stdout",
                error: work + "/peer.err"
            )
            // Ready when a probe line's output comes back: the peer reads the log. No sleeping.
            var ready = false
            for k in 0..<80 where !ready {
                appendLine(fd, subject.probeLine(k))
                while let (line, _) = follower.next(timeoutMilliseconds: 250) {
                    if subject.classify(line) == .probe {
                        ready = true
                        break
                    }
                }
            }
            guard ready else {
                result.failures.append("\(subject.name): no probe output within 20 s; stderr: \(peer?.errors() ?? "")")
                return result
            }
        }
        _ = follower.drain()
        let timeout = subject.missTimeout(rotation: rotation)
        for number in 0..<trials {
            for filler in fillerLines.prefix(number % fillerLines.count) { appendLine(fd, filler) }
            for line in follower.drain() {
                if case .trial = subject.classify(line) { result.doubled += 1 }
            }
            result.expected += 1
            let start = Clock.monotonicNanoseconds()
            if rotation { fd = try rotateUnifiedLog(fd, in: sandbox) }
            appendLine(fd, subject.line(number))
            var seen: UInt64?
            while let (line, at) = follower.next(timeoutMilliseconds: timeout) {
                guard case .trial(let reported) = subject.classify(line) else { continue }
                if reported == nil || reported == number {
                    seen = at
                    break
                }
                result.doubled += 1
            }
            if let seen { result.latencies.append(seen - start) } else { result.missed += 1 }
        }
    } catch {
        result.failures.append("\(subject.name): \(error)")
    }
    return result
}

/// Every subject in interleaved rounds (a slow patch of the VM falls on all alike); each subject's samples
/// also go to `Samples` (`log-line`, or `log-line-rotation`).
@MainActor
func runLogLatency(
    vigil: String,
    rules: String,
    lines: Int,
    rounds: Int,
    rotation: Bool = false
) -> [LogLatencyResult] {
    // Quick runs leave SEC and fail2ban (a second or two each to start and to act) out of the rotation variant.
    let subjects = LogSubject.allCases.filter {
        ($0 != .vigilExec || ExecSubject.enabled) && !(rotation && PeerTrials.quick && ($0 == .sec || $0 == .fail2ban))
    }
    var results = subjects.map { LogLatencyResult(subject: $0.name) }
    let perRound = max(1, lines / rounds)
    for _ in 0..<rounds {
        for (i, subject) in subjects.enumerated() {
            results[i].merge(
                runLogSubject(
                    subject,
                    vigil: vigil,
                    rules: rules,
                    trials: subject.trials(lines: perRound, rotation: rotation),
                    rotation: rotation
                )
            )
        }
    }
    for result in results {
        Samples.record(
            scenario: rotation ? "log-line-rotation" : "log-line",
            subject: result.subject,
            nanoseconds: result.latencies
        )
    }
    return results
}

// MARK: Rotation torture

/// The log issue's torture on the release binary: `RotationTorture` (shared with the integration test)
/// at full scale, by rename and by copy-and-truncate.
func runLogTorture(
    vigil: String,
    settings: RotationTorture.Settings
) -> (result: RotationTorture.Result?, failure: String?) {
    let tree = "/tmp/vigil-bench-torture-\(getpid())-\(settings.rotation.rawValue)"
    guard FileTree.makeDirectories(tree + "/var/log/torture", mode: 0o755),
        FileTree.makeDirectories(tree + "/run", mode: 0o755)
    else {
        return (nil, "cannot create \(tree)")
    }
    defer { FileTree.remove(tree) }
    do {
        try FileSaves.inPlace(tree + "/rules.yaml", RotationTorture.rules)
        let alerts = tree + "/alerts.jsonl"
        let result = try RotationTorture.run(settings, logPath: tree + "/var/log/torture/app.log", alertsPath: alerts) {
            try DaemonProcess(
                executable: vigil,
                arguments: ["--rules", tree + "/rules.yaml", "--root", tree, "--alerts", alerts, "--no-process-rules"],
                workDirectory: tree + "/run"
            )
        }
        return (result, nil)
    } catch {
        return (nil, "\(error)")
    }
}

// MARK: Report

/// The log scenarios' results, for RESULTS.md.
struct LogResults {
    /// Every subject of the appended-line scenario, vigil first (`LogSubject` order).
    var latency: [LogLatencyResult]
    /// The same across a rotation (empty when not run).
    var rotation: [LogLatencyResult]
    var torture: [(settings: RotationTorture.Settings, result: RotationTorture.Result?, failure: String?)]

    var vigil: LogLatencyResult { latency.first ?? LogLatencyResult(subject: "vigil") }

    /// vigil and vigil (exec), with and without rotation: every line alerted once.
    var vigilResults: [LogLatencyResult] {
        (latency + rotation).filter { $0.subject == LogSubject.vigil.name || $0.subject == LogSubject.vigilExec.name }
    }

    var detectedEverything: Bool {
        vigilResults.allSatisfy { $0.missed == 0 && $0.doubled == 0 && $0.failures.isEmpty }
            && torture.allSatisfy { entry in
                guard let result = entry.result else { return false }
                switch entry.settings.rotation {
                case .rename: return result.missing.isEmpty && result.duplicated.isEmpty
                case .copyTruncate: return result.duplicated.isEmpty && result.truncationAlerts >= result.rotations
                }
            }
    }

    func targetRows() -> [String] {
        var out: [String] = []
        if let s = LatencySummary(vigil.latencies) {
            out.append(
                "| appended log line → alert line, p50 | ≤ \(milliseconds(Report.targetP50)) ms | \(milliseconds(s.p50)) ms | \(s.p50 <= Report.targetP50 ? "yes" : "**no**") |"
            )
            out.append(
                "| appended log line → alert line, p99 | ≤ \(milliseconds(Report.targetP99)) ms | \(milliseconds(s.p99)) ms | \(s.p99 <= Report.targetP99 ? "yes" : "**no**") |"
            )
        }
        for entry in torture {
            let name = "rotation torture (\(entry.settings.rotation.rawValue), \(entry.settings.kills) SIGKILLs)"
            guard let result = entry.result else {
                out.append("| \(name) | completes | \(entry.failure ?? "failed") | **no** |")
                continue
            }
            switch entry.settings.rotation {
            case .rename:
                let met = result.missing.isEmpty && result.duplicated.isEmpty
                out.append(
                    "| \(name): each line's alert exactly once | all \(result.written) | \(result.once) once, \(result.duplicated.count) twice, \(result.missing.count) missing | \(met ? "yes" : "**no**") |"
                )
            case .copyTruncate:
                let met = result.duplicated.isEmpty && result.truncationAlerts >= result.rotations
                out.append(
                    "| \(name): every truncation alerted | \(result.rotations) | \(result.truncationAlerts) alerts (\(result.missing.count) lines lost between copy and truncate) | \(met ? "yes" : "**no**") |"
                )
            }
        }
        return out
    }

    /// The subjects' latency table and each one's problems.
    static func table(_ results: [LogLatencyResult]) -> [String] {
        var out: [String] = []
        out.append("| subject | lines measured | missed | extra | p50 | p90 | p99 | max | mean |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for result in results {
            if let s = LatencySummary(result.latencies) {
                out.append(
                    "| \(result.subject.replacingPipes()) | \(result.latencies.count)/\(result.expected) | \(result.missed) | \(result.doubled) | \(milliseconds(s.p50)) | \(milliseconds(s.p90)) | \(milliseconds(s.p99)) | \(milliseconds(s.max)) | \(milliseconds(s.mean)) |"
                )
            } else {
                out.append(
                    "| \(result.subject.replacingPipes()) | 0/\(result.expected) | \(result.missed) | – | – | – | – | – | – |"
                )
            }
        }
        for result in results {
            for failure in result.failures { out.append("\nProblem: \(failure.replacingNewlines())") }
        }
        out.append("")
        return out
    }

    /// vigil ÷ each peer, and vigil (exec) ÷ each peer that spawns the one-shot.
    static func ratios(_ results: [LogLatencyResult]) -> [String] {
        func named(_ subject: LogSubject) -> (name: String, samples: [UInt64])? {
            results.first { $0.subject == subject.name }.map { (subject.name, $0.latencies) }
        }
        let peers = LogSubject.allCases.filter { $0 != .vigil && $0 != .vigilExec }.compactMap(named)
        let spawning = LogSubject.allCases.filter(\.spawnsCommand).compactMap(named)
        var out = [
            "### Ratios (vigil ÷ peer; below 1 means vigil is faster)\n", "| comparison | p50 | p99 |", "|---|---|---|",
        ]
        if let mine = named(.vigil) { out += ratioRows(mine, against: peers) }
        if let mine = named(.vigilExec) { out += ratioRows(mine, against: spawning) }
        out.append("")
        return out
    }

    func markdown() -> [String] {
        var out: [String] = []
        out.append("## Appended log line → alert line seen (ms)\n")
        out.append(
            """
            The seed's `SSL certificate verification disabled for endpoint: …` line appended (one `write(2)`, \
            `O_APPEND`) to today's `unified_YYYYMMDD.log` in a sandbox, with 0–7 lines that match nothing \
            before each; time from just before the write to the moment the harness sees the subject's output \
            line (inotify on that file). vigil runs the shipped `rules/` (`--no-process-rules`); `tail -n 0 -F LOG | \
            grep --line-buffered 'SSL certificate verification disabled' >> OUT` is what an SRE writes by hand. \
            All subjects in interleaved rounds.

            """
        )
        out += Self.table(latency)
        out += Self.ratios(latency)
        out.append(
            """
            The peers: swatchdog (`watchfor /SSL certificate verification disabled/` + `exec`), SEC (`type=Single`, \
            `ptype=SubStr`, `action=shellcmd`; it sleeps up to `--poll-timeout`, 0.1 s by default, when its input \
            is idle), fail2ban (`fail2ban-server -f` with its own socket, pid file and `dbfile = :memory:`, \
            backend \(Fail2banPeer.backend), a jail with `maxretry = 1` whose `actionban` is the one-shot; its \
            lines name an address as the endpoint, `https://10.1.X.Y/`, which its filter captures as `<HOST>`, \
            `datepattern = {NONE}`). Every command-spawning subject runs the same one-shot, `/bin/sh -c 'echo \
            "DATA" >> OUT'`: vigil (exec) passes `$VIGIL_ENDPOINT` (the shipped rules, with this rule's `then:` \
            an `exec` action), fail2ban `<ip>`, swatch and SEC a constant (their only way to pass a field of the \
            line is to paste it into a shell command, which the harness never does; the harness waits for each \
            line, so the next output is that line's). Readiness: a probe line's output (never a sleep). Fewer \
            lines for the slower peers (fail2ban \(PeerTrials.fail2banPerRound), SEC \
            \(PeerTrials.quick ? 5 : PeerTrials.logPerRound), swatch and vigil (exec) \(PeerTrials.logPerRound) per round). Not measured: Monit (`check file … if content =~` reads the \
            new lines once per cycle, 1 s at the shortest, and acts once per cycle, not per line) and incron \
            (it fires on writes, never reads a line).

            """
        )
        if !rotation.isEmpty {
            out.append("## Appended log line across a rotation → alert line seen (ms)\n")
            out.append(
                """
                Each line is appended right after the log was renamed away (to `.1`) and created again, as \
                logrotate's `create` does; time from just before the rename. \(PeerTrials.rotationPerRound) lines \
                per subject per round. Same subjects and one-shot as above\(PeerTrials.quick ? " (this quick run leaves SEC and fail2ban out)" : ""). Every subject here \
                follows the new file: tail `-F` and swatch (which runs `tail -F`) by name, SEC by checking its \
                input's inode, fail2ban (\(Fail2banPeer.backend)) by noticing the file was replaced.

                """
            )
            out += Self.table(rotation)
            out += Self.ratios(rotation)
        }
        out.append("## Rotation torture\n")
        out.append(
            """
            `RotationTorture` (VigilHarness; the integration test runs it small on the debug build): a writer \
            appends numbered lines (one `write(2)` each, paced) to `/var/log/torture/app.log` while the log \
            is rotated every half second, and vigil (rule: alert on every line) is killed with SIGKILL and \
            started again at even intervals. Then every line's alert is counted in the JSON Lines file.

            """
        )
        out.append(
            "| rotation | lines/s × s | lines | rotations | SIGKILL restarts | alerted once | twice or more | missing | truncation alerts | catch-up after the last line |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for entry in torture {
            let s = entry.settings
            guard let r = entry.result else {
                out.append("| \(s.rotation.rawValue) | failed: \(entry.failure ?? "?") | | | | | | | | |")
                continue
            }
            out.append(
                "| \(s.rotation.rawValue) | \(s.linesPerSecond) × \(Int(s.seconds)) | \(r.written) | \(r.rotations) | \(r.restarts) | \(r.once) | \(r.duplicated.count) | \(r.missing.count) | \(r.truncationAlerts) | \(Int(r.drainSeconds * 1000)) ms |"
            )
        }
        out.append(
            "\nWith copy-and-truncate, lines written between the copy and the truncation are in neither file: no tool can read them, and vigil says so (`vigil.log_truncated`) every time.\n"
        )
        return out
    }
}

extension LogLatencyResult {
    /// `other`'s figures under another subject name (for a printed line).
    init(subject: String, from other: LogLatencyResult) {
        self = LogLatencyResult(subject: subject)
        merge(other)
    }
}
