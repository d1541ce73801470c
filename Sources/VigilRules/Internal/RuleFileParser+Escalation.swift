internal import Yams

extension RuleFileParser {
    /// Keys of `escalation:` rules besides `escalation:` itself.
    static let escalationOnlyKeys: [String] = ["also"]

    /// The words `escalation:` takes: the sources, and `any` for all of them.
    static var escalationSourceNames: [String] { EscalationSource.allCases.map(\.rawValue) + ["any"] }

    /// Parses a `escalation:` rule's subject and its own keys; nil after reporting errors.
    ///
    /// `escalation:` is one source or a list of them (`cron`, `systemd`, `any`); `also:` lists further
    /// programs root runs, as absolute paths without globs.
    mutating func parseEscalationSubject(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> EscalationSubject? {
        let errorsBefore = errorCount
        var sources: Set<EscalationSource> = []
        if let (_, node) = keys["escalation"] {
            if case .sequence(let sequence) = node, sequence.isEmpty {
                error(
                    "'escalation' is an empty list; expected at least one of: \(Self.escalationSourceNames.joined(separator: ", ")), such as escalation: [cron, systemd]",
                    at: node
                )
            } else if let entries = parseStringList(node, key: "escalation") {
                for (text, element) in entries {
                    if text == "any" {
                        sources.formUnion(EscalationSource.allCases)
                    } else if let source = EscalationSource(rawValue: text) {
                        sources.insert(source)
                    } else {
                        error(
                            "unknown escalation source '\(text)'"
                                + Spelling.hint(for: text, among: Self.escalationSourceNames),
                            at: element
                        )
                    }
                }
            }
        }
        var also: [String] = []
        if let (_, node) = keys["also"] {
            if let entries = parsePathList(node, key: "also", example: "/usr/local/sbin/backup.sh") {
                for entry in entries {
                    guard case .exact(let name) = entry.path.name else {
                        error(
                            "path '\(entry.path.raw)' in also: contains a glob; name each program root runs",
                            at: entry.node
                        )
                        continue
                    }
                    let full = entry.path.directory == "/" ? "/" + name : entry.path.directory + "/" + name
                    if !also.contains(full) { also.append(full) }
                }
            }
        }
        guard errorCount == errorsBefore, !sources.isEmpty || !also.isEmpty else { return nil }
        return EscalationSubject(sources: sources, also: also)
    }
}
