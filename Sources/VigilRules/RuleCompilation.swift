/// The outcome of compiling rule files: a rule set when there were no errors, and every diagnostic.
public struct RuleCompilation: Sendable {
    /// The compiled rules; nil when any diagnostic is an error.
    public var ruleSet: RuleSet?
    /// Every problem found, ordered by file (in the order read), then line and column.
    public var diagnostics: [RuleDiagnostic]
    /// The number of diagnostics that are errors.
    public var errorCount: Int
    /// Shipped rules, sinks and lists that local rules override or disable, in the local files' order.
    public var layerChanges: [RuleLayerChange] = []

    /// Creates a compilation result; `errorCount` is derived from `diagnostics`.
    public init(ruleSet: RuleSet?, diagnostics: [RuleDiagnostic]) {
        self.ruleSet = ruleSet
        self.diagnostics = diagnostics
        self.errorCount = diagnostics.count { $0.severity == .error }
    }

    /// The number of diagnostics that are warnings.
    public var warningCount: Int { diagnostics.count { $0.severity == .warning } }

    /// One closing line for `vigil check` and reloads.
    ///
    /// With errors: `vigil: 3 errors in 'rules/bad.yaml'; no rules were loaded`, or with several files
    /// `vigil: 4 errors (3 in 'rules/a.yaml', 1 in 'rules/b.yaml'); no rules were loaded`.
    /// Without: `vigil: 5 rules and 1 sink loaded from 2 files`.
    public var summary: String {
        if errorCount > 0 {
            var files: [String] = []
            var counts: [String: Int] = [:]
            for diagnostic in diagnostics where diagnostic.severity == .error {
                let file = diagnostic.location.file
                if counts[file] == nil { files.append(file) }
                counts[file, default: 0] += 1
            }
            let total = Self.plural(errorCount, "error")
            if files.count == 1 {
                return "vigil: \(total) in '\(files[0])'; no rules were loaded"
            }
            let perFile = files.map { "\(counts[$0] ?? 0) in '\($0)'" }.joined(separator: ", ")
            return "vigil: \(total) (\(perFile)); no rules were loaded"
        }
        let set = ruleSet ?? RuleSet()
        var line = "vigil: \(Self.plural(set.rules.count, "rule")) and \(Self.plural(set.sinks.count, "sink"))"
        line += " loaded from \(Self.plural(set.files.count, "file"))"
        if warningCount > 0 {
            line += " with \(Self.plural(warningCount, "warning"))"
        }
        return line
    }

    /// `1 error`, `2 errors`.
    static func plural(_ count: Int, _ noun: String) -> String {
        count == 1 ? "1 \(noun)" : "\(count) \(noun)s"
    }
}
