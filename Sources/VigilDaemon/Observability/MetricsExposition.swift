import Synchronization
import VigilCore
import VigilRules
import VigilSystem

extension Daemon {
    /// The whole scrape for `GET /metrics` and the node_exporter textfile, in Prometheus text format 0.0.4.
    /// Runs on the observability thread: it reads atomics and takes copies under the alert book's, the
    /// ledger's and the spools' locks; it never waits for the pipeline. Every family is documented in
    /// docs/metrics.md.
    public func metricsExposition() -> String {
        let c = counters
        let observed = self.observed
        let book = observed.worker.book.snapshot()
        let load = { (counter: borrowing Atomic<UInt64>) in counter.load(ordering: .relaxed) }
        var p = PrometheusText()

        p.family("vigil_build_info", .gauge, help: "Always 1; the version of the running vigil in a label.")
        p.sample("vigil_build_info", [("version", VigilVersion.string)], 1)
        p.family("vigil_start_time_seconds", .gauge, help: "When the daemon started, in seconds since the Unix epoch.")
        p.sample("vigil_start_time_seconds", [], Int(c.startTimeSeconds))

        p.family(
            "vigil_events_total",
            .counter,
            help:
                "Kernel events and lines read, by source (file: inotify records, process: proc connector events, log: log lines)."
        )
        p.sample("vigil_events_total", [("source", "file")], load(c.fileEvents))
        p.sample("vigil_events_total", [("source", "process")], load(c.processEvents))
        p.sample("vigil_events_total", [("source", "log")], load(c.logLines))

        p.family(
            "vigil_events_lost_total",
            .counter,
            help: "Times the kernel dropped events: inotify queue overflows (IN_Q_OVERFLOW) and proc connector ENOBUFS."
        )
        p.sample("vigil_events_lost_total", [("source", "inotify")], load(c.overflows))
        p.sample("vigil_events_lost_total", [("source", "proc_connector")], load(c.processEventsLost))

        p.family(
            "vigil_rescans_total",
            .counter,
            help:
                "Full rescans run to recover from lost events (files, mode and owner trees) and process table resyncs."
        )
        p.sample("vigil_rescans_total", [("source", "files")], load(c.overflows))
        p.sample("vigil_rescans_total", [("source", "permissions")], load(c.permissionRescans))
        p.sample("vigil_rescans_total", [("source", "processes")], load(c.processEventsLost))

        p.family("vigil_decode_errors_total", .counter, help: "inotify buffers that could not be decoded.")
        p.sample("vigil_decode_errors_total", [], load(c.decodeErrors))

        p.family("vigil_rules", .gauge, help: "Rules loaded and enabled, by kind.")
        var kinds: [String: Int] = [:]
        for rule in observed.ruleSet.rules where rule.enabled { kinds[Self.kindName(rule.subject), default: 0] += 1 }
        for (kind, count) in kinds.sorted(by: { $0.key < $1.key }) { p.sample("vigil_rules", [("kind", kind)], count) }

        let tallies = book.rules.sorted { $0.key < $1.key }
        p.family("vigil_rule_hits_total", .counter, help: "Alerts sent per rule (firing, resolved and one-off events).")
        for (rule, tally) in tallies { p.sample("vigil_rule_hits_total", [("rule", rule)], tally.hits) }
        p.family(
            "vigil_rule_last_fire_timestamp_seconds",
            .gauge,
            help: "When each rule's last alert's event happened, in seconds since the Unix epoch."
        )
        for (rule, tally) in tallies {
            p.sample("vigil_rule_last_fire_timestamp_seconds", [("rule", rule)], tally.lastFireSeconds)
        }

        p.family("vigil_alerts_total", .counter, help: "Alerts sent, by severity and state (firing, resolved, event).")
        for (s, severity) in AlertBook.severities.enumerated() {
            for (t, state) in AlertBook.states.enumerated() {
                p.sample(
                    "vigil_alerts_total",
                    [("severity", severity), ("state", state.rawValue)],
                    book.count(severity: s, state: t)
                )
            }
        }

        p.family("vigil_firing_conditions", .gauge, help: "Conditions of state rules firing now.")
        p.sample("vigil_firing_conditions", [], observed.worker.ledger.conditions().count)

        p.family(
            "vigil_action_latency_seconds",
            .histogram,
            help: "Time from reading a kernel event to the alert it caused being written to the local sinks."
        )
        p.histogram("vigil_action_latency_seconds", [], c.alertLatency.snapshot())

        p.family(
            "vigil_local_sink_failures_total",
            .counter,
            help: "Writes to the local alert files (JSON Lines, stdout) that failed and were kept for retry."
        )
        p.sample("vigil_local_sink_failures_total", [], load(c.sinkFailures))

        p.family("vigil_exec_started_total", .counter, help: "Programs of exec: actions started (or attempted).")
        p.sample("vigil_exec_started_total", [], load(c.execsStarted))
        p.family(
            "vigil_exec_failed_total",
            .counter,
            help: "Programs of exec: actions that could not start, exited non-zero, died of a signal or timed out."
        )
        p.sample("vigil_exec_failed_total", [], load(c.execsFailed))
        p.family(
            "vigil_exec_dropped_total",
            .counter,
            help: "Requests of exec: actions dropped because 16 programs ran and 256 waited."
        )
        p.sample("vigil_exec_dropped_total", [], load(c.execsDropped))

        let sinks = observed.sinks
        p.family(
            "vigil_sink_delivery_latency_seconds",
            .histogram,
            help: "Time from an alert's event to its remote sink's receiver accepting it (time spent in the spool)."
        )
        for sink in sinks {
            p.histogram("vigil_sink_delivery_latency_seconds", [("sink", sink.name)], sink.deliveryLatency.snapshot())
        }
        p.family("vigil_sink_delivered_total", .counter, help: "Alerts a remote sink's receiver accepted.")
        for sink in sinks { p.sample("vigil_sink_delivered_total", [("sink", sink.name)], load(sink.delivered)) }
        p.family(
            "vigil_sink_rejected_total",
            .counter,
            help: "Alerts a remote sink's receiver refused for good (set aside in rejected.jsonl)."
        )
        for sink in sinks { p.sample("vigil_sink_rejected_total", [("sink", sink.name)], load(sink.rejected)) }
        p.family(
            "vigil_sink_failures_total",
            .counter,
            help: "Delivery attempts to a remote sink that failed (retried with backoff)."
        )
        for sink in sinks { p.sample("vigil_sink_failures_total", [("sink", sink.name)], load(sink.failedAttempts)) }
        p.family(
            "vigil_sink_not_spooled_total",
            .counter,
            help: "Alerts a remote sink's spool could not take (full or a write error)."
        )
        for sink in sinks { p.sample("vigil_sink_not_spooled_total", [("sink", sink.name)], load(sink.notSpooled)) }
        let depths = sinks.map { ($0.name, $0.spool.depth) }
        p.family("vigil_spool_records", .gauge, help: "Alerts waiting in a remote sink's spool.")
        for (name, depth) in depths { p.sample("vigil_spool_records", [("sink", name)], depth.records) }
        p.family("vigil_spool_bytes", .gauge, help: "Bytes of the alerts waiting in a remote sink's spool.")
        for (name, depth) in depths { p.sample("vigil_spool_bytes", [("sink", name)], depth.bytes) }

        p.family(
            "vigil_inotify_watches",
            .gauge,
            help:
                "inotify watches in use, by user (files: directories holding watched files; permissions: mode and owner trees)."
        )
        p.sample("vigil_inotify_watches", [("watcher", "files")], load(c.watchDescriptors))
        p.sample("vigil_inotify_watches", [("watcher", "permissions")], load(c.permissionWatches))
        if let limit = HostFeatures.inotifyLimits().maxUserWatches {
            p.family("vigil_inotify_watches_limit", .gauge, help: "The kernel's fs.inotify.max_user_watches.")
            p.sample("vigil_inotify_watches_limit", [], limit)
        }
        p.family("vigil_watched_files", .gauge, help: "Files the rules name, and glob matches found so far.")
        p.sample("vigil_watched_files", [], load(c.watchedFiles))

        p.family("vigil_reloads_total", .counter, help: "Rule reloads, by result (failed: the old rules kept running).")
        p.sample("vigil_reloads_total", [("result", "ok")], load(c.reloads))
        p.sample("vigil_reloads_total", [("result", "failed")], load(c.reloadFailures))
        return p.text
    }
}
