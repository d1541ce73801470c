extension MessageTemplate {
    /// The fields a `listening:` rule's message may use; docs/rules.md says what each holds.
    public static let listeningFields = ["rule", "severity", "host"]

    /// The message of a `listening:` rule without `message:`.
    public static let defaultListeningSource = "{rule}"

    /// The resolution message of a `listening:` rule with neither `message:` nor `resolved_message:`.
    public static let defaultListeningResolvedSource = "Resolved: {rule}"
}
