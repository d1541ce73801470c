extension MessageTemplate {
    /// The fields a `disk:` rule's message may use; docs/rules.md says what each holds.
    public static let diskFields = ["rule", "severity", "host"]

    /// The message of a `disk:` rule without `message:`.
    public static let defaultDiskSource = "{rule}"

    /// The resolution message of a `disk:` rule with neither `message:` nor `resolved_message:`.
    public static let defaultDiskResolvedSource = "Resolved: {rule}"
}
