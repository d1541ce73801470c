import Synchronization
import VigilCore
import VigilRules
import VigilSystem

/// What `GET /status` answers and `vigil status` prints: the daemon's state in one consistent-enough copy
/// (each part is read under its own lock or from atomics; nothing waits for the pipeline).
public struct DaemonStatus: Sendable {
    /// One watcher thread.
    public struct Source: Sendable {
        /// `files`, `processes`, `logs`, `rotation`, `permissions`, `escalation`, `system`.
        public var name: String
        /// Its thread runs (it has rules to watch).
        public var running: Bool
        public var rules: Int
        /// What it counted: events read, lines read, checks made (by source).
        public var events: UInt64
        /// inotify watches it holds (nil where it keeps no count).
        public var watches: UInt64?
    }

    /// One loaded rule.
    public struct RuleEntry: Sendable {
        public var id: String
        /// `config`, `file`, `process`, `log`, `permissions`, `rotate`, `pressure`, `disk`, `listening`, …
        public var kind: String
        public var severity: String
        /// `file:line:column` of its definition.
        public var location: String
        public var enabled: Bool
        public var hits: UInt64
        /// Wall-clock seconds of its last alert; nil when it has not fired since the start.
        public var lastFireSeconds: Double?
    }

    /// A condition firing now.
    public struct Condition: Sendable {
        public var fingerprint: String
        public var rule: String
        public var severity: String
        public var message: String
        public var sinceSeconds: Int64
    }

    /// One of the last alerts (no labels: they may hold what a rule captured).
    public struct RecentAlert: Sendable {
        public var timeSeconds: Double
        public var rule: String
        public var severity: String
        public var state: String
        public var message: String
    }

    /// One remote sink's delivery.
    public struct Sink: Sendable {
        public var name: String
        public var kind: String
        public var delivered: UInt64
        public var refused: UInt64
        public var failedAttempts: UInt64
        public var notSpooled: UInt64
        public var spoolRecords: Int
        public var spoolBytes: Int64
    }

    public var version: String
    public var startTimeSeconds: Int64
    public var uptimeSeconds: Double
    public var reloads: UInt64
    public var reloadFailures: UInt64
    /// Wall-clock seconds of the last reload attempt; nil when there was none.
    public var lastReloadSeconds: Int64?
    public var lastReloadSucceeded: Bool
    public var sources: [Source]
    public var directoryWatches: UInt64
    public var watchedFiles: UInt64
    public var permissionWatches: UInt64
    /// `fs.inotify.max_user_watches`; nil where unreadable.
    public var inotifyWatchLimit: Int?
    /// Sorted by last fire (most recent first), then by id.
    public var rules: [RuleEntry]
    public var firing: [Condition]
    /// Oldest first.
    public var recentAlerts: [RecentAlert]
    public var alerts: UInt64
    /// `IN_Q_OVERFLOW` seen (each followed by a rescan), proc connector losses (each resynchronised),
    /// rescans of the mode and owner trees, inotify buffers that did not decode.
    public var inotifyOverflows: UInt64
    public var processEventsLost: UInt64
    public var permissionRescans: UInt64
    public var decodeErrors: UInt64
    public var sinks: [Sink]

    /// The report as one JSON object (UTF-8, no trailing newline). Keys are snake_case and stable: scripts
    /// read `vigil status --json`.
    public func json() -> [UInt8] {
        var w = JSONWriter()
        w.beginObject()
        w.key("version")
        w.string(version)
        w.key("start_time_seconds")
        w.integer(startTimeSeconds)
        w.key("uptime_seconds")
        w.integer(Int64(uptimeSeconds))
        w.key("reloads")
        w.integer(Int64(clamping: reloads))
        w.key("reload_failures")
        w.integer(Int64(clamping: reloadFailures))
        w.key("last_reload_seconds")
        if let lastReloadSeconds { w.integer(lastReloadSeconds) } else { w.null() }
        w.key("last_reload_ok")
        w.bool(lastReloadSucceeded)
        w.key("sources")
        w.beginArray()
        for source in sources {
            w.beginObject()
            w.key("name")
            w.string(source.name)
            w.key("running")
            w.bool(source.running)
            w.key("rules")
            w.integer(Int64(source.rules))
            w.key("events")
            w.integer(Int64(clamping: source.events))
            w.key("watches")
            if let watches = source.watches { w.integer(Int64(clamping: watches)) } else { w.null() }
            w.endObject()
        }
        w.endArray()
        w.key("watches")
        w.beginObject()
        w.key("directory_watches")
        w.integer(Int64(clamping: directoryWatches))
        w.key("watched_files")
        w.integer(Int64(clamping: watchedFiles))
        w.key("permission_watches")
        w.integer(Int64(clamping: permissionWatches))
        w.key("inotify_limit")
        if let inotifyWatchLimit { w.integer(Int64(inotifyWatchLimit)) } else { w.null() }
        w.endObject()
        w.key("rules")
        w.beginArray()
        for rule in rules {
            w.beginObject()
            w.key("id")
            w.string(rule.id)
            w.key("kind")
            w.string(rule.kind)
            w.key("severity")
            w.string(rule.severity)
            w.key("location")
            w.string(rule.location)
            w.key("enabled")
            w.bool(rule.enabled)
            w.key("hits")
            w.integer(Int64(clamping: rule.hits))
            w.key("last_fire_seconds")
            if let last = rule.lastFireSeconds { w.integer(Int64(last)) } else { w.null() }
            w.endObject()
        }
        w.endArray()
        w.key("firing")
        w.beginArray()
        for condition in firing {
            w.beginObject()
            w.key("fingerprint")
            w.string(condition.fingerprint)
            w.key("rule")
            w.string(condition.rule)
            w.key("severity")
            w.string(condition.severity)
            w.key("message")
            w.string(condition.message)
            w.key("since_seconds")
            w.integer(condition.sinceSeconds)
            w.endObject()
        }
        w.endArray()
        w.key("recent_alerts")
        w.beginArray()
        for alert in recentAlerts {
            w.beginObject()
            w.key("time_seconds")
            w.integer(Int64(alert.timeSeconds))
            w.key("rule")
            w.string(alert.rule)
            w.key("severity")
            w.string(alert.severity)
            w.key("state")
            w.string(alert.state)
            w.key("message")
            w.string(alert.message)
            w.endObject()
        }
        w.endArray()
        w.key("alerts")
        w.integer(Int64(clamping: alerts))
        w.key("losses")
        w.beginObject()
        w.key("inotify_overflows")
        w.integer(Int64(clamping: inotifyOverflows))
        w.key("process_events_lost")
        w.integer(Int64(clamping: processEventsLost))
        w.key("permission_rescans")
        w.integer(Int64(clamping: permissionRescans))
        w.key("decode_errors")
        w.integer(Int64(clamping: decodeErrors))
        w.endObject()
        w.key("sinks")
        w.beginArray()
        for sink in sinks {
            w.beginObject()
            w.key("name")
            w.string(sink.name)
            w.key("kind")
            w.string(sink.kind)
            w.key("delivered")
            w.integer(Int64(clamping: sink.delivered))
            w.key("refused")
            w.integer(Int64(clamping: sink.refused))
            w.key("failed_attempts")
            w.integer(Int64(clamping: sink.failedAttempts))
            w.key("not_spooled")
            w.integer(Int64(clamping: sink.notSpooled))
            w.key("spool_records")
            w.integer(Int64(sink.spoolRecords))
            w.key("spool_bytes")
            w.integer(sink.spoolBytes)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.bytes
    }
}

/// What the observability side reads of a daemon's private parts; see `Daemon.observed`.
struct DaemonObservables {
    let worker: ActionWorker
    let sinks: [DeliverySink]
    let ruleSet: RuleSet
}

extension Daemon {
    /// The alert book every outlet notes into.
    var alertBook: AlertBook { observed.worker.book }

    /// The conditions firing now.
    var firingLedger: FiringLedger { observed.worker.ledger }

    /// The remote sinks, for their spools and delivery histograms.
    var remoteSinks: [DeliverySink] { observed.sinks }

    /// The daemon's state for `/status` and `vigil status`. Called on the observability thread: it reads
    /// atomics and copies the alert book and the ledger under their locks, never waits for the pipeline.
    public func statusReport() -> DaemonStatus {
        let observed = self.observed
        let c = counters
        let book = observed.worker.book.snapshot()
        let load = { (counter: borrowing Atomic<UInt64>) in counter.load(ordering: .relaxed) }
        let fileRules = observed.ruleSet.rules.filter { rule in
            guard rule.enabled else { return false }
            switch rule.subject {
            case .config, .file: return true
            default: return false
            }
        }.count
        let sources = [
            DaemonStatus.Source(
                name: "files",
                running: true,
                rules: fileRules,
                events: load(c.fileEvents),
                watches: load(c.watchDescriptors)
            ),
            DaemonStatus.Source(
                name: "processes",
                running: processRuleCount > 0,
                rules: processRuleCount,
                events: load(c.processEvents),
                watches: nil
            ),
            DaemonStatus.Source(
                name: "logs",
                running: logRuleCount > 0,
                rules: logRuleCount,
                events: load(c.logLines),
                watches: nil
            ),
            DaemonStatus.Source(
                name: "rotation",
                running: rotateRuleCount > 0,
                rules: rotateRuleCount,
                events: load(c.logRotations),
                watches: nil
            ),
            DaemonStatus.Source(
                name: "permissions",
                running: permissionRuleCount > 0,
                rules: permissionRuleCount,
                events: load(c.permissionChecks),
                watches: load(c.permissionWatches)
            ),
            DaemonStatus.Source(
                name: "escalation",
                running: escalationRuleCount > 0,
                rules: escalationRuleCount,
                events: 0,
                watches: nil
            ),
            DaemonStatus.Source(
                name: "system",
                running: systemRuleCount > 0,
                rules: systemRuleCount,
                events: 0,
                watches: nil
            ),
        ]
        var rules: [DaemonStatus.RuleEntry] = observed.ruleSet.rules.map { rule in
            let tally = book.rules[rule.id]
            return DaemonStatus.RuleEntry(
                id: rule.id,
                kind: Self.kindName(rule.subject),
                severity: rule.severity.rawValue,
                location: rule.location.description,
                enabled: rule.enabled,
                hits: tally?.hits ?? 0,
                lastFireSeconds: tally?.lastFireSeconds
            )
        }
        // Vigil's own alerts (`vigil.events_lost`, `vigil.sink_failing` …) have no rule in the files.
        let known = Set(rules.map(\.id))
        for (id, tally) in book.rules where !known.contains(id) {
            rules.append(
                DaemonStatus.RuleEntry(
                    id: id,
                    kind: "internal",
                    severity: "",
                    location: "",
                    enabled: true,
                    hits: tally.hits,
                    lastFireSeconds: tally.lastFireSeconds
                )
            )
        }
        rules.sort { a, b in
            let x = a.lastFireSeconds ?? -1
            let y = b.lastFireSeconds ?? -1
            return x != y ? x > y : a.id < b.id
        }
        let lastReload = c.lastReloadSeconds.load(ordering: .relaxed)
        return DaemonStatus(
            version: VigilVersion.string,
            startTimeSeconds: c.startTimeSeconds,
            uptimeSeconds: Double(Clock.monotonicNanoseconds() &- c.startMonotonicNanoseconds) / 1e9,
            reloads: load(c.reloads),
            reloadFailures: load(c.reloadFailures),
            lastReloadSeconds: lastReload == 0 ? nil : lastReload,
            lastReloadSucceeded: c.lastReloadSucceeded.load(ordering: .relaxed),
            sources: sources,
            directoryWatches: load(c.watchDescriptors),
            watchedFiles: load(c.watchedFiles),
            permissionWatches: load(c.permissionWatches),
            inotifyWatchLimit: HostFeatures.inotifyLimits().maxUserWatches,
            rules: rules,
            firing: observed.worker.ledger.conditions().map {
                DaemonStatus.Condition(
                    fingerprint: $0.fingerprint,
                    rule: $0.rule,
                    severity: $0.severity,
                    message: $0.message,
                    sinceSeconds: $0.sinceSeconds
                )
            },
            recentAlerts: book.recent.map {
                DaemonStatus.RecentAlert(
                    timeSeconds: $0.timeSeconds,
                    rule: $0.rule,
                    severity: $0.severity,
                    state: $0.state.rawValue,
                    message: $0.message
                )
            },
            alerts: load(c.alerts),
            inotifyOverflows: load(c.overflows),
            processEventsLost: load(c.processEventsLost),
            permissionRescans: load(c.permissionRescans),
            decodeErrors: load(c.decodeErrors),
            sinks: observed.sinks.map { sink in
                let depth = sink.spool.depth
                return DaemonStatus.Sink(
                    name: sink.name,
                    kind: sink.kindName,
                    delivered: sink.delivered.load(ordering: .relaxed),
                    refused: sink.rejected.load(ordering: .relaxed),
                    failedAttempts: sink.failedAttempts.load(ordering: .relaxed),
                    notSpooled: sink.notSpooled.load(ordering: .relaxed),
                    spoolRecords: depth.records,
                    spoolBytes: depth.bytes
                )
            }
        )
    }

    /// The rule kind as its YAML key names it.
    static func kindName(_ subject: Subject) -> String {
        switch subject {
        case .config: "config"
        case .file: "file"
        case .process: "process"
        case .log: "log"
        case .permissions: "permissions"
        case .rotate: "rotate"
        case .pressure: "pressure"
        case .disk: "disk"
        case .listening: "listening"
        case .escalation: "escalation"
        }
    }
}
