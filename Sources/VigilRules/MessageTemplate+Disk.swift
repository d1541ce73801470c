extension MessageTemplate {
    /// The fields a `disk:` rule's message may use; docs/rules.md#disk-rules says what each holds: `mount`
    /// the mount point, `path` the rule's path on it, `usage` and `threshold` in percent (`87.2%`, `85%`),
    /// `size`, `used`, `available` in bytes as `df -h` writes them (`7.6M`), `fstype` (`ext4`), `inodes`
    /// the inode usage and `inodes_threshold`.
    public static let diskFields = [
        "rule", "severity", "host", "mount", "path", "usage", "threshold", "size", "used", "available", "fstype",
        "inodes", "inodes_threshold",
    ]

    /// The message of a `disk:` rule without `message:`.
    public static let defaultDiskSource =
        "{mount} ({fstype}) is {usage} full (above: {threshold}), inodes {inodes} (inodes_above: {inodes_threshold}); {used} used of {size}, {available} available"

    /// The resolution message of a `disk:` rule with neither `message:` nor `resolved_message:`.
    public static let defaultDiskResolvedSource =
        "{mount} ({fstype}) is {usage} full, inodes {inodes}: below the thresholds again; {available} available"
}
