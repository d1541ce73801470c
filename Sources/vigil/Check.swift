import ArgumentParser
import VigilDaemon
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil check PATH...`: compiles rule files and reports every error at once.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile rule files and report every error with its position.",
        discussion: """
            Prints each problem as 'file:line:col: error: …; expected …' and exits 1 when there is any.
            Directories are read for *.yaml and *.yml files. User and group names are looked up in the
            etc/passwd and etc/group of --root, as 'vigil run --root' does; without --root they are looked
            up on this host, and a name it lacks is a warning (rules are often checked away from the servers
            they are for; the daemon refuses to start on a host that lacks one).
            Local rules (--local-rules, default /etc/vigil/local.d when it exists) are checked over the
            shipped ones; each shipped rule they override or disable is listed.
            """
    )

    @Argument(help: "Rule files or directories.")
    var paths: [String] = ["rules"]

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The server's root: user and group names must be in DIR/etc/passwd and DIR/etc/group.",
            valueName: "dir"
        )
    )
    var root: String?

    @Option(
        name: .customLong("local-rules"),
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Local rule files or directories over the shipped ones (default: /etc/vigil/local.d, skipped when it does not exist).",
            valueName: "path"
        )
    )
    var localRules: [String] = []

    func run() throws {
        guard let (ruleSet, changes) = RuleLoading.load(paths, local: RuleOptions.localPaths(localRules)) else {
            throw ExitCode(1)
        }
        if let root, root != "/" {
            var info = stat()
            guard stat(root, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                RuleLoading.printError(
                    "vigil: Failed to use --root '\(root)': it is not a directory; create it or fix the path"
                )
                throw ExitCode(1)
            }
        }
        // The log rules' patterns, compiled by the engines the daemon uses (Vectorscan, PCRE2 for named groups),
        // and the names of users and groups, looked up where the daemon resolves them.
        let users = UserDatabase(root: root ?? "/")
        var accounts = ruleSet.accountProblems(
            knownUser: { users.uids[$0] != nil },
            knownGroup: { users.gids[$0] != nil },
            passwdPath: users.passwdPath,
            groupPath: users.groupPath
        )
        if root == nil {
            accounts = accounts.map { problem in
                var warning = problem
                warning.severity = .warning
                warning.message += " (this host; check against the server's accounts with --root DIR)"
                return warning
            }
        }
        let problems = LogPatternSet.check(rules: ruleSet.rules) + accounts
        for diagnostic in problems { RuleLoading.printError(diagnostic.description) }
        let check = RuleCompilation(ruleSet: nil, diagnostics: problems)
        if check.errorCount > 0 {
            RuleLoading.printError(check.summary)
            throw ExitCode(1)
        }
        for change in changes { print("vigil: \(change)") }
        let files = ruleSet.files.count
        print(
            "vigil: \(ruleSet.rules.count) rule\(ruleSet.rules.count == 1 ? "" : "s") and \(ruleSet.sinks.count) sink\(ruleSet.sinks.count == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s"): no errors"
        )
    }
}
