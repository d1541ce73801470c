import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// Scenario "rotation and compression of a 1 GB log" (issue 5): a day of the seed's unified log grown to
// 1 GiB (`LogCorpus.writeLog`: the seed's line shapes with varying numbers), rotated by `vigil run` at start-up
// (the file is already over `size:`) into `olddir:` and compressed on vigil's gzip thread; timed from spawn to
// the `log.rotated` alert that names the `.gz` (vigil sends it when the compression has ended). In the same
// run, on copies of the same file, each in its own directory: `gzip -6 -c big.log > big.log.gz` and
// `logrotate -f -s STATE CONF` (compress, rotate 2, dateext; Debian's logrotate gzips with -6 too). Every
// output must pass `gzip -t` and decompress to the original byte for byte (`gzip -dc | cmp`), or the run fails.

let rotationRuleName = "big-log-rotation"
let rotatedKind = "log.rotated"
let rotationFailedKind = "log.rotation_failed"

/// Server path of the big log.
let bigLogPath = "/var/log/analytics/unified/big.log"

/// `size:` for a log of `bytes`: `1G`, `64M`, or the byte count.
func rotationSize(_ bytes: Int) -> String {
    if bytes % (1 << 30) == 0 { return "\(bytes >> 30)G" }
    if bytes % (1 << 20) == 0 { return "\(bytes >> 20)M" }
    return "\(bytes)"
}

func rotationRules(size: String) -> String {
    """
    # vigil-bench, rotation scenario: the unified log's big day, rotated once over its size and compressed.
    - rule: \(rotationRuleName)
      rotate: \(bigLogPath)
      size: \(size)
      keep: 2
      compress: true
      olddir: /var/log/archive

    """
}

/// One tool compressing one copy of the log.
struct CompressionRun {
    let tool: String
    var inputBytes = 0
    /// Spawn → the compressed file complete (vigil: its `log.rotated` alert seen; the others: exit).
    var nanoseconds: UInt64?
    /// vigil only: spawn → READY=1, and its own figure for the compression (`compress_milliseconds`).
    var readyNanoseconds: UInt64?
    var reportedCompressMilliseconds: String?
    var output: String?
    var outputBytes: Int?
    /// `gzip -t`, and `gzip -dc | cmp - original`.
    var gzipTestPassed: Bool?
    var contentMatches: Bool?
    var notes: [String] = []
    var failures: [String] = []

    init(tool: String) { self.tool = tool }

    /// Input bytes per second, in MB (10^6 bytes).
    var megabytesPerSecond: Double? {
        nanoseconds.map { $0 == 0 ? 0 : Double(inputBytes) / (Double($0) / 1e9) / 1e6 }
    }

    var verified: Bool { failures.isEmpty && gzipTestPassed == true && contentMatches == true }
}

struct RotationResult {
    var quick: Bool
    var provenance: String
    var filesystem: String
    var inputBytes = 0
    var generateNanoseconds: UInt64 = 0
    var ruleSize = ""
    /// vigil, gzip, logrotate, in that order in each round.
    var runs: [CompressionRun] = []
    var rounds = 1
    var failures: [String] = []

    var detectedEverything: Bool { failures.isEmpty && !runs.isEmpty && runs.allSatisfy(\.verified) }

    var problems: [String] {
        failures
            + runs.filter { !$0.verified }.map { run in
                run.failures.isEmpty
                    ? "\(run.tool): gzip -t \(run.gzipTestPassed == true ? "passed" : "FAILED"), content \(run.contentMatches == true ? "matches" : "DIFFERS")"
                    : run.failures.joined(separator: "; ")
            }
    }
}

enum RotationBench {
    static let gzipTool = "gzip -6 -c"
    static let logrotateTool = "logrotate -f"

    /// `cp SOURCE DESTINATION`, then fsync, so that writing the copy back is not part of anyone's figure.
    static func copy(_ source: String, to destination: String) throws(HarnessError) {
        let process = try ChildProcess(executable: "/bin/cp", arguments: ["--", source, destination])
        guard let status = process.wait(timeoutMilliseconds: 600_000), ChildProcess.exitCode(status) == 0 else {
            throw HarnessError("Failed to copy '\(source)' to '\(destination)'")
        }
        let fd = open(destination, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HarnessError("Failed to open '\(destination)': errno \(errno)") }
        fsync(fd)
        close(fd)
    }

    /// Runs `sh -c COMMAND`; its exit code (nil when it did not finish within `timeoutSeconds`).
    static func shell(_ command: String, timeoutSeconds: Int = 1_800, errors: String? = nil) -> Int32? {
        guard
            let process = try? ChildProcess(
                executable: "/bin/sh",
                arguments: ["-c", command],
                standardError: errors
            )
        else { return nil }
        guard let status = process.wait(timeoutMilliseconds: timeoutSeconds * 1_000) else {
            process.signal(SIGKILL)
            _ = process.wait(timeoutMilliseconds: 5_000)
            return nil
        }
        return ChildProcess.exitCode(status)
    }

    /// `gzip -t GZ` and `gzip -dc GZ | cmp -s - ORIGINAL`, into `run`.
    static func verify(_ run: inout CompressionRun, gz: String, original: String) {
        run.output = gz
        var info = stat()
        if stat(gz, &info) == 0 { run.outputBytes = Int(info.st_size) }
        run.gzipTestPassed = shell("gzip -t \(Throughput.quote(gz))") == 0
        run.contentMatches = shell("gzip -dc \(Throughput.quote(gz)) | cmp -s - \(Throughput.quote(original))") == 0
    }

    /// The names in `directory`.
    static func names(in directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    static func runVigil(
        vigil: String,
        master: String,
        bytes: Int,
        size: String,
        keepCapabilities: Bool
    ) -> CompressionRun {
        var run = CompressionRun(tool: keepCapabilities ? "vigil --keep-capabilities" : "vigil")
        run.inputBytes = bytes
        guard let sandbox = freshSandbox("bench-rotation", failures: &run.failures) else { return run }
        defer { sandbox.remove() }
        do {
            let log = sandbox.hostPath(bigLogPath)
            try copy(master, to: log)
            guard chown(log, SeedSandbox.analyticsUser, SeedSandbox.logReadersGroup) == 0, chmod(log, 0o640) == 0 else {
                throw HarnessError("Failed to give '\(log)' to analytics:log-readers: errno \(errno)")
            }
            try sandbox.makeDirectories("/bench")
            let work = sandbox.hostPath("/bench")
            let rules = work + "/rotation.yaml"
            try FileSaves.inPlace(rules, rotationRules(size: size))
            try checkRules(vigil: vigil, rules: rules, work: work, root: sandbox.root)
            let alerts = work + "/alerts.jsonl"
            let follower = try LineFollower(path: alerts)
            let start = Clock.monotonicNanoseconds()
            let daemon = try DaemonProcess(
                executable: vigil,
                arguments: ["--rules", rules, "--root", sandbox.root, "--alerts", alerts]
                    + (keepCapabilities ? ["--keep-capabilities"] : []),
                workDirectory: work,
                readyTimeoutMilliseconds: 600_000
            )
            defer { daemon.stop(timeoutMilliseconds: 60_000) }
            run.readyNanoseconds = Clock.monotonicNanoseconds() - start
            // The file is over size: at start-up: vigil renames it into olddir and compresses it on its gzip
            // thread; the log.rotated alert comes when the compression has ended and names the .gz.
            let deadline = start + 1_800_000_000_000
            var compressed: String?
            while compressed == nil {
                let now = Clock.monotonicNanoseconds()
                guard now < deadline,
                    let (line, at) = follower.next(timeoutMilliseconds: Int((deadline - now) / 1_000_000))
                else {
                    throw HarnessError("no log.rotated alert within 30 minutes; vigil's log:\n\(daemon.log())")
                }
                switch JSONField.string(line, "kind") {
                case rotatedKind:
                    guard let path = JSONField.label(line, "compressed") else {
                        // The log.rotation_failed alert that says why follows at once.
                        var why = ""
                        while let (next, _) = follower.next(timeoutMilliseconds: 5_000) {
                            if JSONField.string(next, "kind") == rotationFailedKind {
                                why = "; log.rotation_failed: " + (JSONField.string(next, "message") ?? next)
                                break
                            }
                        }
                        throw HarnessError(
                            "the rotation was not compressed: \(JSONField.string(line, "message") ?? line)\(why)"
                        )
                    }
                    compressed = path
                    run.nanoseconds = at - start
                    run.reportedCompressMilliseconds = JSONField.label(line, "compress_milliseconds")
                case rotationFailedKind:
                    throw HarnessError("log.rotation_failed: \(JSONField.string(line, "message") ?? line)")
                default: continue
                }
            }
            let gz = sandbox.hostPath(compressed ?? "")
            verify(&run, gz: gz, original: master)
            // What rotation leaves: the .gz in olddir, no uncompressed rotation, no log under the name (no create:).
            let archive = names(in: sandbox.hostPath("/var/log/archive"))
            run.notes.append("/var/log/archive after: \(archive.joined(separator: ", "))")
            if archive.contains(where: { !$0.hasSuffix(".gz") }) {
                run.failures.append("vigil left an uncompressed rotation in /var/log/archive: \(archive)")
            }
            if access(log, F_OK) == 0 { run.notes.append("\(bigLogPath) exists again") }
        } catch {
            run.failures.append("vigil: \(error)")
        }
        return run
    }

    static func runGzip(master: String, bytes: Int, directory: String) -> CompressionRun {
        var run = CompressionRun(tool: gzipTool)
        run.inputBytes = bytes
        let dir = directory + "/gzip"
        defer { FileTree.remove(dir) }
        do {
            guard FileTree.makeDirectories(dir, mode: 0o755) else { throw HarnessError("Failed to create '\(dir)'") }
            let log = dir + "/big.log"
            try copy(master, to: log)
            let start = Clock.monotonicNanoseconds()
            let code = shell("gzip -6 -c \(Throughput.quote(log)) > \(Throughput.quote(log + ".gz"))")
            run.nanoseconds = Clock.monotonicNanoseconds() - start
            guard code == 0 else { throw HarnessError("gzip exited with \(code.map(String.init) ?? "a timeout")") }
            verify(&run, gz: log + ".gz", original: master)
        } catch {
            run.failures.append("\(gzipTool): \(error)")
        }
        return run
    }

    static func runLogrotate(master: String, bytes: Int, directory: String) -> CompressionRun {
        var run = CompressionRun(tool: logrotateTool)
        run.inputBytes = bytes
        let dir = directory + "/logrotate"
        defer { FileTree.remove(dir) }
        do {
            guard let logrotate = findExecutable("logrotate") else {
                throw HarnessError("logrotate is missing; install it with 'apt-get install logrotate'")
            }
            // logrotate refuses a log directory others may write; this one is root's, 0755.
            guard FileTree.makeDirectories(dir + "/log", mode: 0o755) else {
                throw HarnessError("Failed to create '\(dir)/log'")
            }
            let log = dir + "/log/big.log"
            try copy(master, to: log)
            let conf = dir + "/logrotate.conf"
            try FileSaves.inPlace(conf, "\(log) {\n    compress\n    rotate 2\n    dateext\n}\n")
            let errors = dir + "/logrotate.err"
            let start = Clock.monotonicNanoseconds()
            let process = try ChildProcess(
                executable: logrotate,
                arguments: ["-f", "-s", dir + "/logrotate.state", conf],
                standardOutput: errors,
                standardError: errors
            )
            guard let status = process.wait(timeoutMilliseconds: 1_800_000) else {
                process.signal(SIGKILL)
                _ = process.wait(timeoutMilliseconds: 5_000)
                throw HarnessError("logrotate did not finish within 30 minutes")
            }
            run.nanoseconds = Clock.monotonicNanoseconds() - start
            guard ChildProcess.exitCode(status) == 0 else {
                throw HarnessError(
                    "logrotate exited with \(ChildProcess.exitCode(status)): \(ProcFile.readText(errors) ?? "")"
                )
            }
            let left = names(in: dir + "/log")
            guard let gz = left.first(where: { $0.hasPrefix("big.log-") && $0.hasSuffix(".gz") }) else {
                throw HarnessError("no big.log-DATE.gz after logrotate; the directory holds \(left)")
            }
            verify(&run, gz: dir + "/log/" + gz, original: master)
        } catch {
            run.failures.append("\(logrotateTool): \(error)")
        }
        return run
    }

    /// Generates the log (at least `bytes`), then `rounds` rounds of vigil, gzip and logrotate on copies of it.
    static func run(
        vigil: String,
        bytes: Int,
        rounds: Int,
        directory: String,
        provenance: String,
        filesystem: String,
        quick: Bool,
        keepCapabilities: Bool
    ) -> RotationResult {
        var result = RotationResult(quick: quick, provenance: provenance, filesystem: filesystem)
        result.rounds = rounds
        result.ruleSize = rotationSize(bytes)
        defer { FileTree.remove(directory) }
        guard FileTree.makeDirectories(directory, mode: 0o755) else {
            result.failures.append("Failed to create '\(directory)'")
            return result
        }
        let master = directory + "/big.log"
        let start = Clock.monotonicNanoseconds()
        guard LogCorpus.writeLog(path: master, atLeastBytes: bytes, pace: 100) else {
            result.failures.append("Failed to write the log '\(master)'")
            return result
        }
        result.generateNanoseconds = Clock.monotonicNanoseconds() - start
        var info = stat()
        guard stat(master, &info) == 0 else {
            result.failures.append("Failed to stat '\(master)'")
            return result
        }
        result.inputBytes = Int(info.st_size)
        let subjects: [() -> CompressionRun] = [
            {
                runVigil(
                    vigil: vigil,
                    master: master,
                    bytes: result.inputBytes,
                    size: result.ruleSize,
                    keepCapabilities: keepCapabilities
                )
            },
            { runGzip(master: master, bytes: result.inputBytes, directory: directory) },
            { runLogrotate(master: master, bytes: result.inputBytes, directory: directory) },
        ]
        for round in 0..<rounds {
            for subject in subjects {
                let run = subject()
                print(
                    "rotation, round \(round + 1): \(run.tool): \(run.nanoseconds.map { "\(milliseconds($0)) ms" } ?? "–")\(run.megabytesPerSecond.map { ", \(RotationResult.rate($0)) MB/s" } ?? ""), output \(run.outputBytes.map(String.init) ?? "–") bytes, gzip -t \(run.gzipTestPassed == true ? "ok" : "FAILED"), content \(run.contentMatches == true ? "identical" : "DIFFERS")"
                        + (run.failures.isEmpty ? "" : "; problems: \(run.failures.joined(separator: "; "))")
                )
                result.runs.append(run)
            }
        }
        return result
    }
}

// MARK: Report

extension RotationResult {
    /// MB/s with one decimal.
    static func rate(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// `part` as a percentage of `whole`, one decimal.
    static func percent(_ part: Int, of whole: Int) -> String {
        guard whole > 0 else { return "–" }
        let tenths = Int((Double(part) / Double(whole) * 1000).rounded())
        return "\(tenths / 10).\(tenths % 10) %"
    }

    func runs(of tool: String) -> [CompressionRun] { runs.filter { $0.tool == tool } }

    /// Median MB/s of a tool's runs.
    func medianRate(_ tool: String) -> Double? {
        let rates = runs(of: tool).compactMap(\.megabytesPerSecond).sorted()
        return rates.isEmpty ? nil : rates[(rates.count - 1) / 2]
    }

    func targetRows() -> [String] {
        let verified = runs.filter(\.verified).count
        return [
            "| rotation of a \(inputBytes)-byte log: every .gz passes `gzip -t` and decompresses to the original (vigil, gzip, logrotate) | all \(runs.count) | \(verified) | \(detectedEverything ? "yes" : "**no**") |"
        ]
    }

    func markdown() -> [String] {
        var out: [String] = []
        out.append("## Rotation and compression of a \(inputBytes)-byte log\n")
        out.append("\(provenance); files on \(filesystem).\n")
        out.append(
            """
            The log: \(inputBytes) bytes of the seed's unified format (`LogCorpus.writeLog(atLeastBytes:pace:)`: \
            the seed's services, levels, components and messages with varying numbers, about 100 lines per \
            second of clock; generated in \(PermissionResults.seconds(generateNanoseconds))), copied (`cp`, then \
            fsync) for each tool into a directory of its own, so each starts from the same bytes in the page \
            cache. vigil: `vigil run --rules bench/rotation.yaml --root SANDBOX --alerts FILE` with the copy at \
            `\(bigLogPath)` (analytics:log-readers, 0640); the file is over `size:` when vigil starts, so vigil \
            rotates it at start-up into `olddir:` and compresses it (zlib level 6, on its `vigil-gzip` thread, \
            into an unnamed file that is fsynced and then linked); timed from spawn to the `\(rotatedKind)` \
            alert that names the `.gz` (sent when the compression has ended; its `compress_milliseconds` label \
            is vigil's own figure for the compression alone). `\(RotationBench.gzipTool) big.log > big.log.gz` \
            and `logrotate -f -s STATE CONF` (`compress`, `rotate 2`, `dateext`; logrotate runs `gzip -6`) are \
            timed from spawn to exit; neither fsyncs its output. MB/s = input bytes ÷ that time, in 10^6 bytes. \
            Every output is checked with `gzip -t` and `gzip -dc OUT | cmp - ORIGINAL` (a failure fails the \
            run). \(rounds) round\(rounds == 1 ? "" : "s"), the three tools in turn within a round.

            """
        )
        if runs.first?.tool.hasSuffix("--keep-capabilities") == true {
            out.append(
                "vigil ran with `--keep-capabilities` (vigil-bench `--rotation-keep-capabilities`): every capability kept, instead of only those vigil keeps for the loaded rules.\n"
            )
        }
        out.append("| round | tool | time | MB/s | output bytes | ratio out/in | `gzip -t` | content | notes |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for (index, run) in runs.enumerated() {
            let round = index / 3 + 1
            let ratioText = run.outputBytes.map { Self.percent($0, of: inputBytes) } ?? "–"
            var notes: [String] = []
            if let ready = run.readyNanoseconds { notes.append("READY after \(milliseconds(ready)) ms") }
            if let reported = run.reportedCompressMilliseconds {
                notes.append("vigil's compress_milliseconds \(reported)")
            }
            notes += run.failures
            out.append(
                "| \(round) | \(run.tool) | \(run.nanoseconds.map { "\(milliseconds($0)) ms" } ?? "–") | \(run.megabytesPerSecond.map { Self.rate($0) } ?? "–") | \(run.outputBytes.map(String.init) ?? "–") | \(ratioText) | \(run.gzipTestPassed == true ? "ok" : "**failed**") | \(run.contentMatches == true ? "identical" : "**differs**") | \(notes.joined(separator: "; ").replacingPipes().replacingNewlines()) |"
            )
        }
        out.append("")
        if let mine = medianRate(runs.first?.tool ?? "vigil") {
            var line = "Median MB/s: vigil \(Self.rate(mine))"
            for tool in [RotationBench.gzipTool, RotationBench.logrotateTool] {
                if let theirs = medianRate(tool) {
                    line += ", `\(tool)` \(Self.rate(theirs)) (vigil ÷ \(tool): \(ratio(mine, theirs)))"
                }
            }
            out.append(line + "; above 1 means vigil is faster.\n")
        }
        for failure in failures { out.append("Problem: \(failure.replacingNewlines())\n") }
        out.append("The rule file:\n")
        out.append("```yaml")
        out.append(rotationRules(size: ruleSize).trimmingTrailingNewlines())
        out.append("```\n")
        return out
    }
}

extension RotationResult {
    /// Each tool's MB/s in each round, for `benchmarks/plot` (`rotation-throughput.csv`; n is the log's size
    /// in MiB, the same for every tool, so the plot draws bars).
    @MainActor
    func recordSamples() {
        for run in runs {
            guard let rate = run.megabytesPerSecond else { continue }
            Samples.recordPoint(
                scenario: "rotation-throughput",
                subject: run.tool,
                n: inputBytes >> 20,
                value: rate,
                unit: "MB/s"
            )
        }
    }
}
