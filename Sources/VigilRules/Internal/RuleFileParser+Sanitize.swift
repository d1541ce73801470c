import VigilCore
internal import Yams

extension RuleFileParser {
    /// Keys of `sanitize: { … }`.
    static let sanitizeKeys = ["detectors", "patterns", "in_place", "copy_to"]

    /// A `sanitize` in `then:`, recorded whether or not its options parsed, so that the checks against the
    /// rule run in any case.
    struct SanitizeUse {
        /// The action's name in the file: errors about where it may be used point there.
        var location: SourceLocation
        /// The parsed options; nil when they had errors.
        var spec: SanitizeSpec?
        /// The value of `copy_to:`, when given: errors about the directory point there.
        var copyNode: Node?
    }

    /// Parses the value of `sanitize:`; empty means every default (every detector, in place).
    mutating func parseSanitize(_ value: Node, at location: SourceLocation, copyNode: inout Node?) -> SanitizeSpec? {
        var spec = SanitizeSpec(location: location)
        let mapping: Node.Mapping
        switch value {
        case .scalar(let scalar) where scalar.value == .null:
            return spec
        case .mapping(let map):
            mapping = map
        default:
            error(
                "'sanitize' is \(value.kindDescription); expected a map such as { detectors: [passwords, cards], copy_to: /var/log/sanitized }",
                at: value
            )
            return nil
        }
        let errorsBefore = errorCount
        let (keys, _) = checkKeys(mapping, allowed: Self.sanitizeKeys, context: "sanitize:")
        if let (_, node) = keys["detectors"], let detectors = parseDetectors(node) {
            spec.detectors = detectors
            if detectors.isEmpty && keys["patterns"] == nil {
                error(
                    "'detectors' is an empty list and there are no patterns:, so sanitize would mask nothing; list detectors, or add patterns:",
                    at: node
                )
            }
        }
        if let (_, node) = keys["patterns"] {
            var names: [String] = []
            spec.patterns =
                parsePatterns(node, key: "patterns", caseless: false, reservedNames: [], captureNames: &names).patterns
        }
        if let (_, node) = keys["in_place"], let inPlace = parseBool(node, key: "in_place") {
            spec.inPlace = inPlace
            if !inPlace && keys["copy_to"] == nil {
                error(
                    "sanitize with in_place: false and no copy_to: does nothing; add copy_to: with a directory for redacted copies, or remove in_place: false",
                    at: node
                )
            }
        }
        if let (_, node) = keys["copy_to"] {
            copyNode = node
            spec.copyDirectory = parseDirectory(node, key: "copy_to")
        }
        return errorCount == errorsBefore ? spec : nil
    }

    /// Parses `detectors:`: names of `SecretDetector`s; an empty list is allowed (checked by the caller).
    private mutating func parseDetectors(_ node: Node) -> Set<SecretDetector>? {
        guard let entries = parseStringList(node, key: "detectors", allowEmpty: true) else { return nil }
        let names = SecretDetector.allCases.map(\.rawValue)
        var detectors: Set<SecretDetector> = []
        var failed = false
        for (text, element) in entries {
            if let detector = SecretDetector(rawValue: text) {
                detectors.insert(detector)
            } else {
                error("unknown detector '\(text)'" + Spelling.hint(for: text, among: names), at: element)
                failed = true
            }
        }
        return failed ? nil : detectors
    }

    /// An absolute directory, normalised like rule paths (`//` collapses, `.` and a trailing `/` dropped);
    /// no `..`, no globs.
    mutating func parseDirectory(_ node: Node, key: String) -> String? {
        guard
            let raw = parseString(
                node,
                key: key,
                expected: key == "copy_to"
                    ? "an absolute directory such as /var/log/analytics/sanitized"
                    : "an absolute directory such as /var/log/archive"
            )
        else { return nil }
        guard raw.hasPrefix("/") else {
            error("\(key) '\(raw)' is not absolute; write it from the root, such as '/\(raw)'", at: node)
            return nil
        }
        let components = raw.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if components.contains("..") {
            error("\(key) '\(raw)' contains '..'; write the path without it", at: node)
            return nil
        }
        if GlobPattern.hasMetacharacters(raw) {
            error("\(key) '\(raw)' contains a glob; name one directory", at: node)
            return nil
        }
        return "/" + components.joined(separator: "/")
    }

    /// Reports `sanitize` on rules other than log rules, a second `sanitize` in one rule, and a `copy_to:`
    /// that is the directory of one of the rule's logs (the copies, under the logs' own names, would
    /// replace them).
    ///
    /// `kind` nil: the rule's subject is unknown (already reported); only the repeat is checked.
    mutating func checkSanitizeActions(_ uses: [SanitizeUse], kind: RuleKind?, logPaths: [PathPattern]) {
        for use in uses.dropFirst() {
            error(
                "action 'sanitize' is listed twice in then:; a rule masks its lines once, so merge the two into one sanitize: { … }",
                at: use.location
            )
        }
        guard let kind else { return }
        guard kind == .log else {
            for use in uses {
                error(
                    "action 'sanitize' does not apply to \(kind.name) rules; sanitize applies to log rules: it masks secrets in the lines of log: files",
                    at: use.location
                )
            }
            return
        }
        for use in uses {
            guard let directory = use.spec?.copyDirectory, let node = use.copyNode,
                let log = logPaths.first(where: { $0.directory == directory })
            else { continue }
            error(
                "copy_to '\(directory)' is the directory of log '\(log.raw)'; the redacted copies keep the logs' names and would replace them, so choose another directory such as \(directory == "/" ? "" : directory)/sanitized",
                at: node
            )
        }
    }
}
