internal import Yams

extension RuleFileParser {
    /// Keys of `listening:` rules besides `listening:` itself.
    static let listeningOnlyKeys: [String] = ["allow", "expect"]

    /// Parses a `listening:` rule's subject and its own keys; nil after reporting errors.
    mutating func parseListeningSubject(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> ListeningSubject? {
        error("listening: rules are not built yet", at: location)
        return nil
    }
}
