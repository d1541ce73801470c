import ArgumentParser
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
        let files = ruleSet.files.count
        print(
            "vigil: \(ruleSet.rules.count) rule\(ruleSet.rules.count == 1 ? "" : "s") and \(ruleSet.sinks.count) sink\(ruleSet.sinks.count == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s"): no errors"
        )
    }
}
