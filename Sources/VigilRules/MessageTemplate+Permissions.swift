extension MessageTemplate {
    /// The fields a mode and owner rule's message may use; docs/rules.md#mode-and-owner-rules says what each
    /// holds: `kind` is `file` or `directory`, `found` and `expected` are such as `mode 0777` and
    /// `mode 0640` (or `owner root`, `group log-readers`, several joined by `, `), `outcome` such as
    /// `restored`.
    public static let permissionFields = ["rule", "severity", "host", "path", "kind", "found", "expected", "outcome"]

    /// The message of a mode and owner rule without `message:`. The compiler stores it, parsed, in
    /// `Rule.message`.
    public static let defaultPermissionSource = "{path}: {found}, expected {expected}; {outcome}"

    /// The resolution message of a mode and owner rule with neither `message:` nor `resolved_message:`
    /// (stored in `Rule.resolvedMessage`); a rule with its own `message:` resolves with "Resolved: " + it.
    public static let defaultPermissionResolvedSource = "{path}: {expected} again"

    /// The fields a `rotate:` rule's message may use; docs/rules.md#rotation-rules says what each holds:
    /// `path` the log, `rotated` where its content went (such as
    /// `/var/log/archive/unified.log-20260127`), `size` its size in bytes, `reason` such as `size` or
    /// `daily`, `outcome` such as `compressed` or the error.
    public static let rotateFields = ["rule", "severity", "host", "path", "rotated", "size", "reason", "outcome"]

    /// The message of a rotation rule without `message:`. The compiler stores it, parsed, in `Rule.message`.
    public static let defaultRotateSource = "{path} rotated to {rotated} ({reason}, {size} bytes); {outcome}"
}
