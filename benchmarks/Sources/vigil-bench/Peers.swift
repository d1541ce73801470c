import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// The command-spawning peers of the latency scenarios (incron, Monit, swatch, SEC, fail2ban) and the
// "vigil (exec)" subject: every one of them runs the same one-shot command on an event,
// `/bin/sh -c 'echo "DATA" >> OUT'`, each passing its event data its own way (vigil through VIGIL_*
// environment variables, incron through `$@/$#`, Monit through MONIT_*, fail2ban through `<ip>`, swatch and
// SEC a constant: their only way to pass log data is to put it in a shell command, which the harness never
// does). So a ratio of vigil (exec) to a peer compares like with like: an event noticed and a process spawned.

/// How many trials the new subjects run; set once by main from `--quick` before any scenario.
enum PeerTrials {
    /// Set by main from `--quick`.
    nonisolated(unsafe) static var quick = false
    /// Monit checks once per cycle (1 s at its shortest), so each trial costs about a second.
    static var monitPerRound: Int { quick ? 2 : 26 }
    /// fail2ban bans from a queue its actions thread serves: about a tenth to half a second a line.
    static var fail2banPerRound: Int { quick ? 3 : 50 }
    /// swatch, SEC and vigil (exec) on appended lines, per round.
    static var logPerRound: Int { quick ? 10 : 250 }
    /// incron and vigil (exec) on config drift, per round (an even number: whole false/true pairs).
    static var commandFlipsPerRound: Int { quick ? 20 : 1_000 }
    /// Every subject of the rotation variant, per round.
    static var rotationPerRound: Int { quick ? 3 : 50 }
}

/// The one-shot command every subject of a scenario runs: `/bin/sh -c 'echo "DATA" >> OUT'`.
func oneShot(data: String, output: String) -> String { "echo \"\(data)\" >> '\(output)'" }

/// Process groups of the peer daemons now running (0: a free slot), in memory a signal handler may read: an
/// early `exit`, SIGINT or SIGTERM still stops them (they run in their own sessions, out of reach of the
/// terminal's signals).
nonisolated(unsafe) private let runningPeerGroups: UnsafeMutablePointer<Int32> = {
    let slots = UnsafeMutablePointer<Int32>.allocate(capacity: peerGroupSlots)
    slots.initialize(repeating: 0, count: peerGroupSlots)
    return slots
}()
private let peerGroupSlots = 64
nonisolated(unsafe) private var cleanupInstalled = false

/// SIGKILL to every peer group still registered.
private func killRunningPeerGroups() {
    for slot in 0..<peerGroupSlots where runningPeerGroups[slot] > 0 { kill(-runningPeerGroups[slot], SIGKILL) }
}

/// Registers `group`; on the first call, installs the atexit hook and the SIGINT/SIGTERM handlers.
private func registerPeerGroup(_ group: Int32) {
    if !cleanupInstalled {
        cleanupInstalled = true
        atexit { killRunningPeerGroups() }
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { received in
                killRunningPeerGroups()
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }
    for slot in 0..<peerGroupSlots where runningPeerGroups[slot] == 0 {
        runningPeerGroups[slot] = group
        return
    }
}

private func unregisterPeerGroup(_ group: Int32) {
    for slot in 0..<peerGroupSlots where runningPeerGroups[slot] == group { runningPeerGroups[slot] = 0 }
}

/// A peer daemon started under `setsid` (its own process group: the commands it spawns are in it too), stopped
/// with its whole group by `stop()`, by the caller's `defer`, or at exit or on SIGINT/SIGTERM if the harness
/// ends early.
final class PeerDaemon {
    let process: ChildProcess
    let errorPath: String

    init(arguments: [String], output: String, error: String) throws(HarnessError) {
        errorPath = error
        process = try ChildProcess(
            executable: "/usr/bin/setsid",
            arguments: arguments,
            standardOutput: output,
            standardError: error
        )
        registerPeerGroup(process.pid)
    }

    /// SIGTERM to the group, SIGKILL after two seconds.
    func stop() {
        stopProcessGroup(process)
        unregisterPeerGroup(process.pid)
    }

    /// Its stderr, for a failure message.
    func errors() -> String { (ProcFile.readText(errorPath) ?? "").replacingNewlines() }
}

/// Whether `program` is installed (on PATH or in /usr/sbin, /sbin); otherwise the failure to report.
func requireTool(_ program: String, package: String, failures: inout [String]) -> String? {
    if let path = findExecutable(program) { return path }
    failures.append(
        "\(program): not installed; install it with 'apt-get install -y \(package)' (benchmarks/run does)"
    )
    return nil
}

// MARK: vigil (exec)

/// `text` (a rule file) with `rule`'s `then:` replaced by one exec action running `command`; nil when the
/// file has no such rule.
func execRuleText(_ text: String, rule: String, command: [String], onResolved: Bool) -> String? {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let start = lines.firstIndex(of: "- rule: \(rule)") else { return nil }
    let quoted = command.map {
        "'" + $0.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
    }
    let then =
        ["  then:", "    - exec:", "        command: [\(quoted.joined(separator: ", "))]"]
        + (onResolved ? ["        on_resolved: true"] : [])
    // The rule's block: its indented lines up to the next top-level item (comments after it stay after it).
    var end = start + 1
    var last = start
    while end < lines.count, lines[end].isEmpty || lines[end].hasPrefix(" ") || lines[end].hasPrefix("#") {
        if lines[end].hasPrefix("  ") { last = end }
        end += 1
    }
    let block = lines[(start + 1)...last].filter { !$0.hasPrefix("  then:") } + then
    lines.replaceSubrange((start + 1)...last, with: block)
    return lines.joined(separator: "\n")
}

/// Copies the rule files of `rulesDirectory` into `destination` (a directory made here), with `rule`'s
/// `then:` replaced by one exec action running `command`: the shipped rules, so vigil does the same work as
/// the "vigil" subject, except that this rule spawns the one-shot instead of writing its alert line.
func writeExecRules(
    from rulesDirectory: String,
    into destination: String,
    rule: String,
    command: [String],
    onResolved: Bool
) throws(HarnessError) {
    guard FileTree.makeDirectories(destination, mode: 0o755) else {
        throw HarnessError("Failed to create '\(destination)'; check that TMPDIR is writable")
    }
    var found = false
    for name in FileTree.names(in: rulesDirectory) where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
        guard let text = ProcFile.readText(rulesDirectory + "/" + name) else {
            throw HarnessError("Failed to read '\(rulesDirectory)/\(name)'")
        }
        let changed = execRuleText(text, rule: rule, command: command, onResolved: onResolved)
        if changed != nil { found = true }
        try FileSaves.inPlace(destination + "/" + name, changed ?? text)
    }
    guard found else {
        throw HarnessError("No rule '\(rule)' in '\(rulesDirectory)'; the exec subject needs the shipped rule")
    }
}

// MARK: Monit

/// A Monit control file for the sandbox: the shortest cycle (1 s), its own pid, id, state and log files
/// under `work`, no HTTP interface, and the given checks. Written mode 0600, as Monit demands.
func writeMonitControl(work: String, checks: String) throws(HarnessError) -> String {
    let path = work + "/monitrc"
    try FileSaves.inPlace(
        path,
        """
        set daemon 1
        set pidfile \(work)/monit.pid
        set idfile \(work)/monit.id
        set statefile \(work)/monit.state
        set logfile \(work)/monit.log
        \(checks)

        """,
        mode: 0o600
    )
    return path
}

/// `monit -V`'s first line's version ("5.33.0"), for the report.
func toolVersion(_ executable: String, arguments: [String], work: String) -> String {
    let output = work + "/version.txt"
    guard
        let process = try? ChildProcess(
            executable: executable,
            arguments: arguments,
            standardOutput: output,
            standardError: output
        )
    else { return "unknown" }
    _ = process.wait(timeoutMilliseconds: 5_000)
    return (ProcFile.readText(output) ?? "").split(separator: "\n").first.map { String($0).trimmingTrailingNewlines() }
        ?? "unknown"
}

// MARK: Ratios

/// Rows "| A vs B | p50 | p99 |" of `mine` against each of `theirs` (vigil ÷ peer).
func ratioRows(
    _ mine: (name: String, samples: [UInt64]),
    against theirs: [(name: String, samples: [UInt64])]
)
    -> [String]
{
    guard let a = LatencySummary(mine.samples) else { return [] }
    return theirs.compactMap { peer in
        guard let b = LatencySummary(peer.samples) else { return nil }
        return
            "| \(mine.name.replacingPipes()) vs \(peer.name.replacingPipes()) | \(wideRatio(a.p50, b.p50)) | \(wideRatio(a.p99, b.p99)) |"
    }
}

/// Whether the "vigil (exec)" subjects run (`--no-exec-subject` leaves them out, for a vigil without the
/// exec action).
enum ExecSubject {
    nonisolated(unsafe) static var enabled = true
}
