/// One alert, as every sink receives it. `encodeJSONLine(into:)` writes it as one line of JSON, the format
/// described by `docs/alert.schema.json`.
public struct AlertRecord: Sendable, Equatable {
    /// 32 lowercase hex digits naming this record; see `AlertIdentity.id`. The same event processed twice
    /// has the same id.
    public var id: String
    /// When the event happened: whole seconds of Unix time.
    public var timeSeconds: Int64
    /// When the event happened: nanoseconds past `timeSeconds` (0..<1 000 000 000). JSON keeps microseconds.
    public var timeNanoseconds: Int32
    /// The host the alert is about (its name as the daemon knows it).
    public var host: String
    /// The id of the rule that raised the alert.
    public var rule: String
    /// `critical`, `error`, `warning` or `info`.
    public var severity: String
    /// Firing, resolved, or a one-off event.
    public var state: AlertState
    /// What happened, dotted: `config.changed`, `file.deleted`, `process.exited`, `vigil.events_lost`.
    public var kind: String
    /// The file the alert is about, if any; omitted from JSON when nil.
    public var path: String?
    /// One human sentence saying what happened; already free of secrets.
    public var message: String
    /// The config keys that changed, already masked by the caller (`ConfigChange.masked()`).
    public var changes: [ConfigChange]
    /// 16 lowercase hex digits naming the rule instance; see `AlertIdentity.fingerprint`. Firing and
    /// resolved records of one instance share it.
    public var fingerprint: String
    /// Extra string fields (process name, pid, threshold…), emitted as a JSON object sorted by key in byte
    /// order, and omitted when empty.
    public var labels: [String: String]

    /// A record with every field given; `path`, `changes` and `labels` default to absent.
    public init(
        id: String,
        timeSeconds: Int64,
        timeNanoseconds: Int32,
        host: String,
        rule: String,
        severity: String,
        state: AlertState,
        kind: String,
        path: String? = nil,
        message: String,
        changes: [ConfigChange] = [],
        fingerprint: String,
        labels: [String: String] = [:]
    ) {
        self.id = id
        self.timeSeconds = timeSeconds
        self.timeNanoseconds = timeNanoseconds
        self.host = host
        self.rule = rule
        self.severity = severity
        self.state = state
        self.kind = kind
        self.path = path
        self.message = message
        self.changes = changes
        self.fingerprint = fingerprint
        self.labels = labels
    }
}
