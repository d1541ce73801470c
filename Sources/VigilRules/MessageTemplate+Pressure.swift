extension MessageTemplate {
    /// The fields a `pressure:` rule's message may use; docs/rules.md says what each holds.
    public static let pressureFields = ["rule", "severity", "host"]

    /// The message of a `pressure:` rule without `message:`.
    public static let defaultPressureSource = "{rule}"

    /// The resolution message of a `pressure:` rule with neither `message:` nor `resolved_message:`.
    public static let defaultPressureResolvedSource = "Resolved: {rule}"
}
