import VigilCore

/// The fields of an alert record by the names rule files use in templates (`{rule}`, `{path}`, a label's
/// name): e-mail subjects and bodies render through it, and so do the dedup keys, so `{path}` means the
/// same thing everywhere.
enum AlertFields {
    /// The value of field `name` of `record`: `id`, `time` (RFC 3339, UTC, microseconds), `host`, `rule`,
    /// `severity`, `state`, `kind`, `path`, `message`, `fingerprint`, and otherwise the label of that name.
    /// nil when the record has no such field (`path` of an alert about no file, a missing label), so a
    /// template leaves `{name}` as written.
    static func value(_ name: String, of record: AlertRecord) -> String? {
        switch name {
        case "id": record.id
        case "time": RFC3339.string(seconds: record.timeSeconds, nanoseconds: record.timeNanoseconds)
        case "host": record.host
        case "rule": record.rule
        case "severity": record.severity
        case "state": record.state.rawValue
        case "kind": record.kind
        case "path": record.path
        case "message": record.message
        case "fingerprint": record.fingerprint
        default: record.labels[name]
        }
    }
}
