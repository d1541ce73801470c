extension MessageTemplate {
    /// The fields a `pressure:` rule's message may use; docs/rules.md#pressure-rules says what each holds:
    /// `resource` (`memory`), `scope` (`some`), `stall` and `window` as durations (`200ms`, `2s`), `avg10` the
    /// file's 10-second average in percent when the rule fired, `cgroup` (or `host`), `path` the pressure file.
    public static let pressureFields = [
        "rule", "severity", "host", "resource", "scope", "stall", "window", "avg10", "cgroup", "path",
    ]

    /// The message of a `pressure:` rule without `message:`.
    public static let defaultPressureSource =
        "{resource} pressure on {cgroup}: tasks stalled ({scope}) more than {stall} within {window}; avg10 {avg10}%"

    /// The resolution message of a `pressure:` rule with neither `message:` nor `resolved_message:`.
    public static let defaultPressureResolvedSource =
        "{resource} pressure on {cgroup}: stalled ({scope}) less than {stall} within a whole {window}"
}
