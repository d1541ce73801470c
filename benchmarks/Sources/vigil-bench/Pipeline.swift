// Pipeline records per second: a burst of N file creations in a watched directory, timed from the first
// create to the Nth alert line (vigil, a file rule alerting on `created`) or the Nth output line
// (`inotifywait -m -e create DIR`), with what was lost on the way (inotify overflows, lines missing).
import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// One subject's burst.
struct PipelineResult {
    var subject: String
    var command: String
    var files = 0
    /// Lines (alerts, or inotifywait's) naming a file of the burst, distinct files.
    var seen = 0
    /// vigil: `vigil.events_lost` alerts; inotifywait: lines that name no file of the burst (its overflow notice).
    var overflows = 0
    /// First create → the burst's last line; nil when not every file was seen.
    var nanoseconds: UInt64?
    /// First create → last create.
    var createNanoseconds: UInt64 = 0
    var failures: [String] = []

    var missing: Int { files - seen }
    var eventsPerSecond: Double? { nanoseconds.map { Double(files) / (Double($0) / 1e9) } }
}

enum PipelineBench {
    static let directory = "/srv/drop"
    /// No new line for this long ends the wait for the burst.
    static let quietMilliseconds = 5_000

    /// vigil, then the inotifywait peer, each on a fresh sandbox.
    static func run(vigil: String, files: Int) -> [PipelineResult] {
        [runVigil(vigil, files: files), runInotifywait(files: files)]
    }

    static func runVigil(_ vigil: String, files: Int) -> PipelineResult {
        var result = PipelineResult(
            subject: "vigil",
            command: "vigil run, rule `file: \(directory)/*`, `on: [created]`, `then: [alert]`",
            files: files
        )
        guard let sandbox = freshSandbox("bench-pipeline-vigil", failures: &result.failures) else { return result }
        defer { sandbox.remove() }
        do {
            try sandbox.makeDirectories(directory)
            try sandbox.makeDirectories("/bench/rules")
            try sandbox.write(
                "/bench/rules/pipeline.yaml",
                """
                - rule: bench-pipeline-created
                  severity: info
                  file: \(directory)/*
                  on: [created]
                  message: "created {path}"
                  then: [alert]

                """
            )
            let work = sandbox.hostPath("/bench")
            let alerts = work + "/alerts.jsonl"
            let follower = try LineFollower(path: alerts)
            let daemon = try DaemonProcess(
                executable: vigil,
                arguments: ["--rules", work + "/rules", "--root", sandbox.root, "--alerts", alerts],
                workDirectory: work
            )
            defer { daemon.stop() }
            let prefix = directory + "/f-"
            measure(&result, sandbox: sandbox, follower: follower) { line in
                if JSONField.string(line, "kind") == "vigil.events_lost" { return .overflow }
                guard JSONField.string(line, "rule") == "bench-pipeline-created",
                    let path = JSONField.string(line, "path"), path.hasPrefix(prefix)
                else { return .other }
                return .file(path)
            }
        } catch {
            result.failures.append("pipeline: vigil: \(error.description)")
        }
        return result
    }

    static func runInotifywait(files: Int) -> PipelineResult {
        var result = PipelineResult(
            subject: "inotifywait",
            command: "inotifywait -m -q -e create --format %w%f DIR > OUT",
            files: files
        )
        guard let tool = findExecutable("inotifywait") else {
            result.failures.append("pipeline: inotifywait is not installed (apt-get install inotify-tools)")
            return result
        }
        guard let sandbox = freshSandbox("bench-pipeline-peer", failures: &result.failures) else { return result }
        defer { sandbox.remove() }
        do {
            try sandbox.makeDirectories(directory)
            try sandbox.makeDirectories("/bench")
            let output = sandbox.hostPath("/bench/out.txt")
            let follower = try LineFollower(path: output)
            let watched = sandbox.hostPath(directory)
            let peer = try ChildProcess(
                executable: tool,
                arguments: ["-m", "-q", "-e", "create", "--format", "%w%f", watched],
                standardOutput: output
            )
            defer { peer.terminate(graceMilliseconds: 2_000) }
            // Ready when a probe file's line comes back (never a sleep).
            let probe = watched + "/probe"
            var ready = false
            for _ in 0..<50 where !ready {
                close(open(probe, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644))
                while let (line, _) = follower.next(timeoutMilliseconds: 100) {
                    if line == probe { ready = true }
                }
                unlink(probe)
            }
            guard ready else {
                result.failures.append("pipeline: inotifywait did not report a probe file within 5 s")
                return result
            }
            let prefix = watched + "/f-"
            measure(&result, sandbox: sandbox, follower: follower) { line in
                if line.hasPrefix(prefix) { return .file(line) }
                return line == probe ? .other : .overflow
            }
        } catch {
            result.failures.append("pipeline: inotifywait: \(error.description)")
        }
        return result
    }

    /// What a line of output means.
    enum LineKind {
        case file(String)
        case overflow
        case other
    }

    /// Creates the burst's files back to back (open O_CREAT|O_EXCL, close), then reads lines until every
    /// file is seen or none comes for `quietMilliseconds`.
    static func measure(
        _ result: inout PipelineResult,
        sandbox: SeedSandbox,
        follower: LineFollower,
        classify: (String) -> LineKind
    ) {
        let base = sandbox.hostPath(directory) + "/f-"
        let start = Clock.monotonicNanoseconds()
        for i in 0..<result.files {
            let fd = open(base + String(i), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd < 0 {
                result.failures.append("pipeline: Failed to create '\(base)\(i)': errno \(errno)")
                return
            }
            close(fd)
        }
        result.createNanoseconds = Clock.monotonicNanoseconds() - start
        var seen = Set<String>()
        var last: UInt64 = 0
        while seen.count < result.files, let (line, at) = follower.next(timeoutMilliseconds: quietMilliseconds) {
            switch classify(line) {
            case .file(let path):
                if seen.insert(path).inserted { last = at }
            case .overflow: result.overflows += 1
            case .other: break
            }
        }
        result.seen = seen.count
        if seen.count == result.files { result.nanoseconds = last - start }
    }
}

extension [PipelineResult] {
    var detectedEverything: Bool { allSatisfy { $0.failures.isEmpty && $0.missing == 0 } }

    /// The section of RESULTS.md.
    func markdown() -> [String] {
        guard let files = first?.files else { return [] }
        var out = [
            "## Pipeline records per second (burst of \(files) file creations)\n",
            "\(files) files created back to back (`open(O_CREAT|O_EXCL)` + `close`) in a watched directory of a fresh "
                + "sandbox; the time runs from the first create to the line for the last file to arrive (vigil: its alert "
                + "line; the peer: its output line). Lost: files with no line after \(PipelineBench.quietMilliseconds / 1_000) s "
                + "of quiet; overflows: vigil's `vigil.events_lost` alerts, inotifywait's lines naming no file of the burst. "
                + "When the last line comes right after the last create, the watcher kept up with the writer (which shares "
                + "the CPUs with it), and events/s is the writer's pace: a lower bound on the watcher's.",
            "",
            "| subject | command | files | seen | lost | overflows | creates took | first create → last line | events/s | ÷ vigil |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        let vigilRate = first(where: { $0.subject == "vigil" })?.eventsPerSecond
        for r in self {
            let rate = r.eventsPerSecond.map { "\(Int($0.rounded()))" } ?? "–"
            var ratio = "–"
            if let rate = r.eventsPerSecond, let vigilRate, vigilRate > 0 {
                let hundredths = Int((rate / vigilRate * 100).rounded())
                ratio = "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)×"
            }
            out.append(
                "| \(r.subject) | \(r.command.replacingPipes()) | \(r.files) | \(r.seen) | \(r.missing) | \(r.overflows) | \(milliseconds(r.createNanoseconds)) ms | \(r.nanoseconds.map { "\(milliseconds($0)) ms" } ?? "–") | \(rate) | \(ratio) |"
            )
        }
        for r in self where !r.failures.isEmpty { out.append("\n\(r.subject): \(r.failures.joined(separator: "; "))") }
        out.append("")
        return out
    }

    /// One line per subject, for the console.
    func lines() -> [String] {
        map { r in
            "pipeline: \(r.subject): \(r.seen)/\(r.files) seen, \(r.overflows) overflows, "
                + "\(r.nanoseconds.map { "\(milliseconds($0)) ms" } ?? "–"), "
                + "\(r.eventsPerSecond.map { "\(Int($0.rounded())) events/s" } ?? "–")"
                + (r.failures.isEmpty ? "" : "; problems: \(r.failures.joined(separator: "; "))")
        }
    }
}
