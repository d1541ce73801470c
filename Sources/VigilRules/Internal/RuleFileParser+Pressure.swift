internal import Yams

extension RuleFileParser {
    /// Keys of `pressure:` rules besides `pressure:` itself.
    static let pressureOnlyKeys: [String] = ["scope", "stall", "within", "cgroup"]

    /// Parses a `pressure:` rule's subject and its own keys; nil after reporting errors.
    mutating func parsePressureSubject(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> PressureSubject? {
        error("pressure: rules are not built yet", at: location)
        return nil
    }
}
