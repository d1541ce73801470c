import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The mode and owner scenarios' results, for RESULTS.md.
struct PermissionResults {
    var quick: Bool
    /// "Date …, machine …, command …": each section says where its figures come from, since a developer may
    /// rerun one of them alone (`--permissions-only`) and paste it.
    var provenance: String
    var filesystem: String
    /// vigil, then each `PermissionPeer` (nil when not run).
    var restore: [RestoreLatencyResult]?
    var restoreRounds = 1
    /// vigil and the peer loop, alternating, one pair per round.
    var burst: [OverflowBurstResult]?
    var scan: StartupScanResult?

    var vigilBursts: [OverflowBurstResult] { (burst ?? []).filter(\.isVigil) }
    var peerBursts: [OverflowBurstResult] { (burst ?? []).filter { !$0.isVigil } }

    /// Every restore alerted with the file right, every file right after the bursts, every drift put right
    /// at start-up. The peers' misses are figures, not failures.
    var detectedEverything: Bool {
        (restore?.first?.detectedEverything ?? true)
            && vigilBursts.allSatisfy { $0.failures.isEmpty && $0.wrongAtEnd == 0 && $0.confirmedNanoseconds != nil }
            && (scan?.detectedEverything ?? true)
    }

    var failures: [String] {
        var out: [String] = []
        if let vigil = restore?.first, !vigil.detectedEverything {
            out.append(
                "chmod restore: \(vigil.missed) missed, \(vigil.doubled) doubled, \(vigil.wrongAfter) not 0640 when alerted"
                    + (vigil.failures.isEmpty ? "" : "; \(vigil.failures.joined(separator: "; "))")
            )
        }
        for burst in vigilBursts where !(burst.failures.isEmpty && burst.wrongAtEnd == 0) {
            out.append("overflow burst: \(burst.failures.joined(separator: "; "))")
        }
        if let scan, !scan.detectedEverything {
            out.append(
                "start-up scan: \(scan.failures.isEmpty ? "no trial ran" : scan.failures.joined(separator: "; "))"
            )
        }
        return out
    }

    static func median(_ values: [UInt64]) -> UInt64? {
        guard !values.isEmpty else { return nil }
        return values.sorted()[(values.count - 1) / 2]
    }

    static func seconds(_ nanoseconds: UInt64?) -> String {
        guard let nanoseconds else { return "–" }
        let centis = Int((Double(nanoseconds) / 1e7).rounded())
        return "\(centis / 100).\(centis % 100 < 10 ? "0" : "")\(centis % 100) s"
    }

    /// `a ÷ b` with two decimals, or as "1/N" when it is below 0.1 (two decimals would print 0.00×).
    static func shortRatio(_ a: UInt64, _ b: UInt64) -> String {
        guard a > 0, b > 0 else { return "n/a" }
        let value = Double(a) / Double(b)
        return value >= 0.1 ? ratio(Double(a), Double(b)) : "1/\(Int((1 / value).rounded()))"
    }

    static func range(_ values: [UInt64], _ format: (UInt64) -> String) -> String {
        guard let low = values.min(), let high = values.max() else { return "–" }
        return values.count == 1 ? format(low) : "\(format(low)) – \(format(high))"
    }

    func targetRows() -> [String] {
        var out: [String] = []
        if let vigil = restore?.first {
            if let s = LatencySummary(vigil.latencies) {
                out.append(
                    "| `chmod 0777` on a watched file → restored and alerted, p50 | ≤ \(milliseconds(Report.targetP50)) ms | \(milliseconds(s.p50)) ms | \(s.p50 <= Report.targetP50 ? "yes" : "**no**") |"
                )
                out.append(
                    "| `chmod 0777` on a watched file → restored and alerted, p99 | ≤ \(milliseconds(Report.targetP99)) ms | \(milliseconds(s.p99)) ms | \(s.p99 <= Report.targetP99 ? "yes" : "**no**") |"
                )
            }
            out.append(
                "| chmod restores alerted with the file 0640 again | all \(vigil.expected) | \(vigil.latencies.count - vigil.wrongAfter) (\(vigil.missed) missed, \(vigil.doubled) doubled) | \(vigil.detectedEverything ? "yes" : "**no**") |"
            )
        }
        for nice in Set(vigilBursts.map(\.writerNice)).sorted() {
            let runs = vigilBursts.filter { $0.writerNice == nice }
            let met = runs.allSatisfy { $0.failures.isEmpty && $0.wrongAtEnd == 0 && $0.confirmedNanoseconds != nil }
            let overflows = runs.map(\.overflows).reduce(0, +)
            out.append(
                "| overflow burst (\(runs.count) × \(runs[0].files) files chmodded 0666, writer at nice \(nice)): files left wrong | 0 | \(runs.map { String($0.wrongAtEnd) }.joined(separator: ", ")) (\(overflows) overflow\(overflows == 1 ? "" : "s") in all) | \(met ? "yes" : "**no**") |"
            )
        }
        if let scan {
            let left = scan.trials.map(\.wrongAfterWait).reduce(0, +)
            out.append(
                "| start-up scan (\(scan.files) files, \(scan.leafDirectories) directories, 1 % drifted): drifts left after READY | 0 of \(scan.driftedFiles + scan.driftedDirectories) × \(scan.trials.count) | \(left) | \(scan.detectedEverything ? "yes" : "**no**") |"
            )
        }
        return out
    }

    func markdown() -> [String] {
        var out: [String] = []
        out += restoreMarkdown()
        out += burstMarkdown()
        out += scanMarkdown()
        return out
    }

    private func ruleBlock() -> [String] {
        [
            "The rule (`bench/permissions.yaml` in the sandbox, checked with `vigil check --root SANDBOX` first):\n",
            "```yaml",
        ]
            + [permissionRules.trimmingTrailingNewlines(), "```\n"]
    }

    private func restoreMarkdown() -> [String] {
        guard let restore, let vigil = restore.first else { return [] }
        var out: [String] = []
        out.append("## Mode and owner rules: `chmod 0777` → restored and alerted (ms)\n")
        out.append("\(provenance); sandbox on \(filesystem).\n")
        out.append(
            """
            A `SeedSandbox` with a tree under `/var/log/analytics/bench` (10 directories, one file per trial, \
            0640, analytics:log-readers, as the seed's hardening leaves them). vigil: `vigil run --rules \
            bench/permissions.yaml --root SANDBOX --alerts FILE`, used after `READY=1`. A trial picks a file \
            never touched before in that round, takes the monotonic time, calls `chmod(path, 0777)` and waits \
            (inotify on the output file, deadline \(missTimeoutMilliseconds) ms for vigil and \
            \(peerMissTimeoutMilliseconds) ms for the peers; never a sleep) for the subject's line about that \
            file: vigil's alert with `"kind":"\(permissionsRestoredKind)"` and `"path"` the server path; the \
            peer's `restored PATH`. Latency = chmod call → line seen. Then `stat` must find the file 0640 again \
            (`wrong after line`). \(vigil.expected) trials per subject in \(restoreRounds) \
            round\(restoreRounds == 1 ? "" : "s"), each subject in turn on its own fresh sandbox within a round; \
            a cookie chmod ends vigil's rounds, so a second alert about any trial's file would be counted. \
            *CPU pressure*: the share of the trials' wall time during which some task waited for a CPU \
            (`/proc/pressure/cpu`): this VM is shared, and other work there shows in every tail.

            - peer: `\(PermissionPeer.loop.command(tree: "TREE", output: "OUT", errors: "ERR"))`, the loop \
            SREs write. Its own `chmod 0640` is an `IN_ATTRIB` too (chmod reports a change even when the mode \
            is already right), so every file it has restored comes round again, for ever: a round's k-th trial \
            waits behind the k−1 files still circling, each costing a `chmod` fork. Its extra lines are those.
            - peer, guarded: `\(PermissionPeer.guarded.command(tree: "TREE", output: "OUT", errors: "ERR"))`: \
            the fix an SRE makes once the loop is noticed (one `stat` fork per event, two events per restore).

            """
        )
        out.append(
            "| subject | trials measured | missed | wrong after line | extra lines | p50 | p90 | p99 | max | mean | p50 of each round's first \(RestoreLatency.earlyTrials) | CPU pressure |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for result in restore {
            let early = LatencySummary(result.early).map { milliseconds($0.p50) } ?? "–"
            if let s = LatencySummary(result.latencies) {
                out.append(
                    "| \(result.subject) | \(result.latencies.count)/\(result.expected) | \(result.missed) | \(result.wrongAfter) | \(result.extraLines) | \(milliseconds(s.p50)) | \(milliseconds(s.p90)) | \(milliseconds(s.p99)) | \(milliseconds(s.max)) | \(milliseconds(s.mean)) | \(early) | \(result.pressure.share) |"
                )
            } else {
                out.append(
                    "| \(result.subject) | 0/\(result.expected) | \(result.missed) | – | \(result.extraLines) | – | – | – | – | – | – | \(result.pressure.share) |"
                )
            }
        }
        out.append("")
        for result in restore where !result.failures.isEmpty {
            out.append("Problem (\(result.subject)): \(result.failures.joined(separator: "; ").replacingNewlines())\n")
        }
        if vigil.doubled > 0 {
            out.append("vigil wrote \(vigil.doubled) second alert(s) about a trial's file.\n")
        }
        out.append("Ratios (vigil ÷ peer; below 1 means vigil is faster):\n")
        out.append("| comparison | p50 | p99 |")
        out.append("|---|---|---|")
        if let mine = LatencySummary(vigil.latencies) {
            for peer in restore.dropFirst() {
                guard let theirs = LatencySummary(peer.latencies) else { continue }
                out.append(
                    "| vigil vs \(peer.subject) | \(Self.shortRatio(mine.p50, theirs.p50)) | \(Self.shortRatio(mine.p99, theirs.p99)) |"
                )
            }
        }
        out.append("")
        if let loop = restore.dropFirst().first, loop.trialNanoseconds > 0 {
            let perSecond = Int((Double(loop.extraLines) / (Double(loop.trialNanoseconds) / 1e9)).rounded())
            out.append(
                "The loop peer wrote \(loop.extraLines) lines besides the \(loop.latencies.count) measured (\(perSecond) per second while its trials ran): its own chmods coming round. It never goes quiet; the harness ends it with its process group.\n"
            )
        }
        out += ruleBlock()
        return out
    }

    private func burstMarkdown() -> [String] {
        guard let burst, !burst.isEmpty else { return [] }
        var out: [String] = []
        let files = burst[0].files
        out.append("## Mode and owner rules: overflow burst, \(files) files chmodded at once\n")
        out.append("\(provenance); sandbox on \(filesystem).\n")
        let queued = ProcFile.readInteger("/proc/sys/fs/inotify/max_queued_events").map(String.init) ?? "?"
        out.append(
            """
            \(files) files in \(OverflowBurst.directories) directories under `/var/log/analytics/burst`, all \
            right; the subject is started (vigil: READY=1 after its start-up walk; the peer: inotifywait's \
            "Watches established."), then the harness alone, one process, calls `chmod(path, 0666)` on every \
            file as fast as it can, reading nothing meanwhile, at nice -10: the priority of vigil's pipeline \
            threads, so that the writer is not held back by vigil's priority. Rows *writer at nice 0* (not in \
            quick runs) are the same burst from an ordinary process: when other work contends for the 2 cores, \
            vigil's pipeline at -10 wins the CPU over it, which slows the writer and can spare the queue an \
            overflow (compare the burst times and the CPU pressure). The kernel queues at most \
            fs.inotify.max_queued_events = \(queued) events per inotify instance; beyond that it drops them \
            and queues one `IN_Q_OVERFLOW`, on which vigil walks every ruled tree again and writes one \
            `\(permissionEventsLostKind)` alert. The harness then reads the alerts until 100 ms pass without \
            one, `stat`s every file and directory of the tree, and repeats until everything is right or \
            \(vigilBursts.first?.windowSeconds ?? 0) s have passed since the burst (a file left wrong fails the \
            run). *All right after* = first chmod → the `time` of the last restored alert before the clean \
            sweep (vigil writes it right after its chmod); *confirmed* = first chmod → the end of that sweep. \
            A cookie chmod afterwards collects the rest of the alerts. The peer loop gets \
            \(peerBursts.first?.windowSeconds ?? 0) s, with a sweep every half second (it never goes quiet); \
            its files still wrong then are reported. One vigil and one peer per round, \
            \(vigilBursts.count) round\(vigilBursts.count == 1 ? "" : "s").

            """
        )
        out.append(
            "| subject | writer's nice | burst (first → last chmod) | all right after | confirmed by stat | overflows | restored lines (distinct files) | wrong at the end | CPU pressure |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|")
        for result in burst {
            out.append(
                "| \(result.subject) | \(result.writerNice) | \(milliseconds(result.burstNanoseconds)) ms | \(result.allRightNanoseconds.map { "\(milliseconds($0)) ms" } ?? "–") | \(result.confirmedNanoseconds.map { "\(milliseconds($0)) ms" } ?? "not within \(result.windowSeconds) s") | \(result.overflows) | \(result.restoredLines) (\(result.restoredDistinct)) | \(result.wrongAtEnd)\(result.wrongAtEnd > 0 ? " after \(result.windowSeconds) s" : "") | \(result.pressure.share) |"
            )
        }
        out.append("")
        for nice in Set(vigilBursts.map(\.writerNice)).sorted() {
            let runs = vigilBursts.filter { $0.writerNice == nice }
            let mine = runs.compactMap(\.allRightNanoseconds)
            guard let median = Self.median(mine) else { continue }
            let bursts = runs.map(\.burstNanoseconds)
            out.append(
                "- vigil, writer at nice \(nice): all right after median \(milliseconds(median)) ms (\(Self.range(mine) { milliseconds($0) }) ms) over \(mine.count) burst\(mine.count == 1 ? "" : "s"); confirmed by stat: median \(milliseconds(Self.median(runs.compactMap(\.confirmedNanoseconds)) ?? 0)) ms; the writer's burst took median \(milliseconds(Self.median(bursts) ?? 0)) ms; \(runs.map(\.overflows).reduce(0, +)) overflows in all."
            )
        }
        let theirs = peerBursts.map(\.wrongAtEnd)
        if !theirs.isEmpty {
            out.append(
                "- The peer loop left \(theirs.map(String.init).joined(separator: ", ")) of \(files) files wrong after \(peerBursts[0].windowSeconds) s; its writer's burst took median \(milliseconds(Self.median(peerBursts.map(\.burstNanoseconds)) ?? 0)) ms."
            )
        }
        let overflowLines = peerBursts.map(\.overflows).reduce(0, +)
        if overflowLines > 0 {
            out.append(
                "- Its \(overflowLines) lines without a path are inotifywait's output for events it could not name (the overflow): the loop runs `chmod 0640 \"\"` on them and goes on; nothing walks the tree again."
            )
        }
        for result in vigilBursts where result.restoredDistinct < result.files {
            out.append(
                "\nvigil's restored alerts named \(result.restoredDistinct) distinct files of \(result.files) (\(result.files - result.restoredDistinct) put right without an alert naming them, or alerted under another path)."
            )
        }
        for result in burst where !result.failures.isEmpty {
            out.append("\nProblem (\(result.subject)): \(result.failures.joined(separator: "; ").replacingNewlines())")
        }
        out.append("")
        return out
    }

    private func scanMarkdown() -> [String] {
        guard let scan else { return [] }
        var out: [String] = []
        out.append(
            "## Mode and owner rules: start-up scan of \(scan.files) files in \(scan.leafDirectories) directories\n"
        )
        out.append("\(provenance); sandbox on \(filesystem).\n")
        let limit: String
        if let found = scan.watchLimitFound, let used = scan.watchLimitUsed, found != used {
            limit =
                "fs.inotify.max_user_watches was \(found) (with \(scan.watchesInUse) watches held by all processes); raised to \(used) for the run (`/proc/sys`, as `sysctl -w` does) and restored after"
        } else {
            limit =
                "fs.inotify.max_user_watches = \(scan.watchLimitUsed.map(String.init) ?? "?") (\(scan.watchesInUse) watches held by all processes before the run): enough, left as it was"
        }
        out.append(
            """
            The harness makes \(scan.files) empty files, \(StartupScan.filesPerDirectory) per directory, in \
            \(scan.leafDirectories) directories grouped 100 to a parent under `/var/log/analytics/scan` \
            (\(scan.directories) directories in all; \(PermissionResults.seconds(scan.createNanoseconds)) to \
            make), all right, then before each start drifts \(scan.driftedFiles) files (every 200th to mode \
            0666, every 200th to root:root) and \(scan.driftedDirectories) directories (mode 0755). vigil: \
            `vigil run --rules bench/permissions.yaml --root SANDBOX --alerts FILE`, timed from spawn to \
            `READY=1` (vigil walks, judges and puts right every entry and watches every directory before it \
            says READY); its own "ready in X ms" (the daemon's start alone, without loading the binary and the \
            rules) and its "N watched directories" come from its start-up line; VmRSS and VmHWM (peak) from \
            `/proc/PID/status` right after READY; then every file and directory is `stat`ed. The peer, on the \
            same tree drifted the same way, right after each vigil start: \
            `chown -R 1001:1002 TREE && chmod -R u=rwX,g=rX,o= TREE` (TREE = the sandbox's \
            `/var/log/analytics`), timed from spawn to exit; it puts the tree right once and watches nothing \
            afterwards. Warm cache for both (the tree was just made). \(limit).

            """
        )
        out.append(
            "| start | spawn → READY | vigil's \"ready in\" | watched directories | VmRSS after READY | VmHWM | restored alerts | wrong at READY | wrong after | peer `chown -R && chmod -R` | peer: wrong after |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for (index, trial) in scan.trials.enumerated() {
            let peer = index < scan.peerNanoseconds.count ? "\(milliseconds(scan.peerNanoseconds[index])) ms" : "–"
            let peerWrong = index < scan.peerWrong.count ? "\(scan.peerWrong[index])" : "–"
            out.append(
                "| \(index + 1) | \(milliseconds(trial.readyNanoseconds)) ms | \(trial.loggedMilliseconds.map { "\($0) ms" } ?? "–") | \(trial.watches.map(String.init) ?? "–") | \(trial.rssKiB) KiB | \(trial.hwmKiB) KiB | \(trial.restoredAlerts) | \(trial.wrongAtReady) | \(trial.wrongAfterWait) | \(peer) | \(peerWrong) |"
            )
        }
        if let ready = Self.median(scan.trials.map(\.readyNanoseconds)) {
            let peer = Self.median(scan.peerNanoseconds)
            let logged = scan.trials.compactMap(\.loggedMilliseconds).sorted()
            let hwm = scan.trials.map(\.hwmKiB).sorted()
            out.append(
                "| **median** | **\(milliseconds(ready)) ms** | \(logged.isEmpty ? "–" : "\(logged[(logged.count - 1) / 2]) ms") | | | \(hwm[(hwm.count - 1) / 2]) KiB | | | | **\(peer.map { "\(milliseconds($0)) ms" } ?? "–")** | |"
            )
            if let peer {
                out.append(
                    "\nvigil spawn → READY ÷ `chown -R && chmod -R`: \(Self.shortRatio(ready, peer)) (medians of \(scan.trials.count); below 1 means vigil is faster)."
                )
            }
        }
        for (index, trial) in scan.trials.enumerated() {
            if let watches = trial.watches, watches < scan.directories {
                out.append(
                    "\nStart \(index + 1): vigil watched \(watches) directories, fewer than the tree's \(scan.directories): changes in the others are not seen as they happen (the watch limit, see vigil's log)."
                )
            }
        }
        for failure in scan.failures { out.append("\nProblem: \(failure.replacingNewlines())") }
        out.append("")
        return out
    }
}

extension PermissionResults {
    /// The chmod → restored latencies of every subject, for `benchmarks/plot` (`chmod-restore.csv`).
    @MainActor
    func recordSamples() {
        for result in restore ?? [] {
            Samples.record(scenario: "chmod-restore", subject: result.subject, nanoseconds: result.latencies)
        }
    }
}
