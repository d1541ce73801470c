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

    /// The rule files and directories to watch for changes (hot reload).
    var watchedPaths: [String] { rules }

    /// Compiles the rules: the rule set, or every diagnostic line and the summary.
    func compile() -> RuleLoading.Outcome {
        let compilation = RuleCompiler.compile(paths: rules)
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
        let compilation = RuleCompiler.compile(paths: paths)
        for diagnostic in compilation.diagnostics { printError(diagnostic.description) }
        guard compilation.errorCount == 0, let ruleSet = compilation.ruleSet else {
            printError(compilation.summary)
            return nil
        }
        return ruleSet
    }

    /// Writes one line to stderr.
    static func printError(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
