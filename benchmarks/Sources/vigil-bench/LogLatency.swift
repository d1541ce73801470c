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

func runVigilLogLatency(vigil: String, rules: String, lines: Int) -> LogLatencyResult {
    var result = LogLatencyResult(subject: "vigil")
    guard let sandbox = freshSandbox("bench-log-vigil", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    do {
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
        let alerts = work + "/alerts.jsonl"
        let fd = try openUnifiedLog(in: sandbox)
        defer { close(fd) }
        let follower = try LineFollower(path: alerts)
        let daemon = try DaemonProcess(
            executable: vigil,
            arguments: ["--rules", rules, "--root", sandbox.root, "--alerts", alerts, "--no-process-rules"],
            workDirectory: work
        )
        defer { daemon.stop() }
        _ = follower.drain()
        for number in 0..<lines {
            for filler in fillerLines.prefix(number % fillerLines.count) { appendLine(fd, filler) }
            for line in follower.drain() where JSONField.string(line, "rule") == logLatencyRule {
                result.doubled += 1
            }
            result.expected += 1
            let start = Clock.monotonicNanoseconds()
            appendLine(fd, sslLine(number))
            var seen: UInt64?
            while let (line, at) = follower.next(timeoutMilliseconds: missTimeoutMilliseconds) {
                guard JSONField.string(line, "rule") == logLatencyRule else { continue }
                if JSONField.label(line, "endpoint") == "https://api\(number).analytics-partner.com" {
                    seen = at
                    break
                }
                result.doubled += 1
            }
            if let seen { result.latencies.append(seen - start) } else { result.missed += 1 }
        }
    } catch {
        result.failures.append("vigil: \(error)")
    }
    return result
}

func runTailGrepLogLatency(lines: Int) -> LogLatencyResult {
    var result = LogLatencyResult(subject: "tail -F | grep --line-buffered")
    guard let sandbox = freshSandbox("bench-log-peer", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    var process: ChildProcess?
    defer { stopProcessGroup(process) }
    do {
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
        let output = work + "/peer.out"
        let log = sandbox.hostPath(SeedSandbox.unifiedLogPath())
        let fd = try openUnifiedLog(in: sandbox)
        defer { close(fd) }
        let follower = try LineFollower(path: output)
        process = try ChildProcess(
            executable: "/usr/bin/setsid",
            arguments: [
                "/bin/sh", "-c",
                "exec tail -n 0 -F '\(log)' | grep --line-buffered 'SSL certificate verification disabled' >> '\(output)'",
            ],
            standardError: work + "/peer.err"
        )
        // Ready when a probe line comes back through the pipe (tail has its watch). No sleeping.
        var ready = false
        for probe in 0..<80 where !ready {
            appendLine(fd, "probe \(probe) SSL certificate verification disabled for endpoint: probe\n")
            while let (line, _) = follower.next(timeoutMilliseconds: 250) {
                if line.hasSuffix("probe") {
                    ready = true
                    break
                }
            }
        }
        guard ready else {
            result.failures.append(
                "tail -F | grep: no probe line within 20 s; stderr: \(ProcFile.readText(work + "/peer.err") ?? "")"
            )
            return result
        }
        _ = follower.drain()
        for number in 0..<lines {
            for filler in fillerLines.prefix(number % fillerLines.count) { appendLine(fd, filler) }
            result.doubled += follower.drain().count
            result.expected += 1
            let start = Clock.monotonicNanoseconds()
            appendLine(fd, sslLine(number))
            let want = "https://api\(number).analytics-partner.com"
            var seen: UInt64?
            while let (line, at) = follower.next(timeoutMilliseconds: missTimeoutMilliseconds) {
                if line.hasSuffix(want) {
                    seen = at
                    break
                }
                result.doubled += 1
            }
            if let seen { result.latencies.append(seen - start) } else { result.missed += 1 }
        }
    } catch {
        result.failures.append("tail -F | grep: \(error)")
    }
    return result
}

/// Both subjects in interleaved rounds (a slow patch of the VM falls on both alike).
func runLogLatency(
    vigil: String,
    rules: String,
    lines: Int,
    rounds: Int
) -> (vigil: LogLatencyResult, peer: LogLatencyResult) {
    var mine = LogLatencyResult(subject: "vigil")
    var theirs = LogLatencyResult(subject: "tail -F | grep --line-buffered")
    let perRound = max(1, lines / rounds)
    for _ in 0..<rounds {
        mine.merge(runVigilLogLatency(vigil: vigil, rules: rules, lines: perRound))
        theirs.merge(runTailGrepLogLatency(lines: perRound))
    }
    return (mine, theirs)
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
    var vigil: LogLatencyResult
    var peer: LogLatencyResult
    var torture: [(settings: RotationTorture.Settings, result: RotationTorture.Result?, failure: String?)]

    var detectedEverything: Bool {
        vigil.missed == 0 && vigil.doubled == 0 && vigil.failures.isEmpty
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

    func markdown() -> [String] {
        var out: [String] = []
        out.append("## Appended log line → alert line seen (ms)\n")
        out.append(
            """
            The seed's `SSL certificate verification disabled for endpoint: …` line appended (one `write(2)`, \
            `O_APPEND`) to today's `unified_YYYYMMDD.log` in a sandbox, with 0–7 lines that match nothing \
            before each; time from just before the write to the moment the harness sees the subject's output \
            line (inotify on that file). vigil runs the shipped `rules/` (`--no-process-rules`); the peer is \
            `tail -n 0 -F LOG | grep --line-buffered 'SSL certificate verification disabled' >> OUT`. Both in \
            interleaved rounds.

            """
        )
        out.append("| subject | lines measured | missed | extra | p50 | p90 | p99 | max | mean |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for result in [vigil, peer] {
            if let s = LatencySummary(result.latencies) {
                out.append(
                    "| \(result.subject) | \(result.latencies.count)/\(result.expected) | \(result.missed) | \(result.doubled) | \(milliseconds(s.p50)) | \(milliseconds(s.p90)) | \(milliseconds(s.p99)) | \(milliseconds(s.max)) | \(milliseconds(s.mean)) |"
                )
            } else {
                out.append("| \(result.subject) | 0/\(result.expected) | \(result.missed) | – | – | – | – | – | – |")
            }
            for failure in result.failures { out.append("\nProblem: \(failure)\n") }
        }
        if let mine = LatencySummary(vigil.latencies), let theirs = LatencySummary(peer.latencies), mine.p50 > 0 {
            out.append(
                "\nRatio at p50: `tail -F | grep` / vigil = \(ratio(Double(theirs.p50), Double(mine.p50))); at p99: \(ratio(Double(theirs.p99), Double(max(1, mine.p99)))). The peer only prints the line; vigil also matches every rule, masks secrets and writes a JSON alert with a stable id.\n"
            )
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
