extension MessageTemplate {
    /// The fields a `listening:` rule's message may use; docs/rules.md says what each holds. `status` is a
    /// sentence about the listener (or the missing one), so that one default reads right for both
    /// `allow:` and `expect:` rules, firing and resolved.
    public static let listeningFields = [
        "rule", "severity", "host", "status", "proto", "address", "port", "endpoint", "pid", "name", "exe", "user",
        "unit", "inode", "count", "expected",
    ]

    /// The message of a `listening:` rule without `message:`.
    public static let defaultListeningSource = "{status}"

    /// The resolution message of a `listening:` rule with neither `message:` nor `resolved_message:`.
    public static let defaultListeningResolvedSource = "Resolved: {status}"
}
