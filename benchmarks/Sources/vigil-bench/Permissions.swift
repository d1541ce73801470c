import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// Scenarios of issue 5, mode and owner rules, each measured in the same run as a shell peer:
//
// 1. chmod restore latency: `chmod(path, 0777)` on a file of the ruled tree → its `file.permissions_restored`
//    alert line seen (and the file 0640 again), against the `inotifywait -m -r -e attrib | while read; chmod`
//    loop SREs write.
// 2. Overflow burst: every file of a 50,000-file tree chmodded to 0666 by one process as fast as it can;
//    the kernel's inotify queue overflows, vigil walks the trees again (`vigil.events_lost`); time until
//    every file is 0640 again, by stat.
// 3. Start-up scan at scale (StartupScan.swift): 100,000 files in 10,000 directories, 1 % drifted; time to
//    READY, memory, watches, every drift put right; against `chown -R … && chmod -R …`.
//
// The tree is the seed's /var/log/analytics in a `SeedSandbox`, owned analytics:log-readers (1001:1002) as
// the seed's hardening leaves it: the harness must run as root to give files away, as vigil must to take
// them back.

/// The rule every mode and owner scenario runs: issue 5's example, on the seed's log tree.
let permissionRuleName = "analytics-log-permissions"

let permissionRules = """
    # vigil-bench, mode and owner scenarios: issue 5's rule on the seed's log tree.
    - rule: \(permissionRuleName)
      file: /var/log/analytics
      recursive: true
      owner: analytics
      group: log-readers
      dir_mode: "0750"
      file_mode: "0640"
      then: [alert, chmod, chown]

    """

/// The alert kind of a drift put right, and of an inotify overflow (events lost, trees walked again).
let permissionsRestoredKind = "file.permissions_restored"
let permissionEventsLostKind = "vigil.events_lost"

/// Server path of the ruled tree.
let ruledTree = "/var/log/analytics"

/// Milliseconds a peer's line may take before the trial counts as missed (its backlog grows, see below).
let peerMissTimeoutMilliseconds = 5_000

// MARK: Paths and trees

/// Host paths as NUL-terminated bytes in one buffer, so the timed loops make no String bridging.
struct CPaths {
    private(set) var bytes: [CChar] = []
    private(set) var starts: [Int] = []

    var count: Int { starts.count }

    mutating func append(_ path: String) {
        starts.append(bytes.count)
        bytes.append(contentsOf: path.utf8CString)
    }

    /// Calls `body` with each path's index and C string.
    func withEachPath(_ body: (Int, UnsafePointer<CChar>) -> Void) {
        bytes.withUnsafeBufferPointer { buffer in
            for (index, start) in starts.enumerated() { body(index, buffer.baseAddress! + start) }
        }
    }

    func withPath<R>(_ index: Int, _ body: (UnsafePointer<CChar>) -> R) -> R {
        bytes.withUnsafeBufferPointer { body($0.baseAddress! + starts[index]) }
    }

    func string(_ index: Int) -> String { withPath(index) { String(cString: $0) } }
}

/// A tree of files and directories made under the sandbox's ruled tree, every one as the rule wants it:
/// files 0640, directories 0750, analytics:log-readers.
struct PermissionTree {
    let sandbox: SeedSandbox
    /// Server path of the tree's top directory.
    let top: String
    /// Host paths of the files, and their server paths in the same order.
    var files = CPaths()
    var serverFiles: [String] = []
    /// Host paths of every directory of the tree, the top included.
    var directories = CPaths()
    /// Leaf directories (those holding the files).
    let leafDirectories: Int

    static let fileMode: mode_t = 0o640
    static let directoryMode: mode_t = 0o750

    /// `leaves` directories of `filesPerDirectory` empty files each under `top`; beyond 100 leaves they are
    /// grouped 100 to a directory (`top/gN/dM/fK.log`), as deep trees are.
    init(sandbox: SeedSandbox, top: String, leaves: Int, filesPerDirectory: Int) throws(HarnessError) {
        guard geteuid() == 0 else {
            throw HarnessError(
                "The mode and owner scenarios need root (the tree belongs to analytics:log-readers, 1001:1002, and vigil chowns it back); run benchmarks/run as root"
            )
        }
        self.sandbox = sandbox
        self.top = top
        leafDirectories = leaves
        serverFiles.reserveCapacity(leaves * filesPerDirectory)
        try makeDirectory(top)
        for leaf in 0..<leaves {
            let directory: String
            if leaves > 100 {
                let group = "\(top)/g\(leaf / 100)"
                if leaf % 100 == 0 { try makeDirectory(group) }
                directory = "\(group)/d\(leaf % 100)"
            } else {
                directory = "\(top)/d\(leaf)"
            }
            try makeDirectory(directory)
            for index in 0..<filesPerDirectory {
                try makeFile("\(directory)/f\(index).log")
            }
        }
    }

    private mutating func makeDirectory(_ serverPath: String) throws(HarnessError) {
        let host = sandbox.hostPath(serverPath)
        guard mkdir(host, Self.directoryMode) == 0 || errno == EEXIST,
            chown(host, SeedSandbox.analyticsUser, SeedSandbox.logReadersGroup) == 0,
            chmod(host, Self.directoryMode) == 0
        else {
            throw HarnessError("Failed to create the directory '\(host)': \(String(cString: strerror(errno)))")
        }
        directories.append(host)
    }

    /// One more file, right, outside the lists (a cookie); returns its host path.
    func makeExtraFile(_ serverPath: String) throws(HarnessError) -> String {
        let host = sandbox.hostPath(serverPath)
        try Self.createFile(host)
        return host
    }

    private mutating func makeFile(_ serverPath: String) throws(HarnessError) {
        let host = sandbox.hostPath(serverPath)
        try Self.createFile(host)
        files.append(host)
        serverFiles.append(serverPath)
    }

    /// An empty file, 0640, analytics:log-readers.
    private static func createFile(_ host: String) throws(HarnessError) {
        let fd = open(host, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, Self.fileMode)
        guard fd >= 0 else {
            throw HarnessError("Failed to create '\(host)': \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard fchown(fd, SeedSandbox.analyticsUser, SeedSandbox.logReadersGroup) == 0, fchmod(fd, Self.fileMode) == 0
        else {
            throw HarnessError("Failed to give '\(host)' to 1001:1002: \(String(cString: strerror(errno)))")
        }
    }

    /// Whether the entry at `path` has `mode`, owner analytics and group log-readers (lstat: a symlink is wrong).
    static func isRight(_ path: UnsafePointer<CChar>, mode: mode_t) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        return info.st_mode & 0o7777 == mode && info.st_uid == SeedSandbox.analyticsUser
            && info.st_gid == SeedSandbox.logReadersGroup
    }

    /// Files and directories that are not as the rule wants them, by stat, and the first of them.
    func wrong() -> (files: Int, directories: Int, example: String?) {
        var wrongFiles = 0
        var wrongDirectories = 0
        var example: String?
        files.withEachPath { _, path in
            if !Self.isRight(path, mode: Self.fileMode) {
                wrongFiles += 1
                if example == nil { example = String(cString: path) }
            }
        }
        directories.withEachPath { _, path in
            if !Self.isRight(path, mode: Self.directoryMode) {
                wrongDirectories += 1
                if example == nil { example = String(cString: path) }
            }
        }
        return (wrongFiles, wrongDirectories, example)
    }
}

/// `vigil run --rules SANDBOX/bench/permissions.yaml --root SANDBOX --alerts SANDBOX/bench/ALERTS` (the rule
/// file written there and checked with `vigil check --root` first), following the alert lines. Ready when
/// it returns: the start-up walk is done and every directory is watched.
func startPermissionVigil(
    _ vigil: String,
    sandbox: SeedSandbox,
    alerts: String = "alerts.jsonl",
    readyTimeoutMilliseconds: Int = 20_000
) throws(HarnessError) -> (daemon: DaemonProcess, follower: LineFollower, startNanoseconds: UInt64) {
    try sandbox.makeDirectories("/bench")
    let work = sandbox.hostPath("/bench")
    let rules = work + "/permissions.yaml"
    try FileSaves.inPlace(rules, permissionRules)
    try checkRules(vigil: vigil, rules: rules, work: work, root: sandbox.root)
    let alertsPath = work + "/" + alerts
    let follower = try LineFollower(path: alertsPath)
    let start = Clock.monotonicNanoseconds()
    let daemon = try DaemonProcess(
        executable: vigil,
        arguments: ["--rules", rules, "--root", sandbox.root, "--alerts", alertsPath],
        workDirectory: work,
        readyTimeoutMilliseconds: readyTimeoutMilliseconds
    )
    return (daemon, follower, start)
}

/// Realtime now, in microseconds since the epoch.
func realtimeMicroseconds() -> Int64 {
    let now = Clock.realtime()
    return now.seconds * 1_000_000 + Int64(now.nanoseconds / 1_000)
}

/// An alert's `time` (RFC 3339 UTC with microseconds, `2026-11-27T11:52:54.083042Z`) in microseconds since
/// the epoch.
func alertMicroseconds(_ line: String) -> Int64? {
    guard let text = JSONField.string(line, "time") else { return nil }
    let b = Array(text.utf8)
    guard b.count >= 20 else { return nil }
    func number(_ range: Range<Int>) -> Int32? {
        var value: Int32 = 0
        for i in range {
            guard b[i] >= 48 && b[i] <= 57 else { return nil }
            value = value * 10 + Int32(b[i] - 48)
        }
        return value
    }
    guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
        let minute = number(14..<16), let second = number(17..<19)
    else { return nil }
    var micros: Int64 = 0
    var digits = 0
    if b[19] == UInt8(ascii: ".") {
        var i = 20
        while i < b.count && b[i] >= 48 && b[i] <= 57 {
            if digits < 6 {
                micros = micros * 10 + Int64(b[i] - 48)
                digits += 1
            }
            i += 1
        }
    }
    while digits < 6 {
        micros *= 10
        digits += 1
    }
    var parts = tm()
    parts.tm_year = year - 1900
    parts.tm_mon = month - 1
    parts.tm_mday = day
    parts.tm_hour = hour
    parts.tm_min = minute
    parts.tm_sec = second
    return Int64(timegm(&parts)) * 1_000_000 + micros
}

// MARK: 1. chmod restore latency

/// What one subject did over the chmod trials.
struct RestoreLatencyResult {
    let subject: String
    /// chmod call → the subject's line for that file seen, ns.
    var latencies: [UInt64] = []
    /// The same, for the first `RestoreLatency.earlyTrials` trials of each round (a peer's backlog is small).
    var early: [UInt64] = []
    var expected = 0
    var missed = 0
    /// A second restored alert for a file of an earlier trial (vigil).
    var doubled = 0
    /// The subject's line came but the file was not 0640 (by stat) then.
    var wrongAfter = 0
    /// Lines besides the measured ones: vigil's start-up restores; the peer's own retriggers.
    var extraLines = 0
    /// Wall time of the trials (first chmod → last line), for the peer's line rate.
    var trialNanoseconds: UInt64 = 0
    /// How much of that time some task waited for a CPU (other work on this shared VM shows here).
    var pressure = CPUPressure()
    var failures: [String] = []

    var detectedEverything: Bool { missed == 0 && doubled == 0 && wrongAfter == 0 && failures.isEmpty }

    mutating func merge(_ other: RestoreLatencyResult) {
        latencies += other.latencies
        early += other.early
        expected += other.expected
        missed += other.missed
        doubled += other.doubled
        wrongAfter += other.wrongAfter
        extraLines += other.extraLines
        trialNanoseconds += other.trialNanoseconds
        pressure.merge(other.pressure)
        failures += other.failures
    }
}

/// The shell loops an SRE writes instead.
enum PermissionPeer: CaseIterable {
    /// The loop as written: its own chmod is an IN_ATTRIB too, so every file it touched comes round again,
    /// forever (one chmod and one line per turn).
    case loop
    /// The same loop, skipping files already 0640 (a `stat` per event): bounded, one retrigger per restore.
    case guarded

    var name: String {
        switch self {
        case .loop: "peer: inotifywait loop"
        case .guarded: "peer: inotifywait loop with a stat guard"
        }
    }

    /// The shell command on host directory `tree`, its lines appended to `output`, its stderr to `errors`.
    func command(tree: String, output: String, errors: String) -> String {
        let watch = "inotifywait -m -r -e attrib --format '%w%f' '\(tree)' 2>>'\(errors)'"
        switch self {
        case .loop:
            return "\(watch) | while read -r f; do chmod 0640 \"$f\"; echo \"restored $f\"; done >> '\(output)'"
        case .guarded:
            return
                "\(watch) | while read -r f; do [ \"$(stat -c %a \"$f\")\" = 640 ] || { chmod 0640 \"$f\"; echo \"restored $f\"; }; done >> '\(output)'"
        }
    }
}

enum RestoreLatency {
    /// Trials at the start of each round reported on their own.
    static let earlyTrials = 10

    /// Files of the tree a round's trials touch: one per trial, never one twice in a round (a peer loop that
    /// touched a file keeps writing lines for it), ten directories.
    static func tree(in sandbox: SeedSandbox, trials: Int) throws(HarnessError) -> PermissionTree {
        try PermissionTree(
            sandbox: sandbox,
            top: ruledTree + "/bench",
            leaves: 10,
            filesPerDirectory: (trials + 9) / 10
        )
    }

    /// File of trial `k`: each directory in turn.
    static func file(_ k: Int, leaves: Int = 10, perDirectory: Int) -> Int {
        (k % leaves) * perDirectory + k / leaves
    }

    /// One round of vigil: `trials` chmods on a fresh sandbox.
    static func runVigil(vigil: String, trials: Int) -> RestoreLatencyResult {
        var result = RestoreLatencyResult(subject: "vigil")
        guard let sandbox = freshSandbox("bench-perm-vigil", failures: &result.failures) else { return result }
        defer { sandbox.remove() }
        do {
            let tree = try Self.tree(in: sandbox, trials: trials)
            let cookie = try tree.makeExtraFile(tree.top + "/cookie.log")
            let (daemon, follower, _) = try startPermissionVigil(vigil, sandbox: sandbox)
            defer { daemon.stop() }
            // The seed's alerts/ directory is 0700: the start-up walk puts it right, and says so.
            result.extraLines += follower.drain().count
            let perDirectory = tree.files.count / 10
            var done = Set<String>()
            let started = Clock.monotonicNanoseconds()
            let pressureBefore = CPUPressure.total()

            /// Classifies a line that is not the one awaited.
            func other(_ line: String) {
                if JSONField.string(line, "kind") == permissionsRestoredKind,
                    let path = JSONField.string(line, "path"), done.contains(path)
                {
                    result.doubled += 1
                } else {
                    result.extraLines += 1
                }
            }

            for k in 0..<trials {
                for line in follower.drain() { other(line) }
                let index = file(k, perDirectory: perDirectory)
                let want = tree.serverFiles[index]
                result.expected += 1
                let start = Clock.monotonicNanoseconds()
                guard tree.files.withPath(index, { chmod($0, 0o777) }) == 0 else {
                    result.failures.append("vigil: chmod '\(tree.files.string(index))': errno \(errno)")
                    break
                }
                var seen: UInt64?
                while let (line, at) = follower.next(timeoutMilliseconds: missTimeoutMilliseconds) {
                    if JSONField.string(line, "kind") == permissionsRestoredKind
                        && JSONField.string(line, "path") == want
                    {
                        seen = at
                        break
                    }
                    other(line)
                }
                done.insert(want)
                guard let seen else {
                    result.missed += 1
                    continue
                }
                result.latencies.append(seen - start)
                if k < earlyTrials { result.early.append(seen - start) }
                if !tree.files.withPath(index, { PermissionTree.isRight($0, mode: PermissionTree.fileMode) }) {
                    result.wrongAfter += 1
                }
            }
            result.trialNanoseconds = Clock.monotonicNanoseconds() - started
            result.pressure.add(since: started, pressureBefore: pressureBefore)
            // Cookie: vigil handles events in order, so once its alert is in, any second alert about a trial's
            // file would be too.
            chmod(cookie, 0o777)
            var cookieSeen = false
            while let (line, _) = follower.next(timeoutMilliseconds: 5_000) {
                if JSONField.string(line, "path") == tree.top + "/cookie.log" {
                    cookieSeen = true
                    break
                }
                other(line)
            }
            if !cookieSeen { result.failures.append("vigil: the cookie file's restore was not alerted within 5 s") }
        } catch {
            result.failures.append("vigil: \(error.description)")
        }
        return result
    }

    /// Starts a peer loop on the sandbox's ruled tree; returns once inotifywait says its watches are placed.
    static func startPeer(
        _ peer: PermissionPeer,
        sandbox: SeedSandbox
    ) throws(HarnessError) -> (process: ChildProcess, follower: LineFollower) {
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
        let output = work + "/peer.out"
        let errors = work + "/peer.err"
        let follower = try LineFollower(path: output)
        let messages = try LineFollower(path: errors)
        let process = try ChildProcess(
            executable: "/usr/bin/setsid",
            arguments: [
                "/bin/sh", "-c", peer.command(tree: sandbox.hostPath(ruledTree), output: output, errors: errors),
            ]
        )
        // inotifywait -r writes "Watches established." once every directory is watched. No sleeping.
        let deadline = Clock.monotonicNanoseconds() + 60_000_000_000
        while true {
            let now = Clock.monotonicNanoseconds()
            guard now < deadline, let (line, _) = messages.next(timeoutMilliseconds: Int((deadline - now) / 1_000_000))
            else {
                stopProcessGroup(process)
                throw HarnessError(
                    "\(peer.name): inotifywait did not establish its watches within 60 s; its stderr: \(ProcFile.readText(errors) ?? "")"
                )
            }
            if line.contains("Watches established") { break }
        }
        return (process, follower)
    }

    /// One round of a peer loop: the same trials on its own fresh sandbox.
    static func runPeer(_ peer: PermissionPeer, trials: Int) -> RestoreLatencyResult {
        var result = RestoreLatencyResult(subject: peer.name)
        guard let sandbox = freshSandbox("bench-perm-peer", failures: &result.failures) else { return result }
        defer { sandbox.remove() }
        var process: ChildProcess?
        defer { stopProcessGroup(process) }
        do {
            let tree = try Self.tree(in: sandbox, trials: trials)
            let (started, follower) = try startPeer(peer, sandbox: sandbox)
            process = started
            let perDirectory = tree.files.count / 10
            let begin = Clock.monotonicNanoseconds()
            let pressureBefore = CPUPressure.total()
            for k in 0..<trials {
                result.extraLines += follower.drain().count
                let index = file(k, perDirectory: perDirectory)
                let want = "restored " + tree.files.string(index)
                result.expected += 1
                let start = Clock.monotonicNanoseconds()
                guard tree.files.withPath(index, { chmod($0, 0o777) }) == 0 else {
                    result.failures.append("\(peer.name): chmod '\(tree.files.string(index))': errno \(errno)")
                    break
                }
                var seen: UInt64?
                while let (line, at) = follower.next(timeoutMilliseconds: peerMissTimeoutMilliseconds) {
                    if line == want {
                        seen = at
                        break
                    }
                    result.extraLines += 1
                }
                guard let seen else {
                    result.missed += 1
                    continue
                }
                result.latencies.append(seen - start)
                if k < earlyTrials { result.early.append(seen - start) }
                if !tree.files.withPath(index, { PermissionTree.isRight($0, mode: PermissionTree.fileMode) }) {
                    result.wrongAfter += 1
                }
            }
            result.trialNanoseconds = Clock.monotonicNanoseconds() - begin
            result.pressure.add(since: begin, pressureBefore: pressureBefore)
            result.extraLines += follower.drain().count
        } catch {
            result.failures.append("\(peer.name): \(error.description)")
        }
        return result
    }

    /// Every subject over `trials` chmods in `rounds` rounds, each subject in turn within a round.
    static func run(vigil: String, trials: Int, rounds: Int) -> [RestoreLatencyResult] {
        var results =
            [RestoreLatencyResult(subject: "vigil")]
            + PermissionPeer.allCases.map {
                RestoreLatencyResult(subject: $0.name)
            }
        let perRound = max(1, trials / rounds)
        for round in 0..<rounds {
            let count = round == rounds - 1 ? trials - perRound * (rounds - 1) : perRound
            results[0].merge(runVigil(vigil: vigil, trials: count))
            for (i, peer) in PermissionPeer.allCases.enumerated() {
                results[i + 1].merge(runPeer(peer, trials: count))
            }
        }
        return results
    }
}

// MARK: 2. Overflow burst

/// One subject's burst: every file of the tree chmodded to 0666 by one process, then checked by stat.
struct OverflowBurstResult {
    let subject: String
    /// The nice value the harness chmodded at (vigil's pipeline threads run at -10).
    var writerNice: Int32 = 0
    var files = 0
    var directories = 0
    /// First chmod → last chmod returned.
    var burstNanoseconds: UInt64 = 0
    var chmodFailures = 0
    /// First chmod → the last restore: vigil, the `time` of the last restored alert before the clean stat
    /// sweep (written right after the chmod); a peer, the clean sweep.
    var allRightNanoseconds: UInt64?
    /// First chmod → the end of the stat sweep that found every file right.
    var confirmedNanoseconds: UInt64?
    /// vigil: `vigil.events_lost` alerts; a peer: lines inotifywait wrote for its overflow (no path).
    var overflows = 0
    /// vigil: restored alerts and the distinct paths they name; a peer: its lines and distinct files.
    var restoredLines = 0
    var restoredDistinct = 0
    /// Files still wrong when the subject's time was up (vigil: a failure).
    var wrongAtEnd = 0
    var wrongExample: String?
    /// How long the subject was given after the burst, seconds.
    var windowSeconds = 0
    /// From the first chmod until all was right (or the window closed).
    var pressure = CPUPressure()
    var failures: [String] = []

    var isVigil: Bool { subject.hasPrefix("vigil") }
}

enum OverflowBurst {
    static let directories = 50

    /// chmod(0666) of every file, as fast as one thread can, at nice `nice` (vigil's pipeline threads run at
    /// -10: at 0 on a busy 2-core host the writer gets the CPU vigil leaves it). Returns the monotonic and
    /// realtime (µs) of the first call, the monotonic time the last returned, and the failures.
    static func chmodEverything(
        _ files: CPaths,
        nice: Int32
    ) -> (start: UInt64, startMicros: Int64, end: UInt64, failed: Int) {
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        errno = 0
        let saved = getpriority(which, 0)
        // On Linux PRIO_PROCESS with 0 is the calling thread.
        if errno == 0 { _ = setpriority(which, 0, nice) }
        defer { _ = setpriority(which, 0, saved) }
        var failed = 0
        let startMicros = realtimeMicroseconds()
        let start = Clock.monotonicNanoseconds()
        files.withEachPath { _, path in if chmod(path, 0o666) != 0 { failed += 1 } }
        return (start, startMicros, Clock.monotonicNanoseconds(), failed)
    }

    static func tree(in sandbox: SeedSandbox, files: Int) throws(HarnessError) -> PermissionTree {
        try PermissionTree(
            sandbox: sandbox,
            top: ruledTree + "/burst",
            leaves: directories,
            filesPerDirectory: max(1, files / directories)
        )
    }

    static func runVigil(vigil: String, files: Int, windowSeconds: Int, writerNice: Int32) -> OverflowBurstResult {
        var result = OverflowBurstResult(subject: writerNice == -10 ? "vigil" : "vigil, writer at nice \(writerNice)")
        result.windowSeconds = windowSeconds
        result.writerNice = writerNice
        guard let sandbox = freshSandbox("bench-overflow-vigil", failures: &result.failures) else { return result }
        defer { sandbox.remove() }
        do {
            let tree = try Self.tree(in: sandbox, files: files)
            result.files = tree.files.count
            result.directories = tree.directories.count
            let cookieServer = tree.top + "/cookie.log"
            let cookie = try tree.makeExtraFile(cookieServer)
            let (daemon, follower, _) = try startPermissionVigil(
                vigil,
                sandbox: sandbox,
                readyTimeoutMilliseconds: 120_000
            )
            defer { daemon.stop() }
            _ = follower.drain()

            // The harness reads nothing while it chmods: it would only take CPU from vigil on 2 cores.
            let pressureBefore = CPUPressure.total()
            let burst = chmodEverything(tree.files, nice: writerNice)
            defer { result.pressure.add(since: burst.start, pressureBefore: pressureBefore) }
            result.burstNanoseconds = burst.end - burst.start
            result.chmodFailures = burst.failed
            var restored = Set<String>()
            var lastRestoreMicros: Int64?
            func classify(_ line: String) {
                switch JSONField.string(line, "kind") {
                case permissionsRestoredKind:
                    result.restoredLines += 1
                    if let path = JSONField.string(line, "path") { restored.insert(path) }
                    if let micros = alertMicroseconds(line) {
                        lastRestoreMicros = max(lastRestoreMicros ?? micros, micros)
                    }
                case permissionEventsLostKind:
                    result.overflows += 1
                default: break
                }
            }
            // Read alerts until 100 ms pass without one, then stat every file; until all are right or time is up.
            let deadline = burst.end + UInt64(windowSeconds) * 1_000_000_000
            while true {
                while let (line, _) = follower.next(timeoutMilliseconds: 100) {
                    classify(line)
                    if Clock.monotonicNanoseconds() >= deadline { break }
                }
                let wrong = tree.wrong()
                let now = Clock.monotonicNanoseconds()
                if wrong.files + wrong.directories == 0 {
                    result.confirmedNanoseconds = now - burst.start
                    if let lastRestoreMicros {
                        result.allRightNanoseconds = UInt64(max(0, lastRestoreMicros - burst.startMicros)) * 1_000
                    }
                    break
                }
                if now >= deadline {
                    result.wrongAtEnd = wrong.files + wrong.directories
                    result.wrongExample = wrong.example
                    result.failures.append(
                        "vigil: \(result.wrongAtEnd) files still wrong \(windowSeconds) s after the burst, such as '\(wrong.example ?? "?")'"
                    )
                    break
                }
            }
            // Cookie: once its restore is alerted, every alert about the burst (and every rescan's) is in.
            chmod(cookie, 0o777)
            var cookieSeen = false
            while let (line, _) = follower.next(timeoutMilliseconds: 30_000) {
                if JSONField.string(line, "path") == cookieServer {
                    cookieSeen = true
                    break
                }
                classify(line)
            }
            if !cookieSeen { result.failures.append("vigil: the cookie file's restore was not alerted within 30 s") }
            result.restoredDistinct = restored.count
            if daemon.process.wait(timeoutMilliseconds: 0) != nil {
                result.failures.append("vigil: exited during the burst; its log:\n\(daemon.log())")
            }
        } catch {
            result.failures.append("vigil: \(error.description)")
        }
        return result
    }

    static func runPeer(files: Int, windowSeconds: Int, writerNice: Int32) -> OverflowBurstResult {
        let peer = PermissionPeer.loop
        var result = OverflowBurstResult(subject: peer.name)
        result.windowSeconds = windowSeconds
        result.writerNice = writerNice
        guard let sandbox = freshSandbox("bench-overflow-peer", failures: &result.failures) else { return result }
        defer { sandbox.remove() }
        var process: ChildProcess?
        defer { stopProcessGroup(process) }
        do {
            let tree = try Self.tree(in: sandbox, files: files)
            result.files = tree.files.count
            result.directories = tree.directories.count
            let (started, follower) = try RestoreLatency.startPeer(peer, sandbox: sandbox)
            process = started
            let prefix = "restored " + sandbox.hostPath(ruledTree) + "/"
            let pressureBefore = CPUPressure.total()
            let burst = chmodEverything(tree.files, nice: writerNice)
            defer { result.pressure.add(since: burst.start, pressureBefore: pressureBefore) }
            result.burstNanoseconds = burst.end - burst.start
            result.chmodFailures = burst.failed
            var restored = Set<String>()
            // The loop never goes quiet (every file it touched comes round again): stat every file each half
            // second, and as soon as it has written a line for every file (it chmods before it writes), until
            // all are right or the window closes.
            let deadline = burst.end + UInt64(windowSeconds) * 1_000_000_000
            var nextSweep = Clock.monotonicNanoseconds() + 500_000_000
            var sweptAtEveryFile = false
            while true {
                let now = Clock.monotonicNanoseconds()
                let everyFile = !sweptAtEveryFile && restored.count >= tree.files.count
                if everyFile || now >= nextSweep || now >= deadline {
                    if everyFile { sweptAtEveryFile = true }
                    let wrong = tree.wrong()
                    let after = Clock.monotonicNanoseconds()
                    if wrong.files + wrong.directories == 0 {
                        result.confirmedNanoseconds = after - burst.start
                        result.allRightNanoseconds = result.confirmedNanoseconds
                        break
                    }
                    if after >= deadline {
                        result.wrongAtEnd = wrong.files + wrong.directories
                        result.wrongExample = wrong.example
                        break
                    }
                    nextSweep = after + 500_000_000
                    continue
                }
                guard
                    let (line, _) = follower.next(
                        timeoutMilliseconds: Int((min(nextSweep, deadline) - now) / 1_000_000) + 1
                    )
                else { continue }
                result.restoredLines += 1
                if line.hasPrefix(prefix) { restored.insert(line) } else { result.overflows += 1 }
            }
            result.restoredDistinct = restored.count
        } catch {
            result.failures.append("\(peer.name): \(error.description)")
        }
        return result
    }

    /// `rounds` rounds of: vigil with the writer at vigil's own nice (-10, so the writer is not slowed by
    /// vigil's priority), vigil with the writer at nice 0 (an ordinary process; when `ordinaryWriter`), and
    /// the peer loop with the writer at -10.
    static func run(
        vigil: String,
        files: Int,
        rounds: Int,
        vigilWindow: Int,
        peerWindow: Int,
        ordinaryWriter: Bool
    ) -> [OverflowBurstResult] {
        var out: [OverflowBurstResult] = []
        for _ in 0..<rounds {
            out.append(runVigil(vigil: vigil, files: files, windowSeconds: vigilWindow, writerNice: -10))
            if ordinaryWriter {
                out.append(runVigil(vigil: vigil, files: files, windowSeconds: vigilWindow, writerNice: 0))
            }
            out.append(runPeer(files: files, windowSeconds: peerWindow, writerNice: -10))
        }
        return out
    }
}
