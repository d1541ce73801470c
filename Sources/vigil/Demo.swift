import ArgumentParser
import Synchronization
import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil demo`: replays the seed's incident against a sandbox copy of its server and shows each reaction
/// with its measured latency.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay the seed's incident in a sandbox and show Vigil's reactions with their latency.",
        discussion: """
            Builds a copy of CloudCrest's analytics server in a temporary directory, runs 'vigil run' on it
            with the shipped rules under --root, edits the upload service's config the ways people and tools
            do, prints every alert with the time from the write to the alert line, and removes the sandbox.
            """
    )

    @Option(name: .long, help: "The rules directory (default: ./rules, or the one next to the build).")
    var rules: String?

    @Flag(name: .long, help: "Keep the sandbox directory instead of removing it.")
    var keep = false

    /// The demo's debug-server stand-in (a copy of this binary) runs `vigil demo --stand-in-listen PORT`.
    @Option(name: .long, help: .hidden)
    var standInListen: UInt16?

    /// One step of the story: what a person does and what Vigil must answer.
    struct Step {
        var title: String
        var act: (SeedSandbox) throws(HarnessError) -> Void
        var expectRule: String
        var expectState: String
        /// Why the time to this reaction is not a latency (a hold the rule waits on purpose); nil: timed.
        var untimed: String? = nil
        /// How long to wait for the reaction.
        var timeoutMilliseconds = 5000
    }

    func run() throws {
        if let port = standInListen { Self.listenForever(port: port) }
        let executable = ChildProcess.currentExecutable()
        guard let rulesDirectory = locateRules(executable: executable) else {
            printLine(
                "vigil demo: Failed to find the rules directory 'rules/'; run it from the repository root or pass --rules DIR"
            )
            throw ExitCode(1)
        }
        let sandbox: SeedSandbox
        do { sandbox = try SeedSandbox(label: "demo") } catch {
            printLine("vigil demo: \(error)")
            throw ExitCode(1)
        }
        defer { if !keep { sandbox.remove() } }
        // Stand-ins for the seed's four services (copies of /bin/sleep under their names), running before
        // Vigil starts, as on the real server.
        var services: [String: ChildProcess] = [:]
        do {
            try sandbox.installServiceStandIns()
            for service in SeedSandbox.services { services[service.name] = try sandbox.startService(service.name) }
        } catch {
            printLine("vigil demo: \(error)")
            throw ExitCode(1)
        }
        defer { sandbox.stopServiceStandIns() }

        // Ctrl-C (or SIGTERM) must not leave a daemon and four stand-ins running: a thread waits for the
        // signal and cleans up.
        let health = HealthCleanup()
        defer { health.undo() }
        Self.cleanUpOnSignal(sandbox: sandbox, keep: keep, health: health)
        Self.mountDatabaseVolume(sandbox, cleanup: health)
        let demoRules: String
        do { demoRules = try Self.installDemoRules(sandbox) } catch {
            printLine("vigil demo: \(error)")
            throw ExitCode(1)
        }
        let alertsPath = sandbox.hostPath("/var/log/vigil/demo-alerts.jsonl")
        printLine("Vigil demo: CloudCrest's analytics-prod-03 in a sandbox at \(sandbox.root)")
        printLine("  rules: \(rulesDirectory) and \(demoRules)   alerts: \(alertsPath)\n")

        let follower: LineFollower
        let daemon: DaemonProcess
        do {
            follower = try LineFollower(path: alertsPath)
            let started = Clock.monotonicNanoseconds()
            daemon = try DaemonProcess(
                executable: executable,
                arguments: ["--rules", rulesDirectory, demoRules, "--root", sandbox.root, "--alerts", alertsPath],
                workDirectory: sandbox.hostPath("/run/vigil"),
                onSpawn: { pid in demoDaemonPid.store(pid, ordering: .releasing) }
            )
            printLine("vigil run is ready (READY=1 after \(milliseconds(Clock.monotonicNanoseconds() - started)) ms)")
        } catch {
            printLine("vigil demo: \(error)")
            throw ExitCode(1)
        }
        // Start-up alerts: the sandbox has none of the seed's missing services, but the start-up review of
        // root processes judges this whole host (the shell that ran the demo, too): summarised by rule.
        var startup: [(rule: String, count: Int, first: String)] = []
        for line in follower.drain() {
            let rule = JSONField.string(line, "rule") ?? "?"
            if let i = startup.firstIndex(where: { $0.rule == rule }) {
                startup[i].count += 1
            } else {
                startup.append((rule, 1, summary(of: line)))
            }
        }
        for group in startup {
            let more = group.count > 1 ? "   (and \(group.count - 1) more from this rule)" : ""
            printLine("  start-up alert: \(group.first)\(more)")
        }

        let config = SeedSandbox.configPath
        let steps: [Step] = [
            Step(
                title:
                    "Someone saves upload-service.conf with 'verify_ssl = false  # TODO: Enable for production' (temporary file renamed over it)",
                act: { sandbox throws(HarnessError) in try sandbox.writeReplacing(config, SeedSandbox.insecureConfig) },
                expectRule: "upload-ssl-verification-disabled",
                expectState: "firing"
            ),
            Step(
                title: "Fatima fixes it in place: 'verify_ssl = true  # FIXED' (open, truncate, write)",
                act: { sandbox throws(HarnessError) in try sandbox.write(config, SeedSandbox.fixedConfig) },
                expectRule: "upload-ssl-verification-disabled",
                expectState: "resolved"
            ),
            Step(
                title: "vim saves it insecure again (original renamed to upload-service.conf~, new file written)",
                act: { sandbox throws(HarnessError) in try sandbox.writeLikeVim(config, SeedSandbox.insecureConfig) },
                expectRule: "upload-ssl-verification-disabled",
                expectState: "firing"
            ),
            Step(
                title: "A config-management run restores the fixed file (sed -i style rename)",
                act: { sandbox throws(HarnessError) in try sandbox.writeReplacing(config, SeedSandbox.fixedConfig) },
                expectRule: "upload-ssl-verification-disabled",
                expectState: "resolved"
            ),
            Step(
                title:
                    "upload-service logs the seed's finding to today's unified log: 'SSL certificate verification disabled for endpoint: …'",
                act: { sandbox throws(HarnessError) in
                    try sandbox.append(
                        SeedSandbox.unifiedLogPath(),
                        "2025-04-13 07:15:22 UPLOAD WARN [SSLConnector] SSL certificate verification disabled for endpoint: https://api.analytics-partner.com\n"
                    )
                },
                expectRule: "upload-ssl-verification-disabled-logged",
                expectState: "event"
            ),
            Step(
                title:
                    "It logs a database password and a card number, then 'Connected to external API with insecure flag'",
                act: { sandbox throws(HarnessError) in
                    try sandbox.append(SeedSandbox.unifiedLogPath(), Self.leakingLines)
                },
                expectRule: "upload-insecure-api-connection",
                expectState: "event"
            ),
            Step(
                title: "Someone runs 'chmod 777' on today's unified log, undoing Fatima's chmod -R 750",
                act: { sandbox throws(HarnessError) in
                    guard chmod(sandbox.hostPath(SeedSandbox.unifiedLogPath()), 0o777) == 0 else {
                        throw HarnessError("chmod failed: \(String(cString: strerror(errno)))")
                    }
                },
                expectRule: "analytics-log-permissions",
                expectState: "event"
            ),
        ]
        // After the masking and mode checks below, which read today's log before it is rotated away.
        let rotation = Step(
            title:
                "A busy day: the upload service writes 100 MiB to today's unified log, past the rotation rule's 100M",
            act: { sandbox throws(HarnessError) in
                for _ in 0..<101 { try sandbox.append(SeedSandbox.unifiedLogPath(), Self.busyMebibyte) }
            },
            expectRule: "unified-log-rotation",
            expectState: "event"
        )
        var latencies: [UInt64] = []
        var reactions = 0
        var untimed = 1  // the rotation
        var failed = false
        // `timed: false`: the reaction comes after writing 100 MiB and compressing them, not a latency.
        func perform(_ step: Step, number: Int, timed: Bool = true) -> Bool {
            printLine("\n\(number). \(step.title)")
            let before = Clock.monotonicNanoseconds()
            do { try step.act(sandbox) } catch {
                printLine("   vigil demo: \(error)")
                return false
            }
            let deadline = before + UInt64(step.timeoutMilliseconds) * 1_000_000
            while Clock.monotonicNanoseconds() < deadline,
                let (line, seenAt) = follower.next(
                    timeoutMilliseconds: Int((deadline - min(deadline, Clock.monotonicNanoseconds())) / 1_000_000) + 1
                )
            {
                let rule = JSONField.string(line, "rule") ?? "?"
                let state = JSONField.string(line, "state") ?? "?"
                let latency = seenAt &- min(before, seenAt)  // a line already queued before the act counts as 0
                printLine("   → \(summary(of: line))   [\(milliseconds(latency)) ms after the write]")
                if rule == step.expectRule && state == step.expectState {
                    if let reason = step.untimed {
                        printLine("   (not a latency: \(reason))")
                        untimed += 1
                    } else if timed {
                        latencies.append(latency)
                    }
                    reactions += 1
                    return true
                }
            }
            printLine(
                "   ✗ no '\(step.expectState)' alert from rule '\(step.expectRule)' within \(step.timeoutMilliseconds / 1000) s"
            )
            return false
        }
        for (number, step) in steps.enumerated() where !failed {
            failed = !perform(step, number: number + 1)
        }
        if !failed {
            // Lines are handled in order, so the leaking lines were masked in place before the alert above.
            let log = ProcFile.readText(sandbox.hostPath(SeedSandbox.unifiedLogPath())) ?? ""
            let masked = log.split(separator: "\n").filter { $0.contains("DBPool") || $0.contains("Billing") }
            printLine("   The log itself now reads (masked in place: same size, same inode):")
            for line in masked { printLine("     \(line)") }
            if masked.isEmpty
                || masked.contains(where: { $0.contains("Hunter2") || $0.contains("4111 1111 1111 1111") })
            {
                printLine("   ✗ the secrets are still in the log")
                failed = true
            }
        }
        if !failed {
            var info = stat()
            let mode = stat(sandbox.hostPath(SeedSandbox.unifiedLogPath()), &info) == 0 ? info.st_mode & 0o7777 : 0
            printLine(
                "   The log's mode is \(String(mode, radix: 8)) again (changed through a descriptor opened without following symlinks)."
            )
            if mode != 0o640 {
                printLine("   ✗ the mode was not restored")
                failed = true
            }
        }
        if !failed { failed = !perform(rotation, number: steps.count + 1, timed: false) || !showArchive(sandbox) }
        if !failed, let upload = services["upload-service"] {
            failed = !killAndWatchRestart(upload, step: steps.count + 2, follower: follower, latencies: &latencies)
            if !failed { reactions += 1 }
        }
        let healthSteps = Self.healthSteps(sandbox, executable: executable, cleanup: health)
        for (offset, step) in healthSteps.enumerated() where !failed {
            failed = !perform(step, number: steps.count + 3 + offset)
        }
        if !failed && !health.mounted {
            printLine("\n(The filling-disk steps need root to mount a small tmpfs: skipped.)")
        }
        health.undo()
        let exit = daemon.stop()
        if failed || exit != 0 {
            printLine(
                "\nvigil demo failed (daemon exit code \(exit.map(String.init) ?? "none")); the daemon's log:\n\(daemon.log())"
            )
            throw ExitCode(1)
        }
        let sorted = latencies.sorted()
        printLine(
            "\n\(reactions) reactions (\(untimed) untimed: the rotation, the CPU hold, the reload), change → alert line: median \(milliseconds(sorted[sorted.count / 2])) ms, worst \(milliseconds(sorted.last!)) ms"
        )
        showDeliveries(sandbox, journal: sandbox.journal)
        printLine(
            "The daemon stopped cleanly on SIGTERM. \(keep ? "Sandbox kept at \(sandbox.root)" : "Sandbox removed.")"
        )
    }

    /// Two lines that leak secrets, then the seed's insecure-connection line.
    static let leakingLines =
        "2025-04-13 07:16:40 UPLOAD ERROR [DBPool] connection refused: password=Hunter2! user=analytics\n"
        + "2025-04-13 07:16:41 UPLOAD INFO [Billing] charged card 4111 1111 1111 1111 for order 1042\n"
        + "2025-04-13 07:16:45 UPLOAD INFO [HTTPClient] Connected to external API with insecure flag\n"

    /// One MiB of the upload service's ordinary log lines (nothing a rule matches).
    static let busyMebibyte: String = {
        var text = ""
        var batch = 0
        while text.utf8.count < 1 << 20 {
            batch += 1
            text += "2025-04-13 07:20:00 UPLOAD INFO [Uploader] batch \(batch) uploaded 512 records in 143 ms\n"
        }
        return String(
            text.utf8.prefix(1 << 20).split(separator: UInt8(ascii: "\n")).dropLast().map {
                String(decoding: $0, as: UTF8.self) + "\n"
            }.joined()
        )
    }()

    /// What reached the other sinks of the shipped rules: RFC 5424 records on the sandbox's /dev/log, and
    /// the messages its stand-in sendmail took for sre-team (errors and criticals only, `min_severity`).
    private func showDeliveries(_ sandbox: SeedSandbox, journal: SyslogReceiver) {
        let records = journal.datagrams()
        let mail = ProcFile.readText(sandbox.hostPath(SeedSandbox.mailbox), limit: 16 << 20) ?? ""
        var messages = 0
        var alerts = 0
        var subject = ""
        for line in mail.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("From vigil ") { messages += 1 }
            if line.hasPrefix("id: ") { alerts += 1 }
            if subject.isEmpty && line.hasPrefix("Subject: ") { subject = String(line.dropFirst(9)) }
        }
        printLine(
            "Delivered as well: \(records.count) RFC 5424 records to /dev/log (the journal's socket), and \(alerts) alerts in \(messages) e-mail\(messages == 1 ? "" : "s") to sre-team through sendmail (errors and criticals), the first titled '\(subject)'"
        )
    }

    /// Lists the archive directory after the rotation and tests each compressed file with `gzip -t` (where
    /// gzip is installed). False when there is no compressed rotation or one is corrupt.
    private func showArchive(_ sandbox: SeedSandbox) -> Bool {
        let archive = sandbox.hostPath("/var/log/archive")
        var names: [String] = []
        if let directory = opendir(archive) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(directory)
        }
        let compressed = names.filter { $0.hasSuffix(".gz") }.sorted()
        var info = stat()
        if stat(sandbox.hostPath(SeedSandbox.unifiedLogPath()), &info) == 0 {
            printLine(
                "   A new empty \(SeedSandbox.unifiedLogPath()) took its place (mode \(String(info.st_mode & 0o7777, radix: 8)), \(info.st_size) bytes); the archive holds:"
            )
        }
        var good = !compressed.isEmpty
        for name in compressed {
            let path = archive + "/" + name
            let size = stat(path, &info) == 0 ? Int(info.st_size) : 0
            var verdict = ""
            if access("/usr/bin/gzip", X_OK) == 0,
                let check = try? ChildProcess(executable: "/usr/bin/gzip", arguments: ["-t", path]),
                let status = check.wait(timeoutMilliseconds: 20_000)
            {
                verdict = status == 0 ? "   gzip -t: OK" : "   gzip -t: FAILED"
                if status != 0 { good = false }
            }
            printLine("     /var/log/archive/\(name)   \(size) bytes\(verdict)")
        }
        if compressed.isEmpty { printLine("   ✗ no compressed rotation in /var/log/archive") }
        return good
    }

    /// Kills the upload service the way the OOM killer does, and shows Vigil's alert, its restart through
    /// the service's init script (no systemd in the sandbox) and the new process it saw start.
    private func killAndWatchRestart(
        _ upload: ChildProcess,
        step: Int,
        follower: LineFollower,
        latencies: inout [UInt64]
    ) -> Bool {
        printLine(
            "\n\(step). The OOM killer sends SIGKILL to upload-service (pid \(upload.pid))"
        )
        let before = Clock.monotonicNanoseconds()
        upload.signal(SIGKILL)
        _ = upload.wait(timeoutMilliseconds: 5000)  // reap it, as its parent would: not a zombie
        var sawExit = false
        var sawRestart = false
        while !(sawExit && sawRestart), let (line, seenAt) = follower.next(timeoutMilliseconds: 20000) {
            let kind = JSONField.string(line, "kind") ?? "?"
            let latency = seenAt &- min(before, seenAt)  // a line already queued before the act counts as 0
            printLine("   → \(summary(of: line))   [\(milliseconds(latency)) ms after the kill]")
            if kind == "process.exit" && JSONField.string(line, "rule") == "upload-service-crashed" {
                latencies.append(latency)
                sawExit = true
            }
            if kind == "process.restarted" { sawRestart = true }
            if kind == "process.restart_failed" { break }
        }
        if !sawExit { printLine("   ✗ no exit alert from rule 'upload-service-crashed' within 20 s") }
        if !sawRestart { printLine("   ✗ no confirmed restart within 20 s") }
        // The running rule resolves once the new process is seen; show it if it is already there.
        for line in follower.drain() { printLine("   → \(summary(of: line))") }
        return sawExit && sawRestart
    }

    /// Blocks SIGINT, SIGTERM and SIGHUP (children start with them unblocked) and starts a thread that,
    /// when one comes, stops the daemon and the stand-ins, removes the sandbox and exits 130.
    private static func cleanUpOnSignal(sandbox: SeedSandbox, keep: Bool, health: HealthCleanup) {
        guard let signals = try? SignalFD(signals: [SIGINT, SIGTERM, SIGHUP]) else { return }
        let box = DemoCleanup(signals: signals, sandbox: sandbox, keep: keep, health: health)
        _ = Threads.spawn(name: "vigil-demo-sig") {
            var pfd = pollfd(fd: box.signals.descriptor, events: Int16(POLLIN), revents: 0)
            while poll(&pfd, 1, -1) < 0 && errno == EINTR {}
            let pid = demoDaemonPid.load(ordering: .acquiring)
            if pid > 0 {
                kill(pid, SIGTERM)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
            }
            box.sandbox.stopServiceStandIns()
            box.health.undo()
            if !box.keep { box.sandbox.remove() }
            let line = Array("\nvigil demo: interrupted; the daemon and the stand-ins were stopped\n".utf8)
            _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            Glibc.exit(130)
        }
    }

    private func locateRules(executable: String) -> String? {
        var candidates: [String] = []
        if let rules {
            candidates.append(rules)
        } else {
            candidates.append("rules")
            // .build/<config>/vigil → repository root
            var parts = executable.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if parts.count > 3 {
                parts.removeLast(3)
                candidates.append(parts.joined(separator: "/") + "/rules")
            }
            candidates.append("/etc/vigil/rules.d")
        }
        for candidate in candidates {
            var info = stat()
            if stat(candidate, &info) == 0 {
                if candidate.hasPrefix("/") { return candidate }
                var buffer = [CChar](repeating: 0, count: 4097)
                if realpath(candidate, &buffer) != nil {
                    return String(
                        decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) },
                        as: UTF8.self
                    )
                }
                return candidate
            }
        }
        return nil
    }

    private func summary(of line: String) -> String {
        let severity = JSONField.string(line, "severity") ?? "?"
        let state = JSONField.string(line, "state") ?? "?"
        let rule = JSONField.string(line, "rule") ?? "?"
        let message = JSONField.string(line, "message") ?? ""
        return "\(severity) · \(state) · \(rule): \(message)"
    }

    private func milliseconds(_ nanoseconds: UInt64) -> String {
        String(format3: Double(nanoseconds) / 1e6)
    }

    private func printLine(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }
}

extension String {
    /// A number with three decimals, without Foundation.
    init(format3 value: Double) {
        let thousandths = Int((value * 1000).rounded())
        let fraction = thousandths % 1000
        let pad = fraction < 10 ? "00" : (fraction < 100 ? "0" : "")
        self = "\(thousandths / 1000).\(pad)\(fraction)"
    }
}

/// What the demo's signal thread needs to clean up.
private final class DemoCleanup: Sendable {
    let signals: SignalFD
    let sandbox: SeedSandbox
    let keep: Bool
    let health: HealthCleanup

    init(signals: SignalFD, sandbox: SeedSandbox, keep: Bool, health: HealthCleanup) {
        self.signals = signals
        self.sandbox = sandbox
        self.keep = keep
        self.health = health
    }
}

/// The daemon's pid once it runs (0 before), for the signal thread.
private let demoDaemonPid = Atomic<Int32>(0)
