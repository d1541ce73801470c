extension MessageTemplate {
    /// The fields a `escalation:` rule's message may use; docs/rules.md says what each holds.
    ///
    /// `program` is what root runs, `path` the first path on its way that others can write (the program
    /// itself or a directory above it), `source` where root runs it (`/etc/crontab:12`), `writer` who can
    /// write (`user aanya`, `group developers`, `everyone`), `reason` why (`owner of /home/aanya/scripts
    /// (mode 0755)`), `fix` the commands that close it, `outcome` (resolutions) why it is over.
    public static let escalationFields = [
        "rule", "severity", "host", "program", "path", "source", "writer", "reason", "fix", "outcome",
    ]

    /// The message of a `escalation:` rule without `message:`.
    public static let defaultEscalationSource =
        "root runs {program} ({source}), but {writer} can write {path}: {reason}; fix: {fix}"

    /// The resolution message of a `escalation:` rule with neither `message:` nor `resolved_message:`.
    public static let defaultEscalationResolvedSource = "Resolved: {program}: {outcome}"
}
