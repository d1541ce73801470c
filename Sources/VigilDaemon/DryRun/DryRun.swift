import Logging

/// `vigil run --dry-run`, as one watcher thread sees it: the watcher judges everything as usual, and at each
/// point where it would change the host (chmod, chown, mask, rotate, restart, signal) it builds the text of
/// what it would do from the values the real action uses, reports it through here, and does not act.
///
/// Each watcher holds its own instance (in its `Settings`; nil in a real run), used only on its thread. The
/// instance remembers what it reported, so a condition the dry run leaves in place (a file still 0666, a
/// log still over its size) is reported once per change, not on every event it causes.
final class DryRun {
    /// The alert label that carries the action's text.
    static let label = "dry_run"

    private let logger: Logger
    /// What was reported last, by subject (a path, a rule and path): the same value is not reported again.
    private var reported: [String: String] = [:]

    init(logger: Logger) {
        self.logger = logger
    }

    /// True the first time `value` is reported for `key` (and whenever it differs from the last one).
    func isNew(_ key: String, _ value: String) -> Bool {
        guard reported[key] != value else { return false }
        reported[key] = value
        return true
    }

    /// The condition of `key` went away (a log back under its size): its next occurrence is reported again.
    func forget(_ key: String) {
        reported[key] = nil
    }

    /// "12 MiB", "512 KiB", "900 bytes": sizes as the reports show them (one decimal when not whole).
    static func bytes(_ count: UInt64) -> String {
        let units: [(UInt64, String)] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (size, unit) in units where count >= size {
            let tenths = count * 10 / size
            return tenths % 10 == 0 ? "\(tenths / 10) \(unit)" : "\(tenths / 10).\(tenths % 10) \(unit)"
        }
        return "\(count) bytes"
    }

    /// The notice line for an action not done: "Dry run: rule 'R' would chmod 0640 /etc/x (now 0666)".
    func note(rule: String, _ text: String) {
        logger.notice("Dry run: rule '\(rule)' \(text)")
    }
}
