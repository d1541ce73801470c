internal import Yams

extension RuleFileParser {
    /// Rule keys that only log rules take.
    static let logOnlyKeys = ["match", "caseless", "from", "count"]
    /// Keys of `count:`.
    static let countKeys = ["at_least", "within", "by"]
    /// What `from:` takes.
    static let logStartNames = ["end", "start"]

    /// A log rule's parts as parsed.
    struct LogSubjectDraft {
        /// The subject; nil when any part had errors.
        var subject: LogSubject?
        /// The capture names of every `match:` pattern, in order, without repeats (those of patterns with
        /// errors too, so that fields using them are not reported again).
        var captureNames: [String] = []
        /// False when `match:` or one of its entries could not be read: the capture names are then not all
        /// known, and fields are not checked against them.
        var capturesKnown = true
        /// The paths of `log:` that parsed (for the check of sanitize's `copy_to:`).
        var paths: [PathPattern] = []
    }

    /// Parses `log:`, `match:`, `caseless:`, `from:` and `count:` of a log rule.
    mutating func parseLogSubject(_ keys: [String: (key: Node, value: Node)]) -> LogSubjectDraft {
        let errorsBefore = errorCount
        var draft = LogSubjectDraft()
        let paths = keys["log"].flatMap {
            parsePathList($0.value, key: "log", example: "/var/log/app.log")?.map(\.path)
        }
        draft.paths = paths ?? []
        let caseless = keys["caseless"].flatMap { parseBool($0.value, key: "caseless") } ?? false
        var patterns: [LogPattern] = []
        if let (_, node) = keys["match"] {
            let parsed = parsePatterns(
                node,
                key: "match",
                caseless: caseless,
                reservedNames: MessageTemplate.logFields,
                captureNames: &draft.captureNames
            )
            patterns = parsed.patterns
            draft.capturesKnown = parsed.complete
        }
        var start = LogStart.end
        if let (_, node) = keys["from"], let text = parseString(node, key: "from", expected: "end or start") {
            if let parsed = LogStart(rawValue: text) {
                start = parsed
            } else {
                let meaning =
                    "end (only lines written from now on, the default) or start (the whole existing file first)"
                if let suggestion = Spelling.suggestion(for: text, among: Self.logStartNames) {
                    error("from '\(text)' is not known; did you mean '\(suggestion)'? (expected \(meaning))", at: node)
                } else {
                    error("from '\(text)' is not known; expected \(meaning)", at: node)
                }
            }
        }
        let keyFields = draft.capturesKnown ? draft.captureNames + ["path"] : nil
        let count = keys["count"].flatMap { parseLogCount($0.value, keyFields: keyFields) }
        guard errorCount == errorsBefore, let paths else { return draft }
        draft.subject = LogSubject(paths: paths, patterns: patterns, count: count, start: start)
        return draft
    }

    /// Parses patterns (`match:`, or sanitize's `patterns:`): one non-empty string or a list of them.
    ///
    /// Collects the capture names of every pattern into `captureNames` (in order, without repeats).
    /// `complete` is false when an entry could not be read at all, so some names may be missing. A capture
    /// named like one of `reservedNames` is an error: the field would be ambiguous in messages.
    mutating func parsePatterns(
        _ node: Node,
        key: String,
        caseless: Bool,
        reservedNames: [String],
        captureNames: inout [String]
    ) -> (patterns: [LogPattern], complete: Bool) {
        let example = key == "match" ? "'Failed password for (?<user>\\S+)'" : "'token=[A-Za-z0-9]+'"
        let elements: [Node]
        switch node {
        case .sequence(let sequence): elements = Array(sequence)
        case .scalar(let scalar) where scalar.value != .null: elements = [node]
        default:
            var message =
                "'\(key)' is \(node.kindDescription); expected a pattern such as \(example), or a list of them"
            if key == "match" { message += " (remove match: to see every line)" }
            error(message, at: node)
            return ([], false)
        }
        guard !elements.isEmpty else {
            let hint = key == "match" ? "remove match: to see every line" : "remove patterns:"
            error("'\(key)' is an empty list; expected at least one pattern such as \(example), or \(hint)", at: node)
            return ([], key == "match")
        }
        var patterns: [LogPattern] = []
        var complete = true
        for element in elements {
            guard case .scalar(let scalar) = element, scalar.value != .null else {
                error(
                    "an entry of '\(key)' is \(element.kindDescription); expected a pattern such as \(example)",
                    at: element
                )
                complete = false
                continue
            }
            guard !scalar.string.isEmpty else {
                let hint =
                    key == "match"
                    ? "an empty pattern matches every line, so remove match: to see every line, or write a pattern"
                    : "write a pattern whose matches are masked, or remove the entry"
                error("an entry of '\(key)' is an empty string; \(hint)", at: element)
                continue
            }
            let pattern = makePattern(scalar, node: element, caseless: caseless, reservedNames: reservedNames)
            for name in pattern.captureNames where !captureNames.contains(name) { captureNames.append(name) }
            patterns.append(pattern)
        }
        return (patterns, complete)
    }

    /// A pattern from its scalar: where it is, how its offsets map to columns, and its checked capture names.
    private mutating func makePattern(
        _ scalar: Node.Scalar,
        node: Node,
        caseless: Bool,
        reservedNames: [String]
    ) -> LogPattern {
        let expression = scalar.string
        var pattern = LogPattern(
            expression: expression,
            // `(?i)` at the start makes the whole pattern caseless, as `caseless: true` does (see LogPattern).
            caseless: caseless || expression.hasPrefix("(?i)"),
            location: node.location(in: file),
            columnOffset: nil,
            captureNames: []
        )
        pattern.columnOffset = patternColumnOffset(scalar, at: pattern.location)
        for group in CaptureNameScanner.scan(expression) {
            let at = pattern.location(ofOffset: group.offset)
            let name = group.name
            if !CaptureNameScanner.isValidName(name) {
                error(
                    "capture name '\(name)' is not valid; a name has letters, digits and '_' and does not start with a digit, such as '\(CaptureNameScanner.repairedName(name))'",
                    at: at
                )
            } else if pattern.captureNames.contains(name) {
                error(
                    "capture name '\(name)' is used twice in this pattern; give each group its own name, or use one group",
                    at: at
                )
            } else if reservedNames.contains(name) {
                error(
                    "capture name '\(name)' is a built-in field of log rules, so {\(name)} could not name the group; rename the group, such as (?<matched_\(name)>…) (built-in fields: \(reservedNames.joined(separator: ", ")))",
                    at: at
                )
            }
            // Invalid and repeated names are kept: fields that use them are not reported a second time.
            if !pattern.captureNames.contains(name) { pattern.captureNames.append(name) }
        }
        return pattern
    }

    /// How many columns after the scalar's position its text starts, when every character of the text is
    /// written on that line as it is: 0 for a plain scalar, 1 for a single-quoted one without `''`
    /// escapes. Nil for double-quoted, block and multi-line scalars, whose text differs from what was
    /// written.
    private func patternColumnOffset(_ scalar: Node.Scalar, at location: SourceLocation) -> Int? {
        let offset: Int
        switch scalar.style {
        case .plain, .any: offset = 0
        case .singleQuoted: offset = 1
        case .doubleQuoted, .literal, .folded: return nil
        }
        guard location.line >= 1, location.line <= sourceLines.count, location.column >= 1 else { return nil }
        // Columns count Unicode scalars, as libyaml does.
        let line = sourceLines[location.line - 1].unicodeScalars
        guard
            let start = line.index(line.startIndex, offsetBy: location.column - 1 + offset, limitedBy: line.endIndex)
        else { return nil }
        let written = line[start...]
        let text = scalar.string.unicodeScalars
        guard written.starts(with: text) else { return nil }
        if offset == 1 {
            // The closing quote follows, and is not the first half of a `''` escape.
            let after = written.dropFirst(text.count)
            guard after.first == "'", after.dropFirst().first != "'" else { return nil }
        }
        return offset
    }

    /// Parses `count: { at_least: N, within: T, by: "{field}" }`. `keyFields` are the fields `by:` may use;
    /// nil when they are not all known (only the template's syntax is checked then).
    private mutating func parseLogCount(_ node: Node, keyFields: [String]?) -> LogCount? {
        guard case .mapping(let mapping) = node else {
            error(
                "'count' is \(node.kindDescription); expected a map such as { at_least: 5, within: 60s, by: \"{user}\" }",
                at: node
            )
            return nil
        }
        let errorsBefore = errorCount
        let (keys, suggestions) = checkKeys(mapping, allowed: Self.countKeys, context: "count:")
        let threshold = keys["at_least"].flatMap {
            parseWholeNumber($0.value, what: "at_least", range: 1...Int.max)
        }
        let window = keys["within"].flatMap { parseDuration($0.value, key: "within") }
        let key = keys["by"].flatMap { parseCountKey($0.value, fields: keyFields) }
        // A misspelt key was reported with its suggestion; its absence is not reported again.
        if keys["at_least"] == nil && !suggestions.contains("at_least") {
            error("'count' has no at_least:; add at_least: N, the number of lines that fires the rule", at: node)
        }
        if keys["within"] == nil && !suggestions.contains("within") {
            error("'count' has no within:; add within: 60s, the window in which at_least: lines must match", at: node)
        }
        guard errorCount == errorsBefore, let threshold, let window else { return nil }
        return LogCount(threshold: threshold, windowMilliseconds: window, key: key)
    }

    /// Parses `by:` of `count:`: a template whose fields are capture names or `path`.
    private mutating func parseCountKey(_ node: Node, fields: [String]?) -> MessageTemplate? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'by' is \(node.kindDescription); expected a template such as \"{user}\"", at: node)
            return nil
        }
        guard let key = parseTemplateText(scalar, node: node, allowedFields: fields, context: "by:") else {
            return nil
        }
        guard !key.fieldNames.isEmpty else {
            let example = fields?.first { $0 != "path" } ?? "user"
            error(
                "'by' names no field, so every line has the same key; write a field such as \"{\(example)}\", or remove by: to count all lines together",
                at: node
            )
            return nil
        }
        return key
    }

    /// Reports `match:`, `caseless:`, `from:` and `count:` on rules other than log rules.
    mutating func reportLogOnlyKeys(_ keys: [String: (key: Node, value: Node)], kind: RuleKind) {
        for name in Self.logOnlyKeys {
            guard let (key, _) = keys[name] else { continue }
            error("'\(name)' does not apply to \(kind.name) rules; it belongs to log: rules", at: key)
        }
    }
}
