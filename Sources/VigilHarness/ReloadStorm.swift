import Synchronization
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Hot reload under load, shared by the integration test (scaled down, debug build) and the benchmark
/// (10,000 events a second, 100 reloads, release build): a writer appends numbered log lines and creates
/// numbered files at a fixed rate while a rule file is saved again and again, as an editor saves it (a
/// temporary file renamed over), every other time broken. Vigil picks each save up through its own watch
/// of the rules directory. Counted: every line's and every file's alert exactly once; the config rule that
/// was firing before the storm fired once and never again; one `vigil.reload_failed` alert per failed
/// reload; and the time from each save to its outcome in vigil's log.
public enum ReloadStorm {
    public struct Settings: Sendable {
        /// Log lines a second; a tenth as many files are created.
        public var linesPerSecond: Int
        public var reloads: Int

        public init(linesPerSecond: Int, reloads: Int) {
            self.linesPerSecond = linesPerSecond
            self.reloads = reloads
        }
    }

    public struct Result: Sendable, CustomStringConvertible {
        public var lines = 0
        public var files = 0
        public var reloaded = 0
        public var failed = 0
        /// Saves with no outcome in vigil's log within 15 s (the storm stops at the first).
        public var unanswered = 0
        public var missingLines: [Int] = []
        public var doubledLines: [Int] = []
        public var missingFiles = 0
        public var doubledFiles = 0
        public var sslFiring = 0
        public var sslResolved = 0
        public var reloadFailedAlerts = 0
        /// Milliseconds from each save to its outcome line in vigil's log (debounce included).
        public var outcomeMilliseconds: [Double] = []
        /// What vigil logged as each successful swap's own time, in milliseconds.
        public var swapMilliseconds: [Double] = []
        public var markersSeen = 0

        public init() {}

        /// Everything counted came out right.
        public var exact: Bool {
            unanswered == 0 && markersSeen == 2 && missingLines.isEmpty && doubledLines.isEmpty && missingFiles == 0
                && doubledFiles == 0 && sslFiring == 1 && sslResolved == 0 && reloadFailedAlerts == failed
        }

        public var description: String {
            "\(lines) lines and \(files) files during \(reloaded) reloads and \(failed) failed ones (\(unanswered) unanswered): lines missing \(missingLines.count), doubled \(doubledLines.count); files missing \(missingFiles), doubled \(doubledFiles); ssl-off firing \(sslFiring), resolved \(sslResolved); vigil.reload_failed alerts \(reloadFailedAlerts)"
        }
    }

    /// The rules that stay: one rule on every log line, one on every new file, one state rule that fires
    /// at start-up and must never fire again.
    public static let baseRules = """
        - rule: counted-line
          severity: info
          log: /var/log/app/app.log
          match: 'EVENT (?<n>\\d+)'
          message: "line {n}"
        - rule: counted-file
          severity: info
          file: /var/spool/in/*
          on: [created]
          message: "file {file}"
        - rule: ssl-off
          severity: critical
          config: /etc/app/app.conf
          when: { key: verify_ssl, is: false }
          message: "verify_ssl is off in {path}"

        """

    /// The file each reload changes: good versions add a log rule, a file rule and a config rule (so the
    /// log watcher is rebuilt and the matcher swaps in place every time); even versions are broken.
    public static func extraRules(_ version: Int) -> String {
        if version % 2 == 0 {
            return "- rule: broken-\(version)\n  severity: loud\n  log: /var/log/app/app.log\n  match: x\n"
        }
        return """
            - rule: extra-line-\(version % 4)
              severity: info
              log: /var/log/app/app.log
              match: 'NEVER-\(version)'
              message: "never"
            - rule: extra-file-\(version % 4)
              severity: info
              file: /var/spool/other/*
              on: [created]
              message: "other {file}"
            - rule: extra-config
              severity: warning
              config: /etc/app/app.conf
              when: { key: debug, is: true }
              message: "debug on, version \(version)"

            """
    }

    /// Lays out the tree under `root` (rules/, the log, the spool, the config with verify_ssl off).
    public static func prepare(root: String) {
        for directory in [
            "rules", "run", "var", "var/log", "var/log/app", "var/spool", "var/spool/in", "var/spool/other", "etc",
            "etc/app",
        ] {
            mkdir(root + "/" + directory, 0o755)
        }
        writeFile(root + "/var/log/app/app.log", "")
        writeFile(root + "/etc/app/app.conf", "verify_ssl = false\ndebug = true\n")
        writeFile(root + "/rules/base.yaml", baseRules)
        save(root: root, "extra.yaml", extraRules(1))
    }

    /// `vigil run` arguments for the tree (add `--alerts FILE` and the like as needed).
    public static func arguments(root: String) -> [String] {
        ["--rules", root + "/rules", "--root", root, "--alerts", root + "/alerts.jsonl", "--no-process-rules"]
    }

    /// Runs the storm against a daemon started on the prepared tree (`daemon`: its log is read for the
    /// reloads' outcomes), then stops the load and counts the alerts in `root/alerts.jsonl`.
    public static func run(_ settings: Settings, root: String, daemon: DaemonProcess) throws(HarnessError) -> Result {
        let log = try LineFollower(path: daemon.logPath, fromStart: true)
        let stop = Atomic<Bool>(false)
        let produced = Atomic<Int>(0)
        let logPath = root + "/var/log/app/app.log"
        let spool = root + "/var/spool/in"
        let perStep = max(10, settings.linesPerSecond / 100)
        let writer = Threads.spawn(name: "storm-load") {
            let fd = open(logPath, O_WRONLY | O_APPEND | O_CLOEXEC)
            defer { close(fd) }
            var n = 0
            var next = Clock.monotonicNanoseconds()
            var chunk: [UInt8] = []
            while !stop.load(ordering: .relaxed) {
                chunk.removeAll(keepingCapacity: true)
                for _ in 0..<perStep {
                    n += 1
                    chunk += Array("EVENT \(n)\n".utf8)
                }
                _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                for k in 0..<(perStep / 10) {
                    let file = open(spool + "/f-\(n)-\(k)", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
                    if file >= 0 { close(file) }
                }
                produced.store(n, ordering: .relaxed)
                // Pacing the load in 10 ms steps (not synchronising anything).
                next += 10_000_000
                let now = Clock.monotonicNanoseconds()
                if next > now { usleep(UInt32((next - now) / 1000)) }
            }
        }
        var result = Result()
        for version in 2...(settings.reloads + 1) {
            let saved = Clock.monotonicNanoseconds()
            save(root: root, "extra.yaml", extraRules(version))
            var answered = false
            while !answered, let (line, seenAt) = log.next(timeoutMilliseconds: 15_000) {
                if line.contains("Rules reloaded (rule files changed)") {
                    result.reloaded += 1
                    answered = true
                    // "... (rule files changed) in 12.34 ms: ..."
                    if let tail = line.split(separator: ") in ", maxSplits: 1).last,
                        let ms = Double(tail.prefix { $0 != " " })
                    {
                        result.swapMilliseconds.append(ms)
                    }
                } else if line.contains("Reloading the rules (rule files changed) failed; the running rules are kept") {
                    result.failed += 1
                    answered = true
                }
                if answered { result.outcomeMilliseconds.append(Double(seenAt &- saved) / 1e6) }
            }
            if !answered {
                result.unanswered += 1
                break
            }
        }
        stop.store(true, ordering: .relaxed)
        Threads.join(writer)
        result.lines = produced.load(ordering: .relaxed)
        result.files = result.lines / perStep * (perStep / 10)
        try count(root: root, into: &result)
        return result
    }

    /// Writes the markers (a last line, a last file) and reads the alerts until both markers' are in: the
    /// log watcher and the matcher each handle their events in order, so every earlier alert is in too.
    private static func count(root: String, into result: inout Result) throws(HarnessError) {
        let fd = open(root + "/var/log/app/app.log", O_WRONLY | O_APPEND | O_CLOEXEC)
        let marker = Array("EVENT 0\n".utf8)
        _ = marker.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        writeFile(root + "/var/spool/in/zz-marker", "")
        let follower = try LineFollower(path: root + "/alerts.jsonl", fromStart: true)
        var lineSeen = [UInt8](repeating: 0, count: result.lines + 1)
        var filesSeen: [String: Int] = [:]
        let deadline = Clock.monotonicNanoseconds() + 300_000_000_000
        while result.markersSeen < 2, Clock.monotonicNanoseconds() < deadline,
            let (line, _) = follower.next(timeoutMilliseconds: 60_000)
        {
            let rule = JSONField.string(line, "rule") ?? ""
            let message = JSONField.string(line, "message") ?? ""
            let firing = JSONField.string(line, "state") == "firing"
            switch rule {
            case "counted-line":
                guard let n = Int(message.dropFirst("line ".count)), n <= result.lines else { continue }
                if n == 0 { result.markersSeen += 1 } else { lineSeen[n] &+= 1 }
            case "counted-file":
                let name = String(message.dropFirst("file ".count))
                if name == "zz-marker" { result.markersSeen += 1 } else { filesSeen[name, default: 0] += 1 }
            case "ssl-off":
                if firing { result.sslFiring += 1 } else { result.sslResolved += 1 }
            case "vigil.reload_failed":
                if firing { result.reloadFailedAlerts += 1 }
            default:
                break
            }
        }
        for n in stride(from: 1, through: result.lines, by: 1) {
            if lineSeen[n] == 0 {
                result.missingLines.append(n)
            } else if lineSeen[n] > 1 {
                result.doubledLines.append(n)
            }
        }
        result.missingFiles = max(0, result.files - filesSeen.count)
        result.doubledFiles = filesSeen.values.filter { $0 > 1 }.count
    }

    /// Saves a rule file the way an editor does: a temporary file in the directory, then a rename.
    public static func save(root: String, _ name: String, _ text: String) {
        writeFile(root + "/rules/.\(name).tmp", text)
        rename(root + "/rules/.\(name).tmp", root + "/rules/\(name)")
    }

    private static func writeFile(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
