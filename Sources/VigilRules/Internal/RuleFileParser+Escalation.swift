internal import Yams

extension RuleFileParser {
    /// Keys of `escalation:` rules besides `escalation:` itself.
    static let escalationOnlyKeys: [String] = [String]()

    /// Parses a `escalation:` rule's subject and its own keys; nil after reporting errors.
    mutating func parseEscalationSubject(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> EscalationSubject? {
        error("escalation: rules are not built yet", at: location)
        return nil
    }
}
