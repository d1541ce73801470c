import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The machine the figures come from.
enum Machine {
    static func kernelRelease() -> String {
        var names = utsname()
        guard uname(&names) == 0 else { return "unknown" }
        return withUnsafeBytes(of: names.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    static func processors() -> Int { sysconf(Int32(_SC_NPROCESSORS_ONLN)) }

    static func cpuModel() -> String {
        let text = ProcFile.readText("/proc/cpuinfo", limit: 1 << 20) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") { return line[line.index(after: colon)...].trimmed() }
        }
        return "unknown"
    }

    /// First line of `swift --version`, found on $PATH and run directly (no shell).
    static func swiftVersion(scratch: String) -> String {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/swift"
            guard access(candidate, X_OK) == 0 else { continue }
            let output = scratch + "/swift-version.txt"
            unlink(output)
            guard
                let process = try? ChildProcess(
                    executable: candidate,
                    arguments: ["--version"],
                    standardOutput: output,
                    standardError: output
                )
            else { break }
            _ = process.wait(timeoutMilliseconds: 20_000)
            let text = ProcFile.readText(output) ?? ""
            unlink(output)
            return text.split(separator: "\n").first(where: { $0.contains("Swift version") }).map { $0.trimmed() }
                ?? "unavailable"
        }
        return "unavailable (no swift on PATH)"
    }

    /// Now, as `YYYY-MM-DD HH:MM:SS UTC`.
    static func utcNow() -> String {
        var seconds = time_t(Clock.realtime().seconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }
}

extension Substring {
    func trimmed() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

/// Everything one run measured, rendered as RESULTS.md.
struct Report {
    var command: String
    var quick: Bool
    var flips: Int
    var vigilPath: String
    var vigil: DriftResult
    var peers: [DriftResult]
    var idle: IdleResult
    var scratch: String
    /// vigil and peer (a) again with the sandbox on tmpfs (empty when /dev/shm is not a tmpfs).
    var onTmpfs: [DriftResult] = []
    /// SIGKILL → "it died" line: vigil, forkstat and a poll loop (nil when not run).
    var processDeath: ProcessDeathResults?
    /// Many short-lived processes while vigil watches for one name (nil when not run).
    var burst: BurstResult?
    /// `vigil match` against grep, fail2ban-regex and SEC (nil when not run).
    var throughput: ThroughputResult?
    /// The log scenarios (nil with --no-logs).
    var logs: LogResults?
    /// The mode and owner scenarios (nil with --no-permissions).
    var permissions: PermissionResults?
    /// The rotation scenario (nil with --no-rotation).
    var rotation: RotationResult?
    /// The alert delivery scenario (nil with --no-delivery).
    var delivery: DeliveryResult?
    /// The system-health scenarios (nil with --no-system).
    var system: SystemHealthResult?
    /// The process thresholds scenario (nil with --no-thresholds).
    var thresholds: ThresholdResult?
    /// The hot reload scenario (nil with --no-reload).
    var reload: ReloadResult?
    /// The pipeline burst, vigil and inotifywait (empty when not run).
    var pipeline: [PipelineResult] = []

    /// Targets the product must meet.
    static let targetP50: UInt64 = 250_000
    static let targetP99: UInt64 = 1_000_000
    static let targetIdleCPU: Double = 10

    /// ", 500 process kills, a burst of 20000 processes", or empty.
    var processScope: String {
        (processDeath.map { ", \($0.trials) process kills" } ?? "")
            + (burst.map { ", a burst of \($0.processes) processes" } ?? "")
    }

    func markdown() -> String {
        var out: [String] = []
        out.append("# Vigil benchmark results\n")
        out.append(
            quick
                ? "Quick run (\(flips) flips\(processScope), \(idle.seconds) s idle): a smoke test, not the reference figures.\n"
                : "Reference run: \(flips) flips\(processScope), \(idle.seconds) s idle.\n"
        )
        out.append("- Date: \(Machine.utcNow())")
        out.append(
            "- Machine: Linux \(Machine.kernelRelease()), \(Machine.processors()) CPUs (nproc), \(Machine.cpuModel())"
        )
        out.append("- Swift: \(Machine.swiftVersion(scratch: scratch))")
        out.append("- Command: `\(command)`")
        out.append("- Vigil binary: `\(vigilPath)` (release), rules: the repository's `rules/`\n")

        out.append("## Targets\n")
        out.append("| target | required | measured | met |")
        out.append("|---|---|---|---|")
        let all = LatencySummary(vigil.samples())
        if let all {
            out.append(
                "| write → alert line, p50 | ≤ \(milliseconds(Self.targetP50)) ms | \(milliseconds(all.p50)) ms | \(all.p50 <= Self.targetP50 ? "yes" : "**no**") |"
            )
            out.append(
                "| write → alert line, p99 | ≤ \(milliseconds(Self.targetP99)) ms | \(milliseconds(all.p99)) ms | \(all.p99 <= Self.targetP99 ? "yes" : "**no**") |"
            )
        } else {
            out.append("| write → alert line | p50 ≤ 0.250 ms, p99 ≤ 1.000 ms | no samples | **no** |")
        }
        if let vigilTmpfs = onTmpfs.first, let s = LatencySummary(vigilTmpfs.samples()) {
            out.append(
                "| same, sandbox on tmpfs, p50 | ≤ \(milliseconds(Self.targetP50)) ms | \(milliseconds(s.p50)) ms | \(s.p50 <= Self.targetP50 ? "yes" : "**no**") |"
            )
            out.append(
                "| same, sandbox on tmpfs, p99 | ≤ \(milliseconds(Self.targetP99)) ms | \(milliseconds(s.p99)) ms | \(s.p99 <= Self.targetP99 ? "yes" : "**no**") |"
            )
        }
        if idle.failures.isEmpty {
            let cpu = Double(idle.cpuNanosecondsFromSchedstat) / 1e6
            out.append(
                "| idle CPU over \(idle.seconds) s | ≤ 10 ms (over 30 s) | \(milliseconds(idle.cpuNanosecondsFromSchedstat)) ms (schedstat), \(idle.cpuMillisecondsFromTicks) ms (stat ticks) | \(cpu <= Self.targetIdleCPU && idle.cpuMillisecondsFromTicks <= Self.targetIdleCPU ? "yes" : "**no**") |"
            )
        } else {
            out.append("| idle CPU | ≤ 10 ms over 30 s | failed | **no** |")
        }
        if let (before, after) = idle.eventOnly {
            let cpu = after.runNanoseconds &- before.runNanoseconds
            out.append(
                "| same, event-only rules (the seed rules less the \(idleSamplingRules.count) that sample on a timer) | ≤ 10 ms (over 30 s) | \(milliseconds(cpu)) ms (schedstat), \(after.contextSwitches - before.contextSwitches) wake-ups | \(Double(cpu) / 1e6 <= Self.targetIdleCPU ? "yes" : "**no**") |"
            )
        }
        if let processDeath { out += processDeath.targetRows() }
        if let burst { out += burst.targetRows() }
        if let throughput { out += throughput.targetRows() }
        if let logs { out += logs.targetRows() }
        if let permissions { out += permissions.targetRows() }
        if let rotation { out += rotation.targetRows() }
        out.append("")

        out.append("## Config drift: write → alert line seen (ms)\n")
        out.append(
            "Latency = monotonic time the harness saw the line in the output file (woken by inotify on that file) − monotonic time just before the write. Nearest-rank percentiles.\n"
        )
        out.append("| subject | flips measured | p50 | p90 | p99 | max | mean |")
        out.append("|---|---|---|---|---|---|---|")
        func row(_ name: String, _ samples: [UInt64]) {
            guard let s = LatencySummary(samples) else {
                out.append("| \(name) | 0 | – | – | – | – | – |")
                return
            }
            out.append(
                "| \(name) | \(s.count) | \(milliseconds(s.p50)) | \(milliseconds(s.p90)) | \(milliseconds(s.p99)) | \(milliseconds(s.max)) | \(milliseconds(s.mean)) |"
            )
        }
        row("**vigil**, all flips", vigil.samples())
        row("vigil, to false (firing)", vigil.samples { $0.insecure })
        row("vigil, to true (resolved)", vigil.samples { !$0.insecure })
        for method in WriteMethod.allCases {
            row("vigil, \(method.rawValue)", vigil.samples { $0.method == method })
        }
        for peer in peers {
            row(
                peer.subject.hasPrefix("peer (b)") ? "\(peer.subject), to false only" : "\(peer.subject), all flips",
                peer.samples()
            )
            for method in WriteMethod.allCases {
                row("\(driftShortName(peer.subject)), \(method.rawValue)", peer.samples { $0.method == method })
            }
        }
        out.append("")

        if onTmpfs.count == 2 {
            let tmpDevice = FileSystemType.name(of: getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp")
            out.append("### The filesystem's share\n")
            out.append(
                """
                The sandbox above lives under `$TMPDIR` (\(tmpDevice)). There a truncating write or a rename over a \
                file costs the writer the filesystem's own work before the kernel reports the event (ext4 \
                flushes the data of a file replaced that way, `auto_da_alloc`), and that cost is in every \
                subject's figure. The same flips with the sandbox on tmpfs (`/dev/shm`) take it out; peer (a) \
                there is the floor of any inotify watcher on this machine (one process wake-up to notice, one \
                to write the line, one for the harness to see it), so vigil's p50 minus peer (a)'s p50 is what \
                reading, parsing and judging the file and writing the alert add.

                """
            )
            out.append("| subject, sandbox on tmpfs | flips measured | p50 | p90 | p99 | max | mean |")
            out.append("|---|---|---|---|---|---|---|")
            row("**vigil**, all flips", onTmpfs[0].samples())
            for method in WriteMethod.allCases {
                row("vigil, \(method.rawValue)", onTmpfs[0].samples { $0.method == method })
            }
            row("\(onTmpfs[1].subject), all flips", onTmpfs[1].samples())
            if let mine = LatencySummary(onTmpfs[0].samples()), let floor = LatencySummary(onTmpfs[1].samples()) {
                let added = mine.p50 > floor.p50 ? mine.p50 - floor.p50 : 0
                out.append("\nOn tmpfs vigil's p50 is \(milliseconds(added)) ms above the floor (peer (a)).")
            }
            out.append("")
        }

        out.append("### Ratios (vigil ÷ peer; below 1 means vigil is faster)\n")
        out.append("| comparison | p50 | p99 |")
        out.append("|---|---|---|")
        for peer in peers where peer.subject != vigilExecSubject {
            let contentOnly = peer.subject.hasPrefix("peer (b)")
            let mine = LatencySummary(contentOnly ? vigil.samples { $0.insecure } : vigil.samples())
            let theirs = LatencySummary(peer.samples())
            if let mine, let theirs {
                let label =
                    contentOnly
                    ? "vigil (to false) vs \(peer.subject) (to false)" : "vigil (all) vs \(peer.subject) (all)"
                out.append(
                    "| \(label) | \(wideRatio(mine.p50, theirs.p50)) | \(wideRatio(mine.p99, theirs.p99)) |"
                )
            }
        }
        out += driftExecRatioRows(peers)
        out.append("")

        out.append("### Detection\n")
        out.append("| subject | lines expected | seen | missed | doubled / wrong state | other lines | problems |")
        out.append("|---|---|---|---|---|---|---|")
        for result in [vigil] + peers {
            let problems = result.failures.isEmpty ? "none" : result.failures.joined(separator: "; ").replacingPipes()
            out.append(
                "| \(result.subject) | \(result.expected) | \(result.latencies.count) | \(result.missed) | \(result.doubled) | \(result.otherLines) | \(problems) |"
            )
        }
        out.append("")

        if let processDeath { out += processDeath.markdown() }
        if let burst { out += burst.markdown() }
        if let throughput { out += throughput.markdown() }
        if let logs { out += logs.markdown() }
        if let permissions { out += permissions.markdown() }
        if let rotation { out += rotation.markdown() }
        if let delivery { out += delivery.markdown(provenance: "Same run.") }
        if let system { out += system.markdown(provenance: "Same run.") }
        if let thresholds {
            out.append("## Process thresholds and wake-ups (issue 7)\n\nSame run.\n")
            out += thresholds.lines().map { "- " + $0.replacingPrefix("thresholds: ") }
            out.append("")
        }
        if let reload {
            out.append("## Hot reload under load (issue 8)\n\nSame run.\n")
            out += reload.lines().map { "- " + $0.replacingPrefix("reload: ") }
            out.append("")
        }

        out += pipeline.markdown()

        out.append("## Idle cost (vigil run, seed rules, after READY=1)\n")
        if idle.failures.isEmpty {
            out.append(
                "| interval | CPU (schedstat, all threads) | CPU (utime+stime ticks) | wake-ups (context switches, all threads) | threads | VmRSS | VmHWM |"
            )
            out.append("|---|---|---|---|---|---|---|")
            out.append(
                "| \(idle.seconds) s | \(milliseconds(idle.cpuNanosecondsFromSchedstat)) ms | \(idle.cpuMillisecondsFromTicks) ms | \(idle.wakeups) | \(idle.after.threads) | \(idle.after.rssKiB) KiB | \(idle.after.hwmKiB) KiB |"
            )
            out.append(
                "| since start (for scale) | \(milliseconds(idle.after.runNanoseconds)) ms | \(Double(idle.after.ticks) * 1_000 / Double(sysconf(Int32(_SC_CLK_TCK)))) ms | \(idle.after.contextSwitches) | | | |"
            )
            if let (before, after) = idle.eventOnly {
                out.append(
                    "| \(idle.seconds) s, event-only rules | \(milliseconds(after.runNanoseconds &- before.runNanoseconds)) ms | \(Double(after.ticks - before.ticks) * 1_000 / Double(sysconf(Int32(_SC_CLK_TCK)))) ms | \(after.contextSwitches - before.contextSwitches) | \(after.threads) | \(after.rssKiB) KiB | \(after.hwmKiB) KiB |"
                )
            }
            out.append(
                "\nThe seed rules include \(idleSamplingRules.count) that poll by design (\(idleSamplingRules.joined(separator: ", ")): `above:` rules sample every second, `listening:` rules reread the sockets every 500 ms. The event-only row disables them through a local rule file (`- disable: [...]`, `--local-rules`), as an admin would.\n"
            )
            out += idle.peerMarkdown()
        } else {
            out.append("Failed: \(idle.failures.joined(separator: "; "))")
        }
        out.append("")

        out.append("## How it was measured\n")
        out.append(
            """
            - Each subject runs alone on a fresh `SeedSandbox` (config starts at `verify_ssl = true`), one after \
            the other in the same run: vigil, vigil (exec), peer (a), peer (b), incron, Monit; the same flip sequence for each, \
            in rounds (4 in the reference run, each subject in turn within a round) so that a slow patch of \
            the machine falls on every subject alike.
            - Flips alternate `verify_ssl` false/true; each false/true pair uses one save method: of every 8 pairs, \
            4 in place (`O_TRUNC` + write), 3 temp file + rename, 1 vim-style (rename away, new file).
            - vigil: `vigil run --rules rules/ --root SANDBOX --alerts FILE`, started with `$NOTIFY_SOCKET` and used \
            after `READY=1`. A flip counts when a line with `"rule":"\(sslRule)"` and the expected `"state"` \
            (`firing` for false, `resolved` for true) arrives; a matching line with the wrong state, or any \
            before the final cookie flip's alert, counts as doubled. Miss timeout \(missTimeoutMilliseconds) ms.
            - peer (a): `\(Peer.notice.command(directory: "DIR", output: "OUT"))`. It does not read the file, so \
            it is the floor for a shell watcher; measured on every flip (its line for `DIR/upload-service.conf`; \
            lines for the rename's temporary file are counted as other lines).
            - peer (b): `\(Peer.contentCheck.command(directory: "DIR", output: "OUT"))`. Same job as \
            the rule (content check, alert line), but it writes nothing when the value goes back to true, so it \
            is measured on the flips to false only; after each flip to true a probe file (`probe-N.conf`) and \
            its line prove it has handled that flip before the next one.
            \(driftPeerNotes().joined(separator: "\n"))
            - Peers are started with `setsid /bin/sh -c …`, declared ready when a probe file's line comes back \
            (never a sleep), and stopped by signalling their process group.
            - Idle: utime+stime from `/proc/PID/stat` (tick resolution, \(1_000 / Int(sysconf(Int32(_SC_CLK_TCK)))) ms), \
            time on CPU summed from `/proc/PID/task/*/schedstat` (ns), voluntary+nonvoluntary context switches \
            summed over `/proc/PID/task/*/status`, read right after READY and again after the interval.
            - Then vigil and peer (a) again, the same flips, with `TMPDIR=/dev/shm` (tmpfs) when it is one: \
            the filesystem's share above.
            - Malloc counts of the hot path come from the package-benchmark suite (`HotPath`): the last section \
            of the reference run's file.
            """
        )
        return out.joined(separator: "\n") + "\n"
    }
}

extension String {
    /// `|` would end a Markdown table cell.
    func replacingPipes() -> String {
        var result = ""
        for c in self { result += c == "|" ? "\\|" : String(c) }
        return result
    }
}
