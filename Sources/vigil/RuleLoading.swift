import VigilRules

#if canImport(Glibc)
import Glibc
#endif

/// Compiles rule files for `run` and `check`, printing every diagnostic to stderr as a compiler does (E3).
enum RuleLoading {
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
