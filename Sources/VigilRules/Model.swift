public import VigilCore

// The compiled form of Vigil's rule files. `RuleCompiler` produces it from YAML; the daemon turns it into
// hot matching tables. Every element keeps its `SourceLocation` so later errors (a capability a rule
// needs and the daemon lacks, an action that fails) can point back at the rule file.

/// A position in a rule file: 1-based line and column.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:col`, as compilers print it.
    public var description: String { "\(file):\(line):\(column)" }
}

/// How urgent an alert is. The order is the one Alertmanager and syslog use: critical is the highest.
public enum Severity: String, Sendable, CaseIterable, Comparable, Equatable {
    case critical, error, warning, info

    private var rank: Int {
        switch self {
        case .critical: 3
        case .error: 2
        case .warning: 1
        case .info: 0
        }
    }

    public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }
}

/// Everything the rule files say: rules, alert sinks and named lists.
public struct RuleSet: Sendable, Equatable {
    public var rules: [Rule]
    public var sinks: [SinkSpec]
    /// Named lists (`- list: NAME` with `items:`), as written. Rules that name a list (`allow:` of
    /// `on: [root]` rules) already hold its items, expanded by the compiler.
    public var lists: [String: [String]]
    /// The files the set was compiled from, in the order they were read.
    public var files: [String]

    public init(rules: [Rule] = [], sinks: [SinkSpec] = [], lists: [String: [String]] = [:], files: [String] = []) {
        self.rules = rules
        self.sinks = sinks
        self.lists = lists
        self.files = files
    }
}

/// One rule: what to watch, when it fires, what to say, what to do.
public struct Rule: Sendable, Equatable {
    /// Unique id across the whole rule set (`rule:`).
    public var id: String
    public var location: SourceLocation
    public var severity: Severity
    public var description: String?
    /// The alert text, with `{field}` references resolved when the rule fires.
    public var message: MessageTemplate
    /// `resolved_message:`, the text of a state rule's resolution; nil: "Resolved: " + `message`.
    public var resolvedMessage: MessageTemplate?
    /// What the rule watches and when it fires.
    public var subject: Subject
    /// Actions in the order written (`then:`). Never empty: a rule with no `then:` alerts.
    public var actions: [ActionSpec]
    /// `enabled: false` keeps a rule in the file but out of the running set.
    public var enabled: Bool
    public var tags: [String]
    /// `dedup:` — how many alerts per key and window pass; nil: every alert passes.
    public var dedup: NoiseControl?
    /// `remind:` — while a condition of this rule stays firing, send it again on this period, in
    /// milliseconds; nil: no reminders.
    public var remindMilliseconds: Int?

    public init(
        id: String,
        location: SourceLocation,
        severity: Severity,
        description: String?,
        message: MessageTemplate,
        subject: Subject,
        actions: [ActionSpec],
        enabled: Bool,
        tags: [String],
        resolvedMessage: MessageTemplate? = nil
    ) {
        self.resolvedMessage = resolvedMessage
        self.id = id
        self.location = location
        self.severity = severity
        self.description = description
        self.message = message
        self.subject = subject
        self.actions = actions
        self.enabled = enabled
        self.tags = tags
    }

    /// The alert text: `message` rendered, or for a resolution `resolved_message` (nil: "Resolved: " and
    /// the message).
    public func renderMessage(resolved: Bool, _ fields: (String) -> String?) -> String {
        guard resolved else { return message.render(fields) }
        return resolvedMessage?.render(fields) ?? "Resolved: " + message.render(fields)
    }

    /// True when `other` is the same rule, wherever it is written: only its position differs. A reload keeps
    /// the state of such rules (log offsets, count windows, firing conditions) and rebuilds the rest.
    public func sameDefinition(as other: Rule) -> Bool {
        var moved = other
        moved.location = location
        return moved == self
    }

    /// The labels every alert of the rule carries: `tags` (comma-separated) when it has tags.
    public var tagLabels: [String: String] {
        tags.isEmpty ? [:] : ["tags": tags.joined(separator: ",")]
    }

    /// True for `process:` rules (run by the process watcher, not the file matcher).
    public var isProcessRule: Bool {
        if case .process = subject { return true }
        return false
    }

    /// True for `log:` rules (run by the log watcher, not the file matcher).
    public var isLogRule: Bool {
        if case .log = subject { return true }
        return false
    }

    /// True for mode and owner rules (run by the permission watcher, not the file matcher).
    public var isPermissionRule: Bool {
        if case .permissions = subject { return true }
        return false
    }

    /// True for `rotate:` rules (run by the rotation watcher, not the file matcher).
    public var isRotateRule: Bool {
        if case .rotate = subject { return true }
        return false
    }

    /// True for `pressure:` and `disk:` rules (run by the system watcher).
    public var isSystemRule: Bool {
        switch subject {
        case .pressure, .disk: true
        default: false
        }
    }

    /// True for `listening:` rules (run by the process watcher, with the proc connector's exec events).
    public var isListeningRule: Bool {
        if case .listening = subject { return true }
        return false
    }

    /// True for `escalation:` rules (run by the escalation watcher).
    public var isEscalationRule: Bool {
        if case .escalation = subject { return true }
        return false
    }

    /// State rules fire when their condition becomes true for an instance and resolve when it becomes
    /// false; event rules fire once per event and never resolve.
    public var isStateRule: Bool {
        switch subject {
        case .config(let config): config.trigger.isState
        case .file: false
        case .process(let process): process.trigger.isState
        case .log: false
        // Drift that is not put right at once (audit, or a refused change) fires and resolves.
        case .permissions: true
        case .rotate: false
        case .pressure, .disk, .listening, .escalation: true
        }
    }
}

/// What a rule watches. One case per rule kind.
public enum Subject: Sendable, Equatable {
    /// `config: PATH` — a `key = value` file, parsed into a snapshot each time it is completely written.
    case config(ConfigSubject)
    /// `file: PATH` — changes to a file itself (created, written, deleted, mode/owner).
    case file(FileSubject)
    /// `process: { … }` — processes from the kernel's proc connector (exec, exit, uid changes) and the
    /// process table built from `/proc`.
    case process(ProcessSubject)
    /// `log: PATH` (or a list of paths and globs) — every line appended to the files, matched against
    /// `match:` patterns; rotation and truncation followed by file identity.
    case log(LogSubject)
    /// `file: PATH` with `mode:`, `owner:` or `group:` — the mode and owner files must have, checked at
    /// start-up and on every change the kernel reports; put right by `chmod`/`chown` actions.
    case permissions(PermissionSubject)
    /// `rotate: PATH` — logs rotated the moment they cross a size or a time boundary.
    case rotate(RotateSubject)
    /// `pressure: cpu|memory|io` — a PSI trigger on the host's or a cgroup's pressure file.
    case pressure(PressureSubject)
    /// `disk: PATH` — the usage of the filesystem a path lives on.
    case disk(DiskSubject)
    /// `listening:` — listening sockets and the processes that own them.
    case listening(ListeningSubject)
    /// `escalation:` — programs root runs that others can write.
    case escalation(EscalationSubject)
}

/// A path as written in a rule: an absolute directory plus an exact name or a glob on the name.
public struct PathPattern: Sendable, Hashable {
    /// As written in the rule file.
    public var raw: String
    /// The absolute directory, normalised (no trailing slash except for `/`).
    public var directory: String
    /// The last component.
    public var name: NamePattern

    public init(raw: String, directory: String, name: NamePattern) {
        self.raw = raw
        self.directory = directory
        self.name = name
    }
}

/// The last component of a watched path.
public enum NamePattern: Sendable, Hashable {
    /// A literal file name.
    case exact(String)
    /// An `fnmatch(3)` pattern (`*`, `?`, `[...]`) matched against names in the directory.
    case glob(String)
}

/// `config:` rules.
public struct ConfigSubject: Sendable, Equatable {
    public var path: PathPattern
    /// `format:`; only `ini` (key = value with optional [sections]) today.
    public var format: ConfigFormat
    public var trigger: ConfigTrigger

    public init(path: PathPattern, format: ConfigFormat, trigger: ConfigTrigger) {
        self.path = path
        self.format = format
        self.trigger = trigger
    }
}

public enum ConfigFormat: String, Sendable, Equatable {
    case ini
}

/// When a config rule fires.
public enum ConfigTrigger: Sendable, Equatable {
    /// `when:` — a state rule: fires when the condition becomes true for a file, resolves when false.
    case when(Condition)
    /// `changes:` — an event rule: fires each time one of these keys (globs allowed; `*` for any) changes.
    case changes([String])

    public var isState: Bool {
        if case .when = self { return true }
        return false
    }
}

/// A condition over the keys of a config snapshot.
public indirect enum Condition: Sendable, Equatable {
    case all([Condition])
    case any([Condition])
    case not(Condition)
    case key(KeyCondition, SourceLocation)
}

/// One test on one key (`{ key: verify_ssl, is: false }`).
public struct KeyCondition: Sendable, Equatable {
    /// Lookup key: lowercased; `section.key` for a key under `[section]`.
    public var key: String
    public var test: KeyTest

    public init(key: String, test: KeyTest) {
        self.key = key
        self.test = test
    }
}

/// A comparison. A key that is absent makes every test false except `.missing`.
public enum KeyTest: Sendable, Equatable {
    case equals(ConfigLiteral)
    case notEquals(ConfigLiteral)
    case oneOf([ConfigLiteral])
    case greaterThan(Double)
    case greaterOrEqual(Double)
    case lessThan(Double)
    case lessOrEqual(Double)
    case present
    case missing
}

/// A value written in a rule. Its YAML type decides how a config value is compared with it.
public enum ConfigLiteral: Sendable, Equatable {
    /// `true`/`false`: config values `false, no, off, 0` (any case) are false; `true, yes, on, 1` true.
    case bool(Bool)
    /// A number: the config value is parsed as a number; equal when numerically equal.
    case number(Double)
    /// Anything else: exact string comparison.
    case string(String)
}

/// `file:` rules fire on changes to the file itself.
public struct FileSubject: Sendable, Equatable {
    public var path: PathPattern
    public var on: Set<FileChangeKind>

    public init(path: PathPattern, on: Set<FileChangeKind>) {
        self.path = path
        self.on = on
    }
}

/// A change to a file, derived from comparing what Vigil knew with what is there now.
public enum FileChangeKind: String, Sendable, CaseIterable, Hashable {
    /// The file appeared.
    case created
    /// Its content was completely rewritten (closed after writing, or another file renamed over it).
    case written
    /// It is gone (and stayed gone; an editor's rename-and-recreate is not a deletion).
    case deleted
    /// Its mode, owner or group changed.
    case attributes
}

/// An action in `then:`.
public enum ActionSpec: Sendable, Equatable {
    /// `alert` (to every sink) or `alert: [sink, ...]`.
    case alert(sinks: [String]?, location: SourceLocation)
    /// `restart` or `restart: { … }` (process rules): start the service again.
    case restart(ServiceAction)
    /// `reload` or `reload: { … }` (process rules): make the running service reread its configuration.
    case reload(ServiceAction)
    /// `sanitize` or `sanitize: { … }` (log rules): mask secrets in the log itself, in place, and/or write a
    /// redacted copy.
    case sanitize(SanitizeSpec)
    /// `chmod` (mode and owner rules): restore the mode, through a descriptor opened without following
    /// symlinks.
    case chmod(SourceLocation)
    /// `chown` (mode and owner rules): restore the owner and group, the same way.
    case chown(SourceLocation)
    /// `exec: { command: [...], timeout:, on_resolved: }` (every rule kind): run a program with the alert's
    /// fields in its environment, never through a shell.
    case exec(ExecSpec)
}

/// What `exec:` runs. The program is an absolute path whose file and directory only root can change
/// (checked when the rules are loaded, as rule files are); it gets the alert in `VIGIL_*` environment
/// variables, never in its argv, so text from a log line can never become an argument or shell syntax.
public struct ExecSpec: Sendable, Equatable {
    /// Where `exec:` is written, for the failure alerts (`vigil.exec_failed` names the rule's file:line).
    public var location: SourceLocation
    /// `command:` — argv; `command[0]` is the program's absolute path.
    public var command: [String]
    /// `timeout:` — how long the program may run before it gets SIGTERM (SIGKILL 2 s later).
    public var timeoutMilliseconds: Int
    /// `on_resolved:` — also run when the rule's condition resolves (`VIGIL_STATE=resolved`).
    public var onResolved: Bool

    /// The default `timeout:`.
    public static let defaultTimeoutMilliseconds = 30_000

    public init(
        location: SourceLocation,
        command: [String],
        timeoutMilliseconds: Int = ExecSpec.defaultTimeoutMilliseconds,
        onResolved: Bool = false
    ) {
        self.location = location
        self.command = command
        self.timeoutMilliseconds = timeoutMilliseconds
        self.onResolved = onResolved
    }
}

/// How `restart` and `reload` reach a service. The daemon picks, in this order: `systemctl restart|reload
/// UNIT` where systemd is PID 1 and a unit is known (`unit:`, or the unit in the process's cgroup); the
/// `command:`; then the `signal:` sent to the rule's matching processes. `reload` with none of them sends
/// SIGHUP; `restart` with none of them cannot run off systemd, which `vigil run` reports at start-up.
public struct ServiceAction: Sendable, Equatable {
    public var location: SourceLocation
    /// `unit:` — a systemd unit name, as written; systemctl adds `.service` when it has no suffix.
    public var unit: String?
    /// `command:` — argv; the program is an absolute path, run with posix_spawn, never through a shell.
    public var command: [String]?
    /// `signal:` — a signal number (Linux x86_64/arm64 numbering) sent to every process the rule's
    /// selector matches, or to the processes `to:` selects (a supervisor that restarts its workers).
    public var signal: Int32?
    /// `to: { … }` — where `signal:` goes instead of the rule's own processes.
    public var target: ProcessSelector?
    /// `backoff:` — delay before the first retry after a restart that did not take; doubles each time.
    public var backoffMilliseconds: Int
    /// `max_backoff:` — the longest delay.
    public var maximumBackoffMilliseconds: Int
    /// `flap: { restarts: N, within: T }` — N restarts within T stop the restarts, with an alert.
    public var flapLimit: Int
    public var flapWindowMilliseconds: Int
    /// `confirm_within:` — how long to wait for the new process's exec before the restart is called failed.
    public var confirmMilliseconds: Int

    public init(
        location: SourceLocation,
        unit: String? = nil,
        command: [String]? = nil,
        signal: Int32? = nil,
        target: ProcessSelector? = nil,
        backoffMilliseconds: Int = 1000,
        maximumBackoffMilliseconds: Int = 60_000,
        flapLimit: Int = 5,
        flapWindowMilliseconds: Int = 60_000,
        confirmMilliseconds: Int = 10_000
    ) {
        self.location = location
        self.unit = unit
        self.command = command
        self.signal = signal
        self.target = target
        self.backoffMilliseconds = backoffMilliseconds
        self.maximumBackoffMilliseconds = maximumBackoffMilliseconds
        self.flapLimit = flapLimit
        self.flapWindowMilliseconds = flapWindowMilliseconds
        self.confirmMilliseconds = confirmMilliseconds
    }
}

// MARK: Process rules

/// `process:` rules: which processes (the selector) and when the rule fires (the trigger).
public struct ProcessSubject: Sendable, Equatable {
    public var selector: ProcessSelector
    public var trigger: ProcessTrigger
    /// `service: NAME` rules: the unit name. The selector is `unit: NAME`; where systemd is not PID 1 (no
    /// units in the cgroups), the daemon matches `name: NAME` (without `.service`) instead.
    public var service: String?

    public init(selector: ProcessSelector, trigger: ProcessTrigger, service: String? = nil) {
        self.selector = selector
        self.trigger = trigger
        self.service = service
    }
}

/// Which processes a rule is about. Every field is a list of alternatives (any may match); the fields
/// that are given must all match. An empty selector (`process: {}` or `process: any`) matches every
/// process. Text fields are `fnmatch(3)` globs (without FNM_PATHNAME, so `*` crosses `/`).
public struct ProcessSelector: Sendable, Equatable {
    /// `name:` — matches the kernel's `comm` (cut to 15 bytes), the executable's base name, or the base
    /// name of argv[0]; so `upload-service` and `processing-service` (18 characters) both match.
    public var names: [String]
    /// `exe:` — the executable's absolute path, as on the server (under `--root`, inside the root).
    public var executables: [String]
    /// `argv:` — the command line, arguments joined by single spaces.
    public var commandLines: [String]
    /// `user:` — the real or effective user, by name or number.
    public var users: [UserReference]
    /// `parent:` — the parent's name (same matching as `names`).
    public var parents: [String]
    /// `unit:` — the systemd unit from the process's cgroup (`upload-service` also matches
    /// `upload-service.service`).
    public var units: [String]
    /// `cgroup:` — the cgroup v2 path (`/system.slice/upload-service.service`).
    public var cgroups: [String]

    public init(
        names: [String] = [],
        executables: [String] = [],
        commandLines: [String] = [],
        users: [UserReference] = [],
        parents: [String] = [],
        units: [String] = [],
        cgroups: [String] = []
    ) {
        self.names = names
        self.executables = executables
        self.commandLines = commandLines
        self.users = users
        self.parents = parents
        self.units = units
        self.cgroups = cgroups
    }

    /// True when no field is given: every process matches.
    public var matchesEverything: Bool {
        names.isEmpty && executables.isEmpty && commandLines.isEmpty && users.isEmpty && parents.isEmpty
            && units.isEmpty && cgroups.isEmpty
    }
}

/// A user named in a rule. Names are resolved by the daemon (from the root's `etc/passwd`) at start-up.
public enum UserReference: Sendable, Hashable {
    case name(String, SourceLocation)
    case id(UInt32)
}

/// When a process rule fires.
public enum ProcessTrigger: Sendable, Equatable {
    /// `expect: running` (state): fires when no matching process runs — at start-up, or when the last one
    /// exits — and resolves when one runs again. `minimum:` raises the count that must run.
    case expectRunning(minimum: Int)
    /// `on: [exec, exit, core-dump]` (events): fires per matching event; `exit:` narrows exits.
    case events(Set<ProcessEventKind>, exit: ExitFilter?)
    /// `on: [zombie]` (state, per zombie): a matching process exited and its parent has not reaped it
    /// within `grace:`; resolves when it is gone (reaped, or the parent died).
    case zombie(graceMilliseconds: Int)
    /// `on: [root]` (events): an exec with effective uid 0, or a uid change to 0, by a process whose
    /// executable matches none of `allow:` (absolute paths or globs; the compiler has already replaced
    /// list names by their items, in order, without repeats).
    case root(allow: [String])
    /// `above: { cpu: 80%, for: 5s }` (state, per process): a matching process's CPU, memory share or
    /// resident set stayed above the threshold at every sample for the hold time; resolves at the first
    /// sample at or below it, or when the process exits.
    case threshold(ProcessThreshold)

    public var isState: Bool {
        switch self {
        case .expectRunning, .zombie, .threshold: true
        case .events, .root: false
        }
    }
}

/// What `above:` and `sample:` of a process rule say: one measure, its limit, how long a process must stay
/// above it, and how often the selected processes are sampled.
public struct ProcessThreshold: Sendable, Equatable {
    /// What is compared with the limit.
    public enum Measure: String, Sendable, CaseIterable {
        /// CPU time between two samples as a percentage of one core, as `top` shows it (more than 100 for
        /// a process with several busy threads).
        case cpu
        /// The resident set as a percentage of `MemTotal`, as `ps -o %mem` shows it.
        case memory
        /// The resident set in bytes.
        case rss
    }

    /// The measure `above:` names.
    public var measure: Measure
    /// The limit, strictly above which a sample counts: percent for `cpu` and `memory`, bytes for `rss`.
    public var limit: Double
    /// `for:` — how long every sample must be above the limit before the rule fires; 0 fires at the first.
    public var holdMilliseconds: Int
    /// `sample:` — the sampling period.
    public var sampleMilliseconds: Int

    /// `sample:` when not given: one second.
    public static let defaultSampleMilliseconds = 1000

    public init(measure: Measure, limit: Double, holdMilliseconds: Int = 0, sampleMilliseconds: Int = 1000) {
        self.measure = measure
        self.limit = limit
        self.holdMilliseconds = holdMilliseconds
        self.sampleMilliseconds = sampleMilliseconds
    }
}

/// Process events a rule can fire on.
public enum ProcessEventKind: String, Sendable, CaseIterable, Hashable {
    /// The process ran a new program (`execve`).
    case exec
    /// The process (not one of its threads) ended: an exit code, or a signal.
    case exit
    /// The process was killed by a signal and dumped core.
    case coreDump = "core-dump"
}

/// `exit: { code: …, signal: … }`: which exits count. With `exit:` given, an exit that ran to the end is
/// judged by `code` only and a killed process by `signal` only; an absent part matches nothing.
public struct ExitFilter: Sendable, Equatable {
    public enum Codes: Sendable, Equatable {
        case any
        /// `code: nonzero`
        case nonzero
        case list([Int32])
    }

    public enum Signals: Sendable, Equatable {
        case any
        case list([Int32])
    }

    public var codes: Codes?
    public var signals: Signals?

    public init(codes: Codes?, signals: Signals?) {
        self.codes = codes
        self.signals = signals
    }

    /// True when an exit with this status matches: `code` for a normal exit, `signal` for a killed process.
    public func matches(code: Int32?, signal: Int32?) -> Bool {
        if let signal {
            switch signals {
            case nil: return false
            case .any: return true
            case .list(let list): return list.contains(signal)
            }
        }
        let code = code ?? 0
        switch codes {
        case nil: return false
        case .any: return true
        case .nonzero: return code != 0
        case .list(let list): return list.contains(code)
        }
    }
}

/// A message with `{field}` references (`{{` and `}}` stand for literal braces).
public struct MessageTemplate: Sendable, Equatable {
    public enum Segment: Sendable, Equatable {
        case literal(String)
        case field(String)
    }

    public var segments: [Segment]
    /// As written in the rule file.
    public var source: String

    public init(segments: [Segment], source: String) {
        self.segments = segments
        self.source = source
    }

    /// Renders the template; `lookup` returns a field's value, or nil to leave `{field}` as written.
    public func render(_ lookup: (String) -> String?) -> String {
        var out = ""
        for segment in segments {
            switch segment {
            case .literal(let text): out += text
            case .field(let name): out += lookup(name) ?? "{\(name)}"
            }
        }
        return out
    }
}

/// Where alerts go (`- sink: NAME` entries).
public struct SinkSpec: Sendable, Equatable {
    public var name: String
    public var location: SourceLocation
    public var kind: SinkKind
    /// `min_severity:` — alerts below it do not go to this sink (Vigil's own health alerts always do).
    public var minimumSeverity: Severity
    /// Retries, spool and heartbeat (used by the sinks that are not `isLocal`).
    public var delivery: DeliveryPolicy

    public init(
        name: String,
        location: SourceLocation,
        kind: SinkKind,
        minimumSeverity: Severity = .info,
        delivery: DeliveryPolicy = DeliveryPolicy()
    ) {
        self.name = name
        self.location = location
        self.kind = kind
        self.minimumSeverity = minimumSeverity
        self.delivery = delivery
    }
}

public enum SinkKind: Sendable, Equatable {
    /// Standard output, one JSON object per line.
    case stdout
    /// A JSON Lines file (absolute path, resolved inside `--root` like every rule path).
    case jsonl(path: String)
    /// RFC 5424 to the local syslog socket.
    case syslog(SyslogSink)
    /// E-mail through the sendmail interface.
    case email(EmailSink)
    /// An HTTP POST of each record.
    case webhook(WebhookSink)
    /// Prometheus Alertmanager's API v2.
    case alertmanager(AlertmanagerSink)

    /// True for the sinks written in place by the daemon's own threads (stdout, JSON Lines files); the
    /// others are delivered by a worker of their own through a durable spool.
    public var isLocal: Bool {
        switch self {
        case .stdout, .jsonl: true
        case .syslog, .email, .webhook, .alertmanager: false
        }
    }
}

// MARK: Log rules

/// `log:` rules: which files, which lines, and (optionally) how many of them within a window.
///
/// A rule fires once per matching line, or, with `count:`, once per window in which `threshold` lines with
/// the same key matched. A rule without `match:` sees every line (a `sanitize`-only rule).
public struct LogSubject: Sendable, Equatable {
    /// `log:` — absolute paths; the last component may be a glob (`unified_*.log`), so files created
    /// later (a new one every day) are followed from the moment they appear.
    public var paths: [PathPattern]
    /// `match:` — one pattern or a list (any may match). Empty: every line.
    public var patterns: [LogPattern]
    /// `count:` — fire once per window when this many lines with the same key matched.
    public var count: LogCount?
    /// `from:` — where to begin in a file that exists when Vigil starts for the first time (no state
    /// file yet). Files that appear later, and files known from the state file, are always read from
    /// where Vigil stopped (or their start).
    public var start: LogStart

    public init(paths: [PathPattern], patterns: [LogPattern], count: LogCount? = nil, start: LogStart = .end) {
        self.paths = paths
        self.patterns = patterns
        self.count = count
        self.start = start
    }
}

/// A text pattern as written in a rule: PCRE-like syntax that Vectorscan compiles (no backreferences, no
/// lookbehind of variable length). Named groups `(?<name>…)` become alert fields, extracted (with PCRE2)
/// only for lines that matched.
public struct LogPattern: Sendable, Equatable {
    /// As written, after YAML unquoting.
    public var expression: String
    /// `caseless: true` on the rule (or `(?i)` at the start of the pattern).
    public var caseless: Bool
    /// Where the pattern's scalar starts in the rule file; `columnOffset` maps a byte offset of
    /// `expression` to a column on that line when the scalar is on one line (plain or single-quoted);
    /// nil when it cannot be mapped exactly (folded, double-quoted with escapes).
    public var location: SourceLocation
    public var columnOffset: Int?
    /// Names of the named groups, in the order they open.
    public var captureNames: [String]

    public init(
        expression: String,
        caseless: Bool,
        location: SourceLocation,
        columnOffset: Int?,
        captureNames: [String]
    ) {
        self.expression = expression
        self.caseless = caseless
        self.location = location
        self.columnOffset = columnOffset
        self.captureNames = captureNames
    }

    /// The location of byte `offset` of the expression (as Vectorscan and PCRE2 report positions), when it
    /// can be mapped exactly; else the scalar's. Columns count Unicode scalars, as the rule compiler's
    /// do, so a pattern with non-ASCII text before `offset` still points at the right column.
    public func location(ofOffset offset: Int) -> SourceLocation {
        guard let columnOffset else { return location }
        let utf8 = expression.utf8
        let inside = min(max(offset, 0), utf8.count)
        let columns = String(decoding: utf8.prefix(inside), as: UTF8.self).unicodeScalars.count + (offset - inside)
        var mapped = location
        mapped.column = location.column + columnOffset + columns
        return mapped
    }
}

/// `count: { at_least: 5, within: 60s, by: "{user}" }` — fail2ban's maxretry/findtime.
public struct LogCount: Sendable, Equatable {
    /// `at_least:` — how many matching lines fire the rule (≥ 1).
    public var threshold: Int
    /// `within:` — the window, from the first counted line.
    public var windowMilliseconds: Int
    /// `by:` — the key lines are counted by (a template over the pattern's named groups and `path`); nil:
    /// one count for the whole rule.
    public var key: MessageTemplate?

    public init(threshold: Int, windowMilliseconds: Int, key: MessageTemplate?) {
        self.threshold = threshold
        self.windowMilliseconds = windowMilliseconds
        self.key = key
    }
}

/// `from:` of a log rule.
public enum LogStart: String, Sendable, Equatable {
    /// Like `tail -F`: only lines appended after Vigil first starts.
    case end
    /// The whole existing file, then what is appended.
    case start
}

/// `sanitize:` — what to mask and where the masked text goes.
public struct SanitizeSpec: Sendable, Equatable {
    public var location: SourceLocation
    /// `detectors:` — default: all.
    public var detectors: Set<SecretDetector>
    /// `patterns:` — custom patterns whose whole match is masked.
    public var patterns: [LogPattern]
    /// `in_place:` (default true): mask in the log itself with same-length replacements (`pwrite` over
    /// bytes already written: size, inode and every writer's offset stay unchanged).
    public var inPlace: Bool
    /// `copy_to:` — a directory (absolute, resolved inside `--root`) that receives a redacted copy of each
    /// log under the same name.
    public var copyDirectory: String?

    public init(
        location: SourceLocation,
        detectors: Set<SecretDetector> = Set(SecretDetector.allCases),
        patterns: [LogPattern] = [],
        inPlace: Bool = true,
        copyDirectory: String? = nil
    ) {
        self.location = location
        self.detectors = detectors
        self.patterns = patterns
        self.inPlace = inPlace
        self.copyDirectory = copyDirectory
    }
}
