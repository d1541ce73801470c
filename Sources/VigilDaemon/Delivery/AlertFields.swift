import VigilCore

/// The fields of an alert record by the names rule files use in templates (`{rule}`, `{path}`, a label's
/// name): e-mail subjects and bodies render through it, and so do the dedup keys, so `{path}` means the
/// same thing everywhere.
enum AlertFields {
    /// The value of field `name` of `record`: `id`, `time` (RFC 3339, UTC, microseconds), `host`, `rule`,
    /// `severity`, `state`, `kind`, `path`, `message`, `fingerprint`, and otherwise the label of that name.
    /// nil when the record has no such field (`path` of an alert about no file, a missing label), so a
    /// template leaves `{name}` as written. A label wins over the fields derived from the record for the
    /// names of config and file rule messages: `file` (the path's last component), `key`, `old`, `new` and
    /// `value` (its first change), `changes` (every changed key) and `change` (the kind's last part).
    static func value(_ name: String, of record: AlertRecord) -> String? {
        if let label = record.labels[name] { return label }
        return recordField(name, of: record)
    }

    private static func recordField(_ name: String, of record: AlertRecord) -> String? {
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
        case "file": record.path.map { path in path.split(separator: "/").last.map(String.init) ?? path }
        case "key": record.changes.first?.key
        case "old": record.changes.first?.old
        case "new", "value": record.changes.first?.new
        case "changes": record.changes.isEmpty ? nil : record.changes.map(\.key).joined(separator: ",")
        case "change": record.kind.split(separator: ".").last.map(String.init)
        default: nil
        }
    }
}
