internal import Yams

// `dedup:` and `remind:`, the per-rule noise control every rule kind takes. They only bound how often an
// alert reaches the sinks; what a rule watches and when it fires stay as the rest of the rule says.

extension RuleFileParser {
    /// Keys of `dedup: { … }`.
    static let dedupKeys = ["key", "window", "max"]
    /// Fields of every alert record, whatever the rule kind; a `dedup:` key may use them besides the
    /// fields of the rule's message.
    static let alertRecordFields = ["rule", "host", "severity", "kind", "path", "message", "fingerprint", "tags"]
    /// `key:` when not given: the rule and the thing the alert is about.
    static let defaultDedupKey = MessageTemplate(segments: [.field("fingerprint")], source: "{fingerprint}")
    /// Bounds of `window:`: below 10ms a window holds back nothing; 24h is the longest duration.
    static let dedupWindowRange = 10...RuleDuration.longestMilliseconds
    /// Bounds of `max:`.
    static let dedupMaximumRange = 1...1_000_000

    /// Parses `dedup:` — `{ key: TEMPLATE, window: D, max: N }`, or a duration alone for `window:` with the
    /// default key and max. `messageFields` are the fields of the rule kind's message (nil: not all known,
    /// so only the key's syntax is checked). Nil when it had errors.
    mutating func parseDedup(_ node: Node, at keyNode: Node, messageFields: [String]?) -> NoiseControl? {
        let location = keyNode.location(in: file)
        switch node {
        case .scalar(let scalar) where scalar.value != .null:
            guard let window = parseDuration(node, key: "dedup", within: Self.dedupWindowRange) else { return nil }
            return NoiseControl(key: Self.defaultDedupKey, windowMilliseconds: window, location: location)
        case .mapping(let mapping):
            let errorsBefore = errorCount
            let (keys, _) = checkKeys(mapping, allowed: Self.dedupKeys, context: "dedup:")
            var window: Int?
            if let (_, value) = keys["window"] {
                window = parseDuration(value, key: "window", within: Self.dedupWindowRange)
            } else {
                error("dedup: has no window:; add window: such as 60s (or write dedup: 60s)", at: node)
            }
            var maximum = 1
            if let (_, value) = keys["max"],
                let number = parseWholeNumber(value, what: "max", range: Self.dedupMaximumRange)
            {
                maximum = number
            }
            var key = Self.defaultDedupKey
            if let (_, value) = keys["key"], let parsed = parseDedupKey(value, messageFields: messageFields) {
                key = parsed
            }
            guard errorCount == errorsBefore, let window else { return nil }
            return NoiseControl(key: key, windowMilliseconds: window, maximum: maximum, location: location)
        default:
            error(
                "'dedup' is \(node.kindDescription); expected a duration such as 60s, or a map such as { key: \"{path}\", window: 60s, max: 1 }",
                at: node
            )
            return nil
        }
    }

    /// `key:` of `dedup:` — a template over the alert record's fields and the rule's message fields.
    private mutating func parseDedupKey(_ node: Node, messageFields: [String]?) -> MessageTemplate? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'key' is \(node.kindDescription); expected a template such as \"{path}\"", at: node)
            return nil
        }
        let fields = messageFields.map { fields in fields + Self.alertRecordFields.filter { !fields.contains($0) } }
        return parseTemplateText(scalar, node: node, allowedFields: fields, context: "dedup key")
    }

    /// Parses `remind:` — a period of at least 1s (a faster reminder is an alert storm, not a reminder).
    ///
    /// Reminders repeat the alerts of state rules that stay firing; on an event rule (`isState` false),
    /// which never stays firing, `remind:` would do nothing, which is worth a warning.
    mutating func parseRemind(_ node: Node, at keyNode: Node, isState: Bool?) -> Int? {
        guard let period = parseDuration(node, key: "remind", within: 1000...RuleDuration.longestMilliseconds) else {
            return nil
        }
        if isState == false {
            warning(
                "'remind' repeats the alerts of state rules while they stay firing, but this is an event rule, which never stays firing; remove remind: (dedup: limits how often event alerts pass)",
                at: keyNode
            )
        }
        return period
    }
}
