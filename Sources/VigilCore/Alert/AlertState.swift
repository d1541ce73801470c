/// Where an alert is in its life, as Alertmanager sees it.
///
/// *State* rules (a config value, a file mode, a threshold) send `firing` when their condition becomes
/// true for an instance and `resolved` when it becomes false again; both carry the same fingerprint, which
/// is how Alertmanager pairs them. *Event* rules (a log line, a process exit) send `event`: it fires once
/// and never resolves.
public enum AlertState: String, Sendable {
    /// The condition of a state rule became true.
    case firing
    /// The condition of a state rule that was firing became false.
    case resolved
    /// A one-off event; there is nothing to resolve.
    case event
}
