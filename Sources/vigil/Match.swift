import ArgumentParser
import VigilCore
import VigilDaemon
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil match --rules R FILE...`: runs the log rules' patterns over files, as the daemon would over the lines
/// appended to them, and says which rules match how often. For trying rules on real logs, and for benchmarks.
struct Match: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the log rules' match: patterns over files and count the lines each rule matches.",
        discussion: """
            Every enabled log rule takes part, whatever its log: paths say. Lines are split on '\\n' (a last \
            line without one counts); a line longer than 64 KiB is matched in 64 KiB pieces, as the daemon does. \
            Sample lines are shown with secrets masked. --count-only prints 'MATCHED TOTAL' (lines matched by \
            some pattern, lines read) for scripts; compare MATCHED with 'grep -c'. --explain LINE shows, rule by \
            rule, whether LINE matches, by which pattern, and the named groups' values (masked).
            """
    )

    @Option(
        name: .long,
        help: ArgumentHelp("Rule files or directories. Repeatable.", valueName: "path")
    )
    var rules: [String] = ["/etc/vigil/rules.d"]

    @Flag(name: .long, help: "Print only 'MATCHED TOTAL': lines matched by some pattern and lines read.")
    var countOnly = false

    @Option(
        name: .long,
        help: ArgumentHelp("Explain how each rule treats LINE instead of reading files.", valueName: "line")
    )
    var explain: String?

    @Argument(help: ArgumentHelp("Log files to read.", valueName: "file"))
    var files: [String] = []

    func validate() throws {
        if explain != nil {
            guard files.isEmpty else { throw ValidationError("--explain takes a line, not files; drop the files") }
            guard !countOnly else { throw ValidationError("--explain and --count-only do not go together") }
        } else if files.isEmpty {
            throw ValidationError("no log files given; expected e.g. 'vigil match --rules rules/ /var/log/app.log'")
        }
    }

    func run() throws {
        guard let ruleSet = RuleLoading.load(rules) else { throw ExitCode(1) }
        let logRules = ruleSet.rules.filter { $0.enabled && $0.isLogRule }
        guard !logRules.isEmpty else {
            let where_ = rules.map { "'\($0)'" }.joined(separator: ", ")
            RuleLoading.printError(
                "vigil: no enabled log rules in \(where_); add a rule with 'log:' and 'match:' (see docs/rules.md)"
            )
            throw ExitCode(1)
        }
        let set: LogPatternSet
        do {
            set = try LogPatternSet(rules: logRules)
        } catch {
            for diagnostic in error.diagnostics { RuleLoading.printError(diagnostic.description) }
            RuleLoading.printError(RuleCompilation(ruleSet: nil, diagnostics: error.diagnostics).summary)
            throw ExitCode(1)
        }
        if let explain {
            Explanation.print(line: explain, rules: logRules, set: set)
            return
        }
        // Open every file first: all problems are reported before any work.
        var descriptors: [(path: String, fd: CInt)] = []
        var failed = false
        for path in files {
            switch LogFileOpening.open(path) {
            case .success(let fd): descriptors.append((path, fd))
            case .failure(let message):
                RuleLoading.printError("vigil: \(message)")
                failed = true
            }
        }
        defer { for descriptor in descriptors { Syscall.close(descriptor.fd) } }
        if failed { throw ExitCode(1) }

        let counter = LineCounter(set: set)
        let started = Clock.monotonicNanoseconds()
        for descriptor in descriptors {
            if let message = counter.read(descriptor.fd, path: descriptor.path) {
                RuleLoading.printError("vigil: \(message)")
                throw ExitCode(1)
            }
        }
        let elapsed = Double(Clock.monotonicNanoseconds() - started) / 1e9
        if countOnly {
            print("\(counter.matchedLines) \(counter.totalLines)")
            return
        }
        counter.report(rules: logRules, files: descriptors.count, elapsed: elapsed)
    }
}

/// Opening a log file for `vigil match`, with messages that say what to do.
enum LogFileOpening {
    enum Outcome {
        case success(CInt)
        case failure(String)
    }

    static func open(_ path: String) -> Outcome {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            let code = errno
            let reason = String(cString: strerror(code))
            if code == ENOENT { return .failure("Failed to open '\(path)': \(reason); check the path") }
            return .failure("Failed to open '\(path)': \(reason)")
        }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            Syscall.close(fd)
            return .failure(
                "Failed to read '\(path)': it is a directory; give the log files in it, e.g. '\(path)/*.log'"
            )
        }
        return .success(fd)
    }
}
