import ArgumentParser
import VigilDaemon
import VigilRules

/// `vigil check PATH...`: compiles rule files and reports every error at once.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile rule files and report every error with its position.",
        discussion: """
            Prints each problem as 'file:line:col: error: …; expected …' and exits 1 when there is any.
            Directories are read for *.yaml and *.yml files.
            """
    )

    @Argument(help: "Rule files or directories.")
    var paths: [String] = ["rules"]

    func run() throws {
        guard let ruleSet = RuleLoading.load(paths) else { throw ExitCode(1) }
        // The log rules' patterns, compiled by the engines the daemon uses (Vectorscan, PCRE2 for named groups).
        let patternProblems = LogPatternSet.check(rules: ruleSet.rules)
        for diagnostic in patternProblems { RuleLoading.printError(diagnostic.description) }
        let patternCheck = RuleCompilation(ruleSet: nil, diagnostics: patternProblems)
        if patternCheck.errorCount > 0 {
            RuleLoading.printError(patternCheck.summary)
            throw ExitCode(1)
        }
        let files = ruleSet.files.count
        print(
            "vigil: \(ruleSet.rules.count) rule\(ruleSet.rules.count == 1 ? "" : "s") and \(ruleSet.sinks.count) sink\(ruleSet.sinks.count == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s"): no errors"
        )
    }
}
