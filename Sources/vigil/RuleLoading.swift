import ArgumentParser
import VigilRules

#if canImport(Glibc)
import Glibc
#endif

/// Where `vigil run` takes its rules from.
struct RuleOptions: ParsableArguments {
    @Option(
        name: .long,
        parsing: .upToNextOption,
        help: ArgumentHelp("Rule files or directories (host paths).", valueName: "path")
    )
    var rules: [String] = ["/etc/vigil/rules.d"]

    @Option(
        name: .customLong("local-rules"),
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Local rule files or directories, which may override or disable shipped rules by id (default: /etc/vigil/local.d, skipped when it does not exist).",
            valueName: "path"
        )
    )
    var localRules: [String] = []

    /// Where local rules live unless `--local-rules` says otherwise; upgrades never touch it.
    static let defaultLocalRules = "/etc/vigil/local.d"

    /// The local rule paths to compile: those given, or the default directory when it exists (a missing
    /// default is no error: most hosts have no local rules; a missing path given explicitly is).
    static func localPaths(_ given: [String]) -> [String] {
        guard given.isEmpty else { return given }
        var info = stat()
        return stat(defaultLocalRules, &info) == 0 ? [defaultLocalRules] : []
    }

    /// The rule files and directories to watch for changes (hot reload): shipped and local. The default
    /// local directory is listed even when it does not exist yet, so that creating it is noticed (the
    /// watcher then watches the nearest directory above that exists).
    var watchedPaths: [String] { rules + (localRules.isEmpty ? [Self.defaultLocalRules] : localRules) }

    /// Compiles the rules: the rule set, or every diagnostic line and the summary.
    func compile() -> RuleLoading.Outcome {
        let compilation = RuleCompiler.compile(shipped: rules, local: Self.localPaths(localRules))
        let lines = compilation.diagnostics.map(\.description)
        guard compilation.errorCount == 0, let ruleSet = compilation.ruleSet else {
            return .failed(lines + [compilation.summary])
        }
        return .loaded(ruleSet, warnings: lines)
    }
}

/// Compiles rule files for `run` and `check`, printing every diagnostic to stderr as a compiler does (E3).
enum RuleLoading {
    /// The result of compiling the rule files.
    enum Outcome {
        /// Compiled, with the warnings printed about them.
        case loaded(RuleSet, warnings: [String])
        /// Errors: every diagnostic line, then the summary.
        case failed([String])
    }

    /// Returns the rule set, or nil after printing every error and the summary.
    static func load(_ paths: [String]) -> RuleSet? {
        load(paths, local: []).map(\.ruleSet)
    }

    /// Compiles shipped and local rules; returns the rule set and what the local rules override or
    /// disable, or nil after printing every error and the summary.
    static func load(_ paths: [String], local: [String]) -> (ruleSet: RuleSet, changes: [RuleLayerChange])? {
        let compilation = RuleCompiler.compile(shipped: paths, local: local)
        for diagnostic in compilation.diagnostics { printError(diagnostic.description) }
        guard compilation.errorCount == 0, let ruleSet = compilation.ruleSet else {
            printError(compilation.summary)
            return nil
        }
        return (ruleSet, compilation.layerChanges)
    }

    /// Writes one line to stderr.
    static func printError(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
