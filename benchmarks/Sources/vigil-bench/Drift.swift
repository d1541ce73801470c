import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// How a flip saves the config.
enum WriteMethod: String, CaseIterable {
    /// open(O_TRUNC), write, close, as `echo … >` does (`SeedSandbox.write`).
    case inPlace = "in place"
    /// A temporary file renamed over the config, as `sed -i`, `install` and many editors do.
    case replacing = "temp + rename"
    /// vim's default: rename the original to `file~`, write a new file, delete the backup.
    case vim = "vim-style"
}

/// One change of `verify_ssl`: to false (`insecure`) or back to true.
struct Flip {
    let index: Int
    let insecure: Bool
    let method: WriteMethod

    /// Flips alternate false/true; each false/true pair uses one method: of every 8 pairs, 4 in place,
    /// 3 temp + rename, 1 vim-style (half in place, half editor-style), so every method flips both ways.
    static func plan(count: Int) -> [Flip] {
        (0..<count).map { index in
            let method: WriteMethod
            switch (index / 2) % 8 {
            case 0...3: method = .inPlace
            case 4...6: method = .replacing
            default: method = .vim
            }
            return Flip(index: index, insecure: index % 2 == 0, method: method)
        }
    }

    /// Saves the config this flip's way.
    func apply(to sandbox: SeedSandbox) throws(HarnessError) {
        let content = insecure ? SeedSandbox.insecureConfig : SeedSandbox.fixedConfig
        switch method {
        case .inPlace: try sandbox.write(SeedSandbox.configPath, content)
        case .replacing: try sandbox.writeReplacing(SeedSandbox.configPath, content)
        case .vim: try sandbox.writeLikeVim(SeedSandbox.configPath, content)
        }
    }
}

/// What one subject (Vigil or a peer) did over the flips.
struct DriftResult {
    let subject: String
    /// One latency (write → line seen, ns) per flip that was expected to produce a line and did.
    var latencies: [(flip: Flip, nanoseconds: UInt64)] = []
    /// Flips that were expected to produce a line.
    var expected = 0
    /// Expected lines that did not come within the timeout.
    var missed = 0
    /// Matching lines beyond one per flip (or with the wrong state), including any before the final cookie.
    var doubled = 0
    /// Lines about something else (another rule, the temporary file of a rename, a probe).
    var otherLines = 0
    /// Fatal problems (no READY, the cookie never came, a write failed).
    var failures: [String] = []

    var detectedEverything: Bool { missed == 0 && doubled == 0 && failures.isEmpty }

    /// Adds another round's figures of the same subject.
    mutating func merge(_ other: DriftResult) {
        latencies += other.latencies
        expected += other.expected
        missed += other.missed
        doubled += other.doubled
        otherLines += other.otherLines
        failures += other.failures
    }

    func samples(_ include: (Flip) -> Bool = { _ in true }) -> [UInt64] {
        latencies.filter { include($0.flip) }.map(\.nanoseconds)
    }
}

/// Milliseconds a flip's line may take before it counts as missed.
let missTimeoutMilliseconds = 2_000

/// The rule the flips exercise.
let sslRule = "upload-ssl-verification-disabled"

/// The name of the Vigil subject whose rule runs the one-shot (`exec`) instead of writing its alert line.
let vigilExecSubject = "vigil (exec)"

/// Runs the flips against the release `vigil run` on a fresh seed sandbox: write → alert line in `--alerts FILE`.
/// With `exec`, the shipped rules with this rule's `then:` an exec action (on resolutions too) running the
/// one-shot, `echo "$VIGIL_STATE" >> OUT`: write → the one-shot's line.
func runVigilDrift(vigil: String, rules: String, flips: [Flip], exec: Bool = false) -> DriftResult {
    var result = DriftResult(subject: exec ? vigilExecSubject : "vigil")
    let flips = exec ? Array(flips.prefix(PeerTrials.commandFlipsPerRound)) : flips
    guard let sandbox = freshSandbox("bench-vigil", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    do {
        // The harness's own files live in the sandbox, in a directory no rule watches.
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
        let alerts = work + "/alerts.jsonl"
        let output = exec ? work + "/out" : alerts
        let ruleFiles = exec ? work + "/rules" : rules
        if exec {
            try writeExecRules(
                from: rules,
                into: ruleFiles,
                rule: sslRule,
                command: ["/bin/sh", "-c", oneShot(data: "$VIGIL_STATE", output: output)],
                onResolved: true
            )
            try checkRules(vigil: vigil, rules: ruleFiles, work: work)
        }
        let follower = try LineFollower(path: output)
        let daemon = try DaemonProcess(
            executable: vigil,
            arguments: ["--rules", ruleFiles, "--root", sandbox.root, "--alerts", alerts],
            workDirectory: work
        )
        defer { daemon.stop() }
        result.otherLines += follower.drain().count

        /// Classifies a line: true when it is the flip's alert.
        func judge(_ line: String, expectFiring: Bool) -> Bool {
            if exec {
                if line == (expectFiring ? "firing" : "resolved") { return true }
                if line == "firing" || line == "resolved" { result.doubled += 1 } else { result.otherLines += 1 }
                return false
            }
            guard JSONField.string(line, "rule") == sslRule else {
                result.otherLines += 1
                return false
            }
            if JSONField.string(line, "state") == (expectFiring ? "firing" : "resolved") { return true }
            result.doubled += 1
            return false
        }

        for flip in flips {
            for line in follower.drain() { _ = judge(line, expectFiring: !flip.insecure) }
            result.expected += 1
            let start = Clock.monotonicNanoseconds()
            try flip.apply(to: sandbox)
            var seen: UInt64?
            while let (line, at) = follower.next(timeoutMilliseconds: missTimeoutMilliseconds) {
                if judge(line, expectFiring: flip.insecure) {
                    seen = at
                    break
                }
            }
            if let seen { result.latencies.append((flip, seen - start)) } else { result.missed += 1 }
        }

        // Cookie: one more flip, in place. Vigil handles events in order, so once its alert is in the file
        // every earlier alert is too; a matching line before it is an extra.
        let cookie = Flip(index: flips.count, insecure: !(flips.last?.insecure ?? false), method: .inPlace)
        try cookie.apply(to: sandbox)
        var cookieSeen = false
        while let (line, _) = follower.next(timeoutMilliseconds: 5_000) {
            if judge(line, expectFiring: cookie.insecure) {
                cookieSeen = true
                break
            }
        }
        if !cookieSeen { result.failures.append("\(result.subject): the cookie flip's alert never came") }
        for line in follower.drain() { _ = judge(line, expectFiring: !cookie.insecure) }
    } catch {
        result.failures.append("\(result.subject): \(error.description)")
    }
    return result
}

/// A shell pipeline doing (part of) Vigil's job, for comparison.
enum Peer: CaseIterable {
    /// (a) inotifywait | grep on the name: notices the write, never reads the file. The shell's floor.
    case notice
    /// (b) inotifywait | while read; grep -Eq on the content && echo: the same job as Vigil's rule.
    case contentCheck
    /// incrond with one table line on the directory (IN_CLOSE_WRITE,IN_MOVED_TO) running the one-shot with
    /// the file's path: like (a), a line per save, but a command spawned per event, as vigil (exec) does.
    case incron
    /// Monit at its shortest cycle (1 s): `check file … if changed checksum then exec` the one-shot.
    case monit

    var name: String {
        switch self {
        case .notice: "peer (a) inotifywait + grep on the name"
        case .contentCheck: "peer (b) inotifywait + grep -Eq on the content"
        case .incron: "incron (IN_CLOSE_WRITE+IN_MOVED_TO → one-shot)"
        case .monit: "Monit (1 s cycle: checksum → one-shot)"
        }
    }

    /// Whether it spawns a command per event (what vigil (exec) is compared with).
    var spawnsCommand: Bool { self != .notice }

    /// The incrond configuration (its own table directories, allow and deny files and lock, so no system file
    /// changes) and table, written under `work`; returns the configuration's path.
    static func prepareIncron(work: String, directory: String, output: String) throws(HarnessError) -> String {
        guard FileTree.makeDirectories(work + "/incron/system", mode: 0o755),
            FileTree.makeDirectories(work + "/incron/user", mode: 0o755)
        else { throw HarnessError("Failed to create '\(work)/incron'; check that TMPDIR is writable") }
        try FileSaves.inPlace(work + "/incron/allow", "root\n")
        try FileSaves.inPlace(work + "/incron/deny", "")
        try FileSaves.inPlace(
            work + "/incron/incron.conf",
            """
            system_table_dir = \(work)/incron/system
            user_table_dir = \(work)/incron/user
            allowed_users = \(work)/incron/allow
            denied_users = \(work)/incron/deny
            lockfile_dir = \(work)/incron
            lockfile_name = incron.lock

            """
        )
        // incrond runs the command with /bin/sh -c after putting the watched path for $@ and the name for $#.
        try FileSaves.inPlace(
            work + "/incron/system/vigil-bench",
            "\(directory) IN_CLOSE_WRITE,IN_MOVED_TO \(oneShot(data: "$@/$#", output: output))\n"
        )
        return work + "/incron/incron.conf"
    }

    func command(directory: String, output: String) -> String {
        let watch = "inotifywait -m -q -e close_write,moved_to --format '%w%f' '\(directory)'"
        switch self {
        case .incron:
            let work = String(output[..<(output.lastIndex(of: "/") ?? output.endIndex)])
            return "exec incrond -n -f '\(work)/incron/incron.conf'"
        case .monit:
            return ""  // never run as a shell line: runPeerDrift hands Monit to runMonitDrift

        case .notice:
            return "\(watch) | grep --line-buffered upload-service.conf >> '\(output)'"
        case .contentCheck:
            return
                "\(watch) | while read -r f; do grep -Eq '^[[:space:]]*verify_ssl[[:space:]]*=[[:space:]]*(false|no|off|0)' \"$f\" && echo \"verify_ssl false in $f\" >> '\(output)'; done"
        }
    }

    /// Whether this peer writes a line for the flip: (a) for every save, (b) only when the file says false.
    func reports(_ flip: Flip) -> Bool { self != .contentCheck || flip.insecure }

    /// The line this peer writes for the config itself.
    func targetLine(directory: String) -> String {
        self != .contentCheck
            ? "\(directory)/upload-service.conf" : "verify_ssl false in \(directory)/upload-service.conf"
    }

    /// What every probe line starts with.
    func probeLinePrefix(directory: String) -> String {
        self != .contentCheck ? "\(directory)/upload-service.conf.probe-" : "verify_ssl false in \(directory)/probe-"
    }

    /// A probe file's name and content, and the line the peer writes for it.
    func probe(_ k: Int, directory: String) -> (name: String, content: String, line: String) {
        switch self {
        case .notice, .incron, .monit:
            let name = "upload-service.conf.probe-\(k)"
            return (name, "probe\n", "\(directory)/\(name)")
        case .contentCheck:
            let name = "probe-\(k).conf"
            return (name, "verify_ssl = false\n", "verify_ssl false in \(directory)/\(name)")
        }
    }
}

/// Runs the flips against a shell peer on its own fresh sandbox.
func runPeerDrift(_ peer: Peer, flips: [Flip]) -> DriftResult {
    if peer == .monit { return runMonitDrift(flips: monitFlips(flips)) }
    var result = DriftResult(subject: peer.name)
    if peer == .incron, requireTool("incrond", package: "incron", failures: &result.failures) == nil { return result }
    let flips = peer == .incron ? Array(flips.prefix(PeerTrials.commandFlipsPerRound)) : flips
    guard let sandbox = freshSandbox("bench-peer", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    var process: PeerDaemon?
    defer { process?.stop() }
    do {
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
        let directory = sandbox.hostPath("/etc/analytics")
        let output = work + "/peer.out"
        let follower = try LineFollower(path: output)
        if peer == .incron { _ = try Peer.prepareIncron(work: work, directory: directory, output: output) }
        process = try PeerDaemon(
            arguments: ["/bin/sh", "-c", peer.command(directory: directory, output: output)],
            output: work + "/peer.stdout",
            error: work + "/peer.err"
        )
        let target = peer.targetLine(directory: directory)
        var probes = 0

        func isProbe(_ line: String) -> Bool { line.hasPrefix(peer.probeLinePrefix(directory: directory)) }
        /// Classifies a line: true when it is the config's line.
        func judge(_ line: String) -> Bool {
            if line == target { return true }
            if !isProbe(line) { result.otherLines += 1 }
            return false
        }
        /// Writes a probe file and waits for its line; lines for the config seen meanwhile are extras.
        func barrier(timeoutMilliseconds: Int) throws(HarnessError) -> Bool {
            let probe = peer.probe(probes, directory: directory)
            probes += 1
            try sandbox.write("/etc/analytics/" + probe.name, probe.content)
            while let (line, _) = follower.next(timeoutMilliseconds: timeoutMilliseconds) {
                if line == probe.line { return true }
                if judge(line) { result.doubled += 1 }
            }
            return false
        }

        // Ready when a probe's line comes back: inotifywait has placed its watch. No sleeping.
        var ready = false
        for _ in 0..<80 where !ready {
            ready = try barrier(timeoutMilliseconds: 250)
        }
        guard ready else {
            result.failures.append(
                "\(peer.name): no probe line within 20 s; its stderr: \(ProcFile.readText(work + "/peer.err") ?? "")"
            )
            return result
        }
        result.doubled = 0
        result.otherLines = 0

        for flip in flips {
            for line in follower.drain() where judge(line) { result.doubled += 1 }
            let start = Clock.monotonicNanoseconds()
            try flip.apply(to: sandbox)
            if peer.reports(flip) {
                result.expected += 1
                var seen: UInt64?
                while let (line, at) = follower.next(timeoutMilliseconds: missTimeoutMilliseconds) {
                    if judge(line) {
                        seen = at
                        break
                    }
                }
                if let seen { result.latencies.append((flip, seen - start)) } else { result.missed += 1 }
            } else if !(try barrier(timeoutMilliseconds: 5_000)) {
                // The peer handles events one at a time, in order: once the probe's line is out, its verdict
                // on this flip is too (nothing, for a flip back to true).
                result.failures.append("\(peer.name): a probe after flip \(flip.index) never came back")
                break
            }
        }
        if !(try barrier(timeoutMilliseconds: 5_000)) {
            result.failures.append("\(peer.name): the final probe never came back")
        }
    } catch {
        result.failures.append("\(peer.name): \(error.description)")
    }
    return result
}

// MARK: Samples and report rows of the command-spawning subjects

/// Writes every subject's samples (all its measured flips) to `config-drift` (or `config-drift-tmpfs`).
@MainActor
func recordDriftSamples(_ results: [DriftResult], tmpfs: Bool) {
    for result in results {
        Samples.record(
            scenario: tmpfs ? "config-drift-tmpfs" : "config-drift",
            subject: result.subject,
            nanoseconds: result.samples()
        )
    }
}

/// The short label of a subject in the per-method rows.
func driftShortName(_ subject: String) -> String {
    subject.hasPrefix("peer (") ? String(subject.prefix(8)) : subject
}

/// Ratio rows of vigil (exec) against each peer that spawns a command per event (on the flips both report:
/// every flip, or the flips to false for peer (b)).
func driftExecRatioRows(_ results: [DriftResult]) -> [String] {
    guard let exec = results.first(where: { $0.subject == vigilExecSubject }) else { return [] }
    let peers = Peer.allCases.filter(\.spawnsCommand).compactMap { peer in
        results.first { $0.subject == peer.name }.map { (peer, $0) }
    }
    return peers.flatMap { peer, result in
        let toFalse = peer == .contentCheck
        return ratioRows(
            (toFalse ? "vigil (exec) (to false)" : "vigil (exec) (all)", exec.samples { !toFalse || $0.insecure }),
            against: [(toFalse ? "\(result.subject) (to false)" : "\(result.subject) (all)", result.samples())]
        )
    }
}

/// "How it was measured" bullets for vigil (exec), incron and Monit, and what they cannot do.
func driftPeerNotes() -> [String] {
    [
        "- vigil (exec): the shipped rules with `\(sslRule)`'s `then:` an `exec` action (`on_resolved: true`) running the one-shot `/bin/sh -c 'echo \"$VIGIL_STATE\" >> OUT'`; a flip counts when `firing` (to false) or `resolved` (to true) arrives in OUT. Every command-spawning subject runs the same one-shot, each passing its data its own way.",
        "- incron: `incrond -n -f CONF` with its own configuration (system and user table directories, allow and deny files, lock file in the sandbox: no system file is touched) and one table line `DIR IN_CLOSE_WRITE,IN_MOVED_TO echo \"$@/$#\" >> OUT` (incrond runs it with `/bin/sh -c`). Like peer (a) it cannot read the file: a line per save, whatever the value; measured on every flip, ready when a probe file's line comes back.",
        "- Monit\(toolVersionLine("monit")): `monit -I -c CONTROL`, `set daemon 1` (its shortest cycle), own pid, id, state and log files in the sandbox, `check file … if changed checksum then exec \"/bin/sh -c 'echo $MONIT_SERVICE >> OUT'\"`. It looks once a second, so each flip waits a uniformly random 0–1 s first (fixed seed) to fall anywhere in the cycle; at most \(PeerTrials.monitPerRound) flips per round (each costs about a second). Like peer (a) it reports every save, not the value; a save that changes nothing is missed, and two saves in one cycle are one line.",
        "- Not measured: swatch, SEC and fail2ban (they follow appended log lines; a config saved in place or by rename is no stream of lines to them).",
    ]
}

/// "(Monit 5.33.0)"-style version, or "" when the tool is missing.
func toolVersionLine(_ tool: String) -> String {
    guard let path = findExecutable(tool) else { return " (not installed)" }
    let work = "/tmp/vigil-bench-version-\(getpid())"
    guard FileTree.makeDirectories(work, mode: 0o755) else { return "" }
    defer { FileTree.remove(work) }
    return " ("
        + Substring(toolVersion(path, arguments: ["-V"], work: work)).replacingFirst("This is Monit version ", with: "")
        + ")"
}

/// Monit's share of a round's flips: `PeerTrials.monitPerRound` of them, whole false/true pairs spread over
/// the round (so every save changes the checksum and the save methods vary).
func monitFlips(_ flips: [Flip]) -> [Flip] {
    let pairs = flips.count / 2
    let wanted = min(pairs, (PeerTrials.monitPerRound + 1) / 2)
    guard wanted > 0 else { return [] }
    var spacing = max(1, pairs / wanted)
    if spacing % 8 == 0 { spacing -= 1 }
    var chosen: [Flip] = []
    for k in 0..<wanted {
        let first: Int = 2 * k * spacing
        chosen.append(flips[first])
        chosen.append(flips[first + 1])
    }
    return chosen
}
