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

            The files are matched on every core (at most 8, one per MiB of input; --threads N to choose), each \
            thread taking the lines that start in its share of the bytes, so the counts and samples do not \
            depend on the thread count. Pipes are read by one thread. The compiled patterns are cached in \
            $XDG_CACHE_HOME/vigil (else ~/.cache/vigil; --cache DIR, --no-cache): compiling 1,000 patterns \
            takes about a second, loading them a few milliseconds.
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

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Matching threads (default: the online processors, at most 8, one per MiB of input).",
            valueName: "n"
        )
    )
    var threads: Int?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Directory caching compiled patterns (default: $XDG_CACHE_HOME/vigil, else ~/.cache/vigil).",
            valueName: "dir"
        )
    )
    var cache: String?

    @Flag(name: .long, help: "Compile the patterns without reading or writing the cache.")
    var noCache = false

    @Argument(help: ArgumentHelp("Log files to read.", valueName: "file"))
    var files: [String] = []

    func validate() throws {
        if let threads, !(1...256).contains(threads) {
            throw ValidationError("--threads takes 1 to 256, not \(threads)")
        }
        if cache != nil && noCache { throw ValidationError("--cache and --no-cache do not go together") }
        if let cache, cache.isEmpty { throw ValidationError("--cache needs a directory") }
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
            set = try LogPatternSet(rules: logRules, cacheDirectory: cacheDirectory)
        } catch {
            for diagnostic in error.diagnostics { RuleLoading.printError(diagnostic.description) }
            RuleLoading.printError(RuleCompilation(ruleSet: nil, diagnostics: error.diagnostics).summary)
            throw ExitCode(1)
        }
        if let problem = set.databaseOrigin?.cacheProblem {
            RuleLoading.printError(
                "vigil: could not use the compiled-pattern cache: \(problem); compiled the patterns instead, ignoring"
            )
        }
        if let explain {
            Explanation.print(line: explain, rules: logRules, set: set)
            return
        }
        // Open every file first: all problems are reported before any work.
        var inputs: [LineCounter.Input] = []
        var failed = false
        for path in files {
            switch LogFileOpening.open(path) {
            case .success(let fd, let size): inputs.append(LineCounter.Input(path: path, fd: fd, size: size))
            case .failure(let message):
                RuleLoading.printError("vigil: \(message)")
                failed = true
            }
        }
        defer { for input in inputs { Syscall.close(input.fd) } }
        if failed { throw ExitCode(1) }

        let counter = LineCounter(set: set)
        let started = Clock.monotonicNanoseconds()
        if let message = counter.count(inputs, threads: threads) {
            RuleLoading.printError("vigil: \(message)")
            throw ExitCode(1)
        }
        let elapsed = Double(Clock.monotonicNanoseconds() - started) / 1e9
        if countOnly {
            print("\(counter.matchedLines) \(counter.totalLines)")
            return
        }
        counter.report(rules: logRules, files: inputs.count, elapsed: elapsed, patterns: set.databaseOrigin)
    }

    /// `--cache`, else `$XDG_CACHE_HOME/vigil` (an absolute one, as the XDG spec asks), else
    /// `$HOME/.cache/vigil`; nil with `--no-cache` or neither variable. A default is used only when the
    /// directory the variable names (or its nearest existing parent) belongs to the effective user:
    /// `sudo vigil match` with the caller's `$HOME` must not leave root's files there, which the caller could
    /// not remove.
    var cacheDirectory: String? {
        if noCache { return nil }
        if let cache { return cache }
        func absolute(_ name: String) -> String? {
            guard let value = getenv(name).map({ String(cString: $0) }), value.hasPrefix("/") else { return nil }
            return value
        }
        func ours(_ path: String) -> Bool {
            var current = path
            while true {
                var info = stat()
                if stat(current, &info) == 0 { return info.st_uid == geteuid() }
                guard errno == ENOENT, let slash = current.lastIndex(of: "/"), current != "/" else { return false }
                current = slash == current.startIndex ? "/" : String(current[..<slash])
            }
        }
        if let base = absolute("XDG_CACHE_HOME") { return ours(base) ? base + "/vigil" : nil }
        if let home = absolute("HOME") { return ours(home) ? (home == "/" ? "" : home) + "/.cache/vigil" : nil }
        return nil
    }
}

/// Opening a log file for `vigil match`, with messages that say what to do.
enum LogFileOpening {
    enum Outcome {
        /// The descriptor, and the size of a regular file (nil for pipes and devices, which cannot be split).
        case success(CInt, size: Int?)
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
        guard fstat(fd, &info) == 0 else { return .success(fd, size: nil) }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            Syscall.close(fd)
            return .failure(
                "Failed to read '\(path)': it is a directory; give the log files in it, e.g. '\(path)/*.log'"
            )
        }
        return .success(fd, size: (info.st_mode & S_IFMT) == S_IFREG ? Int(info.st_size) : nil)
    }
}
