extension MessageTemplate {
    /// The fields a `process:` rule's message may use; docs/rules.md#messages says what each holds.
    public static let processFields = [
        "rule", "severity", "host", "pid", "ppid", "name", "exe", "argv", "user", "uid", "euid", "parent", "unit",
        "cgroup", "event", "code", "signal", "core", "status", "count", "minimum", "grace", "restarts", "cpu", "memory",
        "rss", "threshold", "held",
    ]

    /// The message of a process rule without `message:`, by trigger.
    ///
    /// The compiler stores it, parsed, in `Rule.message`, so the daemon renders every rule's message the
    /// same way whether it was written or not.
    public static func defaultSource(for trigger: ProcessTrigger) -> String {
        switch trigger {
        case .expectRunning(let minimum) where minimum > 1:
            "{rule}: {count} {name} processes running, fewer than {minimum}"
        case .expectRunning:
            "{rule}: {name} is not running"
        case .events:
            "{rule}: {name} (pid {pid}) {status}"
        case .zombie:
            "{rule}: {name} (pid {pid}) is a zombie; its parent {parent} (pid {ppid}) has not reaped it"
        case .root:
            "{rule}: {exe} (pid {pid}) runs as root; parent {parent} (pid {ppid})"
        case .threshold:
            "{rule}: {name} (pid {pid}, user {user}) above {threshold} for {held}: cpu {cpu}, memory {memory}, rss {rss}"
        }
    }

    /// The resolution message of a process state rule that has neither `message:` nor `resolved_message:`;
    /// nil for event rules (they never resolve).
    ///
    /// The compiler stores it in `Rule.resolvedMessage`. A rule with its own `message:` but no
    /// `resolved_message:` keeps nil there, so it resolves with "Resolved: " + its message, like config rules.
    public static func defaultResolvedSource(for trigger: ProcessTrigger) -> String? {
        switch trigger {
        case .expectRunning(let minimum) where minimum > 1:
            "{rule}: {count} {name} processes running again, at least {minimum}"
        case .expectRunning:
            "{rule}: {name} runs again (pid {pid})"
        case .zombie:
            "{rule}: zombie {name} (pid {pid}) is gone"
        case .threshold:
            "{rule}: {name} (pid {pid}) {status}: cpu {cpu}, memory {memory}, rss {rss}"
        case .events, .root:
            nil
        }
    }
}
