import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// Scenarios of issue 7, system health, each measured in the same run as the poll loop an SRE would write
// instead of the seed's 15-minute cron job:
//
// 1. Disk crossing: a 16 MiB tmpfs mounted in the sandbox, filled to 70 %; then one write(2) takes it past
//    85 % → the `disk-usage` alert line (state firing) seen; the file is deleted → resolved. The peer is
//    `while :; do df --output=pcent DIR …; sleep 1; done`, the seed's `df | awk 'int($5) > 85'` at one
//    second instead of fifteen minutes.
// 2. New listener: this process binds 0.0.0.0:PORT and calls listen(2) → the `unexpected-listener` alert
//    naming it; close → resolved. The peer is `while :; do ss -Htln …; sleep 1; done` (the seed's
//    `ss -tulpn` by hand, once a second).
//
// Both need root (mount(8), and reading other users' /proc/PID/fd for the owner of a socket).

/// The rules vigil runs: a JSON Lines sink inside `--root`, the disk rule and the listener rule.
func systemHealthRules(mount: String, allowedPorts: [UInt16]) -> String {
    let allow = allowedPorts.map { "    - { port: \($0) }" }.joined(separator: "\n")
    return """
        # vigil-bench, system health (issue 7).
        - sink: alerts-file
          type: jsonl
          path: /alerts.jsonl

        - rule: disk-usage
          disk: \(mount)
          above: 85%

        - rule: unexpected-listener
          listening: { proto: tcp }
          allow:
        \(allow.isEmpty ? "    - { port: 1 }" : allow)

        """
}

/// Latencies of the system-health scenarios, vigil's and the peers', in nanoseconds.
struct SystemHealthResult {
    var diskVigil: [UInt64] = []
    var diskResolved: [UInt64] = []
    var diskPeer: [UInt64] = []
    var listenVigil: [UInt64] = []
    var listenResolved: [UInt64] = []
    var listenPeer: [UInt64] = []
    /// A new program that listens as it starts: spawn → alert (the program's own start-up included).
    var execListenVigil: [UInt64] = []
    var failures: [String] = []
    var trials = 0

    /// True when vigil reported every crossing and every listener, and each resolution.
    var detectedEverything: Bool {
        failures.isEmpty && diskVigil.count == trials && diskResolved.count == trials
            && listenVigil.count == trials && listenResolved.count == trials && execListenVigil.count == trials
    }

    func markdown(provenance: String) -> [String] {
        var out = "## System health (issue 7)\n\n\(provenance)\n\n"
        out += "| scenario | subject | trials | p50 ms | p90 ms | p99 ms | max ms | ratio of p50 |\n"
        out += "|---|---|---|---|---|---|---|---|\n"
        func row(_ scenario: String, _ subject: String, _ samples: [UInt64], _ base: [UInt64]?) {
            guard let summary = LatencySummary(samples) else {
                out += "| \(scenario) | \(subject) | 0 | – | – | – | – | – |\n"
                return
            }
            var ratioText = "1.00×"
            if let base, let baseSummary = LatencySummary(base) {
                ratioText = ratio(Double(summary.p50), Double(baseSummary.p50))
            }
            out +=
                "| \(scenario) | \(subject) | \(summary.count) | \(milliseconds(summary.p50)) | \(milliseconds(summary.p90)) | \(milliseconds(summary.p99)) | \(milliseconds(summary.max)) | \(ratioText) |\n"
        }
        row("tmpfs past 85 % → alert", "vigil (`disk:` rule)", diskVigil, nil)
        row("tmpfs past 85 % → alert", "`df` poll loop, 1 s", diskPeer, diskVigil)
        row("file deleted → resolved", "vigil", diskResolved, nil)
        row("listen(0.0.0.0) → alert", "vigil (`listening:` rule)", listenVigil, nil)
        row("listen(0.0.0.0) → alert", "`ss -Htln` poll loop, 1 s", listenPeer, listenVigil)
        row("close → resolved", "vigil", listenResolved, nil)
        row("program started, listens → alert", "vigil (exec cue)", execListenVigil, nil)
        out += """

            - Disk: a 16 MiB tmpfs filled to 70 %, then one `write(2)` of 16 % more; latency from the end of \
            that write to the alert line in vigil's JSON Lines file (or the peer's output line). The seed's \
            cron job looked every 15 minutes: 450 s on average.
            - Listener: this process calls `listen(2)` on 0.0.0.0 and a free port; latency to the alert line \
            naming this process. Vigil re-reads the kernel's listening sockets (netlink sock_diag) shortly \
            after every exec and on a short timer while listening rules are loaded.
            - Program started: a copy of vigil started as a stand-in server that listens as soon as it runs; \
            latency from the spawn (its start-up included) to the alert. Vigil re-reads 75 ms after the exec \
            and again 400 ms later.
            - The peers print when they see the condition; their latency is bounded by their period (1 s).

            """
        if !failures.isEmpty {
            out += "\nFailures: " + failures.prefix(5).joined(separator: "; ") + "\n"
        }
        return [out]
    }
}

enum SystemHealthBench {
    /// Runs both scenarios `trials` times for vigil and for the peers.
    static func run(vigil: String, trials: Int) -> SystemHealthResult {
        var result = SystemHealthResult()
        result.trials = trials
        guard geteuid() == 0 else {
            result.failures.append("the system-health scenarios need root (mount, other users' /proc/PID/fd)")
            return result
        }
        guard let sandbox = freshSandbox("bench-system", failures: &result.failures) else { return result }
        defer { sandbox.remove() }
        let mountPoint = "/srv/fill"
        do { try sandbox.makeDirectories(mountPoint) } catch {
            result.failures.append(error.description)
            return result
        }
        let host = sandbox.hostPath(mountPoint)
        guard runQuietly("/bin/mount", ["-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", host]) else {
            result.failures.append("mount -t tmpfs -o size=16m tmpfs \(host) failed")
            return result
        }
        defer { _ = runQuietly("/bin/umount", ["-l", host]) }
        let existing = currentTCPListenPorts()
        let vigilRun: (daemon: DaemonProcess, follower: LineFollower)
        do {
            vigilRun = try startScenarioVigil(
                vigil,
                sandbox: sandbox,
                rulesFile: "system-health.yaml",
                rules: systemHealthRules(mount: mountPoint, allowedPorts: existing)
            )
        } catch {
            result.failures.append(error.description)
            return result
        }
        // Start-up alerts (none expected: the disk is empty, every listener is allowed) are skipped.
        _ = vigilRun.follower.drain()
        let base = host + "/base"
        guard fill(base, bytes: 16 * 1024 * 1024 * 70 / 100) else {
            result.failures.append("failed to fill \(base)")
            return result
        }
        for trial in 0..<trials {
            let crossing = host + "/crossing-\(trial)"
            let written = fillTimed(crossing, bytes: 16 * 1024 * 1024 * 16 / 100)
            guard let writtenAt = written else {
                result.failures.append("write to \(crossing) failed")
                break
            }
            if let seen = waitFor(vigilRun.follower, rule: "disk-usage", state: "firing") {
                result.diskVigil.append(seen &- min(writtenAt, seen))
            } else {
                result.failures.append("no disk-usage alert for trial \(trial)")
            }
            let removedAt = Clock.monotonicNanoseconds()
            unlink(crossing)
            if let seen = waitFor(vigilRun.follower, rule: "disk-usage", state: "resolved") {
                result.diskResolved.append(seen &- min(removedAt, seen))
            } else {
                result.failures.append("no disk-usage resolution for trial \(trial)")
            }
            // At a random phase of vigil's 500 ms re-read timer, as a listener opened by a running service
            // would be (right after the previous resolution, it would always wait a whole period).
            pause(milliseconds: Int.random(in: 0..<600))
            let (port, listenedAt, socket) = listenOnFreePort()
            guard socket >= 0 else {
                result.failures.append("bind/listen failed: \(String(cString: strerror(errno)))")
                break
            }
            if let seen = waitFor(
                vigilRun.follower,
                rule: "unexpected-listener",
                state: "firing",
                containing: ":\(port)"
            ) {
                result.listenVigil.append(seen &- min(listenedAt, seen))
            } else {
                result.failures.append("no unexpected-listener alert for port \(port)")
            }
            let closedAt = Clock.monotonicNanoseconds()
            close(socket)
            if let seen = waitFor(vigilRun.follower, rule: "unexpected-listener", state: "resolved") {
                result.listenResolved.append(seen &- min(closedAt, seen))
            } else {
                result.failures.append("no unexpected-listener resolution for port \(port)")
            }
        }
        // A program that starts and listens at once (a service started by hand): the exec is Vigil's cue.
        for trial in 0..<trials {
            let (port, probe) = bindFreePort()
            guard probe >= 0 else { break }
            close(probe)
            let started = Clock.monotonicNanoseconds()
            guard
                let server = try? ChildProcess(
                    executable: vigil,
                    arguments: ["demo", "--stand-in-listen", String(port)]
                )
            else {
                result.failures.append("the stand-in server did not start")
                break
            }
            if let seen = waitFor(
                vigilRun.follower,
                rule: "unexpected-listener",
                state: "firing",
                containing: ":\(port)"
            ) {
                result.execListenVigil.append(seen &- min(started, seen))
            } else {
                result.failures.append("no unexpected-listener alert for the program on port \(port) (trial \(trial))")
            }
            server.signal(SIGKILL)
            _ = server.wait(timeoutMilliseconds: 5000)
            _ = waitFor(vigilRun.follower, rule: "unexpected-listener", state: "resolved")
        }
        if vigilRun.daemon.stop() != 0 { result.failures.append("vigil did not stop cleanly") }
        // The peers, in the same run, on the same tmpfs: fewer trials, each costs up to a second.
        let peerTrials = min(trials, 20)
        result.diskPeer = peerDisk(sandbox: sandbox, mountHost: host, trials: peerTrials, failures: &result.failures)
        result.listenPeer = peerListen(sandbox: sandbox, trials: peerTrials, failures: &result.failures)
        return result
    }

    /// `df` once a second, printing when usage is above 85 %.
    private static func peerDisk(
        sandbox: SeedSandbox,
        mountHost: String,
        trials: Int,
        failures: inout [String]
    )
        -> [UInt64]
    {
        let output = sandbox.hostPath("/bench/peer-df.out")
        let script =
            "while :; do p=$(df --output=pcent '\(mountHost)' | tail -n 1 | tr -dc 0-9); [ \"$p\" -gt 85 ] && echo \"HIGH $p\"; sleep 1; done >> '\(output)'"
        guard let follower = try? followerAfterCreating(output),
            let loop = try? ChildProcess(executable: "/usr/bin/setsid", arguments: ["/bin/sh", "-c", script])
        else {
            failures.append("the df peer did not start")
            return []
        }
        defer { stopProcessGroup(loop) }
        var samples: [UInt64] = []
        for trial in 0..<trials {
            let crossing = mountHost + "/peer-\(trial)"
            guard let writtenAt = fillTimed(crossing, bytes: 16 * 1024 * 1024 * 16 / 100) else { break }
            if let (_, seen) = follower.next(timeoutMilliseconds: 5000) {
                samples.append(seen &- min(writtenAt, seen))
            } else {
                failures.append("the df peer missed trial \(trial)")
            }
            unlink(crossing)
            // Until the loop has seen it drop (its next round prints nothing), then on to a random phase of
            // its period; what it printed meanwhile is thrown away.
            pause(milliseconds: Int.random(in: 1100..<2100))
            _ = follower.drain()
        }
        return samples
    }

    /// `ss -Htln` once a second, printing when the port being waited for listens. The socket is bound
    /// first (a bound socket is not listed) and the loop started; listen(2) comes at a random phase of the
    /// loop's period, as it would for a loop already running.
    private static func peerListen(sandbox: SeedSandbox, trials: Int, failures: inout [String]) -> [UInt64] {
        var samples: [UInt64] = []
        for trial in 0..<trials {
            let output = sandbox.hostPath("/bench/peer-ss-\(trial).out")
            let (port, socket) = bindFreePort()
            guard socket >= 0 else { break }
            defer { close(socket) }
            let script =
                "while :; do ss -Htln 'sport = :\(port)' | grep -q . && echo \"LISTEN \(port)\"; sleep 1; done >> '\(output)'"
            guard let follower = try? followerAfterCreating(output),
                let loop = try? ChildProcess(executable: "/usr/bin/setsid", arguments: ["/bin/sh", "-c", script])
            else {
                failures.append("the ss peer did not start")
                break
            }
            defer { stopProcessGroup(loop) }
            pause(milliseconds: Int.random(in: 100..<1100))
            guard listen(socket, 16) == 0 else { break }
            let listenedAt = Clock.monotonicNanoseconds()
            if let (_, seen) = follower.next(timeoutMilliseconds: 5000) {
                samples.append(seen &- min(listenedAt, seen))
            } else {
                failures.append("the ss peer missed trial \(trial)")
            }
        }
        return samples
    }

    private static func followerAfterCreating(_ path: String) throws(HarnessError) -> LineFollower {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd >= 0 { close(fd) }
        return try LineFollower(path: path)
    }

    /// Waits for the next alert line of `rule` in `state` (and containing `text`), skipping others.
    private static func waitFor(
        _ follower: LineFollower,
        rule: String,
        state: String,
        containing text: String? = nil
    )
        -> UInt64?
    {
        let deadline = Clock.monotonicNanoseconds() + 10_000_000_000
        while Clock.monotonicNanoseconds() < deadline, let (line, seen) = follower.next(timeoutMilliseconds: 10_000) {
            if JSONField.string(line, "rule") == rule && JSONField.string(line, "state") == state
                && (text.map { line.contains($0) } ?? true)
            {
                return seen
            }
        }
        return nil
    }

    /// Writes `bytes` to a new file with one write(2); the monotonic time the write returned.
    private static func fillTimed(_ path: String, bytes: Int) -> UInt64? {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let buffer = [UInt8](repeating: 0x61, count: bytes)
        let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let at = Clock.monotonicNanoseconds()
        return n == bytes ? at : nil
    }

    private static func fill(_ path: String, bytes: Int) -> Bool { fillTimed(path, bytes: bytes) != nil }

    /// A TCP socket bound to 0.0.0.0 and a port the kernel picks, not listening yet; (port, fd).
    private static func bindFreePort() -> (UInt16, Int32) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return (0, -1) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) }
        }
        var length = size
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0 else {
            close(fd)
            return (0, -1)
        }
        return (UInt16(bigEndian: address.sin_port), fd)
    }

    /// A TCP socket listening on 0.0.0.0 and a free port; (port, time listen(2) returned, fd).
    private static func listenOnFreePort() -> (UInt16, UInt64, Int32) {
        let (port, fd) = bindFreePort()
        guard fd >= 0 else { return (0, 0, -1) }
        guard listen(fd, 16) == 0 else {
            close(fd)
            return (0, 0, -1)
        }
        return (port, Clock.monotonicNanoseconds(), fd)
    }

    /// The TCP ports something listens on now (allowed in the rule, so the host's own listeners are not
    /// what is measured).
    private static func currentTCPListenPorts() -> [UInt16] {
        var ports: Set<UInt16> = []
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = ProcFile.readText(file) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 3, fields[3] == "0A", let colon = fields[1].lastIndex(of: ":"),
                    let port = UInt16(fields[1][fields[1].index(after: colon)...], radix: 16)
                else { continue }
                ports.insert(port)
            }
        }
        return ports.sorted()
    }

    /// Runs a program to completion with its output discarded; true on exit 0.
    private static func runQuietly(_ program: String, _ arguments: [String]) -> Bool {
        guard let child = try? ChildProcess(executable: program, arguments: arguments, standardOutput: "/dev/null"),
            let status = child.wait(timeoutMilliseconds: 10_000)
        else { return false }
        return status == 0
    }
}

extension SystemHealthResult {
    /// Every row of the table, for `benchmarks/plot` (`system-health.csv`): "scenario: subject".
    @MainActor
    func recordSamples() {
        for (subject, samples) in [
            ("tmpfs past 85 % → alert: vigil (`disk:` rule)", diskVigil),
            ("tmpfs past 85 % → alert: `df` poll loop, 1 s", diskPeer),
            ("file deleted → resolved: vigil", diskResolved),
            ("listen(0.0.0.0) → alert: vigil (`listening:` rule)", listenVigil),
            ("listen(0.0.0.0) → alert: `ss -Htln` poll loop, 1 s", listenPeer),
            ("close → resolved: vigil", listenResolved),
            ("program started, listens → alert: vigil (exec cue)", execListenVigil),
        ] {
            Samples.record(scenario: "system-health", subject: subject, nanoseconds: samples)
        }
    }
}
