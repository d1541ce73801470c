extension MessageTemplate {
    /// The fields a `escalation:` rule's message may use; docs/rules.md says what each holds.
    public static let escalationFields = ["rule", "severity", "host"]

    /// The message of a `escalation:` rule without `message:`.
    public static let defaultEscalationSource = "{rule}"

    /// The resolution message of a `escalation:` rule with neither `message:` nor `resolved_message:`.
    public static let defaultEscalationResolvedSource = "Resolved: {rule}"
}
