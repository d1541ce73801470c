extension MessageTemplate {
    /// The fields every `log:` rule's message may use; docs/rules.md#log-rules says what each holds. The
    /// names of the rule's capture groups (`(?<user>…)` in `match:`) are fields too, and may not repeat
    /// these.
    public static let logFields = ["rule", "severity", "host", "path", "line", "offset", "count", "key", "window"]

    /// The message of a log rule without `message:`: the line itself, or with `count:` how many lines
    /// matched within the window (and for which key).
    ///
    /// The compiler stores it, parsed, in `Rule.message`, so the daemon renders every rule's message the
    /// same way whether it was written or not.
    public static func defaultSource(for log: LogSubject) -> String {
        guard let count = log.count else { return "{rule}: {line}" }
        let lines = log.patterns.isEmpty ? "lines" : "matching lines"
        return "{rule}: {count} \(lines) within {window}" + (count.key == nil ? "" : " for {key}")
    }
}

extension LogSubject {
    /// The capture names of all patterns, in the order they first appear, without repeats: with the
    /// built-in `MessageTemplate.logFields`, the fields this rule's messages and `by:` may use.
    public var captureNames: [String] {
        var names: [String] = []
        for pattern in patterns {
            for name in pattern.captureNames where !names.contains(name) { names.append(name) }
        }
        return names
    }
}
