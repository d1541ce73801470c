internal import Yams

extension RuleFileParser {
    /// Keys of `disk:` rules besides `disk:` itself.
    static let diskOnlyKeys: [String] = ["above", "inodes_above", "recheck"]

    /// Parses a `disk:` rule's subject and its own keys; nil after reporting errors.
    mutating func parseDiskSubject(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> DiskSubject? {
        error("disk: rules are not built yet", at: location)
        return nil
    }
}
