import Testing
import VigilDaemon
import VigilHarness
import VigilReceivers
import VigilRules
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The remote sinks on a real daemon (real inotify, real threads) against real receivers on 127.0.0.1: a
/// webhook receiver that can fail, and Debian's Alertmanager. What is checked: retries until the receiver
/// answers, the health alerts about it, signatures, the heartbeat, `min_severity`, refusals set aside, the
/// spool carried across a restart and its limit, and a resolution as Alertmanager itself reports it.
@Suite(.serialized) struct DeliveryTests {
    static let logRule = JobLog.rule

    static func webhookSink(_ url: String, extra: String = "") -> String {
        """
        - sink: hook
          type: webhook
          url: \(url)
          secret_file: /etc/vigil/hook.key
          retry: { initial: 20ms, max: 200ms }
        \(extra)

        """
    }

    static func prepare(_ tree: TempTree) {
        tree.makeDirectory("var/log")
        tree.write("var/log/jobs.log", "")
        tree.makeDirectory("etc/vigil")
        tree.write("etc/vigil/hook.key", "k3y\n", mode: 0o600)
    }

    static func appendJobs(_ fixture: DaemonFixture, _ jobs: Range<Int>) {
        let writer = AppendingWriter(fixture.tree.path("var/log/jobs.log"))
        for job in jobs { writer.write(JobLog.line(job)) }
    }

    /// Alerts in the fixture's JSON Lines file (the reference sink) until `count` of `kind` arrived.
    static func alerts(
        _ fixture: DaemonFixture,
        kind: String,
        count: Int,
        timeoutMilliseconds: Int = 10_000
    ) -> [SeenAlert] {
        var seen: [SeenAlert] = []
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while seen.count < count, Clock.monotonicNanoseconds() < deadline {
            guard let alert = fixture.next(timeoutMilliseconds: 200) else { continue }
            if alert.kind == kind { seen.append(alert) }
        }
        return seen
    }

    @Test func aFailingWebhookIsRetriedUntilItAnswersAndTheOutageIsAlertedAndResolved() throws {
        let receiver = WebhookReceiver()
        let directory = TempTree("hook-receiver")
        defer { directory.remove() }
        try receiver.start(directory: directory.root, failFirst: 4)
        defer { receiver.stop() }
        let fixture = try DaemonFixture(
            rules: Self.webhookSink(receiver.url + "/vigil") + Self.logRule,
            label: "hook-retry"
        ) {
            Self.prepare($0)
        }
        Self.appendJobs(fixture, 0..<5)
        let sent = Self.alerts(fixture, kind: "log.matched", count: 5)
        #expect(sent.count == 5)
        // The fifth request is the first to get 200; by then the failure was alerted, and its end too.
        let failing = Self.alerts(fixture, kind: "vigil.sink_failing", count: 2)
        #expect(failing.map(\.state) == ["firing", "resolved"], "\(failing)")
        #expect(failing.first?.message.contains("Alert sink 'hook' (webhook) is failing: ") == true, "\(failing)")
        #expect(receiver.waitForRequests(count: 4 + 5, timeoutSeconds: 10))
        let delivered = receiver.requests().filter { $0.status == 200 }
        #expect(Set(delivered.compactMap { $0.headers["x-vigil-id"] }) == Set(sent.map(\.id)))
        // The health alert went to the other sinks, not to the failing one.
        #expect(!receiver.requests().contains { $0.body.contains("vigil.sink_failing") })
        for request in delivered {
            let expected = "sha256=" + HMAC.hex(HMAC.sha256(key: Array("k3y".utf8), message: Array(request.body.utf8)))
            #expect(request.headers["x-vigil-signature"] == expected)
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.path == "/vigil")
        }
    }

    @Test func theHeartbeatIsRenewedOnItsPeriod() throws {
        let receiver = WebhookReceiver()
        let directory = TempTree("hook-heartbeat")
        defer { directory.remove() }
        try receiver.start(directory: directory.root)
        defer { receiver.stop() }
        let sink = Self.webhookSink(receiver.url, extra: "  heartbeat: 1s")
        let fixture = try DaemonFixture(rules: sink + Self.logRule, label: "heartbeat") { Self.prepare($0) }
        #expect(receiver.waitForRequests(count: 3, timeoutSeconds: 6))
        let beats = receiver.requests().map { SeenAlert(line: $0.body) }
        #expect(beats.allSatisfy { $0.kind == "vigil.watchdog" && $0.state == "firing" }, "\(beats)")
        #expect(Set(beats.map(\.id)).count == beats.count, "every renewal has its own id")
        #expect(Set(beats.map(\.fingerprint)).count == 1, "one alert, renewed")
        // Only the sink that asked for it gets the heartbeat.
        #expect(fixture.sync().allSatisfy { $0.kind != "vigil.watchdog" })
    }

    @Test func minSeverityKeepsLesserAlertsFromASink() throws {
        let receiver = WebhookReceiver()
        let directory = TempTree("hook-severity")
        defer { directory.remove() }
        try receiver.start(directory: directory.root)
        defer { receiver.stop() }
        let rules =
            Self.webhookSink(receiver.url, extra: "  min_severity: critical") + Self.logRule + """
                - rule: job-lost
                  severity: critical
                  log: /var/log/jobs.log
                  match: 'LOST job=(?<job>[0-9]+)'
                  from: start
                  message: "job {job} lost"

                """
        let fixture = try DaemonFixture(rules: rules, label: "hook-severity") { Self.prepare($0) }
        let writer = AppendingWriter(fixture.tree.path("var/log/jobs.log"))
        writer.write("ERROR job=1 failed\nLOST job=2\nERROR job=3 failed\n")
        #expect(Self.alerts(fixture, kind: "log.matched", count: 3).count == 3, "the file sink takes every severity")
        #expect(receiver.waitForRequests(count: 1, timeoutSeconds: 10))
        #expect(fixture.sync().isEmpty)
        let bodies = receiver.requests().map { SeenAlert(line: $0.body) }
        #expect(bodies.map(\.message) == ["job 2 lost"], "\(bodies)")
    }

    @Test func aRefusedAlertIsSetAsideAndReportedAndDeliveryGoesOn() throws {
        let receiver = WebhookReceiver()
        let directory = TempTree("hook-refused")
        defer { directory.remove() }
        try receiver.start(directory: directory.root)
        defer { receiver.stop() }
        let fixture = try DaemonFixture(
            rules: Self.webhookSink(receiver.url + "/status/404") + Self.logRule,
            label: "hook-404"
        ) {
            Self.prepare($0)
        }
        Self.appendJobs(fixture, 0..<2)
        let sent = Self.alerts(fixture, kind: "log.matched", count: 2)
        let refused = Self.alerts(fixture, kind: "vigil.alert_rejected", count: 2)
        #expect(refused.count == 2, "one report per refused batch: \(refused)")
        #expect(refused.first?.message.contains("HTTP 404") == true, "\(refused)")
        let kept = String(
            decoding: fileBytes(fixture.tree.path("var/lib/vigil/spool/hook/rejected.jsonl")) ?? [],
            as: UTF8.self
        )
        for alert in sent { #expect(kept.contains(alert.id), "refused alert \(alert.id) is kept in rejected.jsonl") }
    }

    @Test func alertsSpooledWhileTheReceiverIsDownAreDeliveredAfterARestart() throws {
        let failing = WebhookReceiver()
        let directory = TempTree("hook-restart")
        defer { directory.remove() }
        try failing.start(directory: directory.path("a").asDirectory(), failFirst: 1_000_000)
        // The two runs share a state directory (where the spools live), as two starts of one server do.
        let state = TempTree("spool-restart")
        defer { state.remove() }
        // First run: the receiver answers 500 to everything; the alerts wait in the spool when vigil stops.
        var ids: [String] = []
        do {
            let fixture = try DaemonFixture(
                rules: Self.webhookSink(failing.url) + Self.logRule,
                label: "spool-first",
                prepare: { Self.prepare($0) },
                configure: { $0.stateDirectory = state.root }
            )
            Self.appendJobs(fixture, 0..<20)
            ids = Self.alerts(fixture, kind: "log.matched", count: 20).map(\.id)
            #expect(failing.waitForRequests(count: 2, timeoutSeconds: 10))
        }
        failing.stop()
        let receiver = WebhookReceiver()
        try receiver.start(directory: directory.path("b").asDirectory())
        defer { receiver.stop() }
        // Second run, same state directory, the sink now pointing at a receiver that answers.
        let fixture = try DaemonFixture(
            rules: Self.webhookSink(receiver.url),
            label: "spool-second",
            prepare: { Self.prepare($0) },
            configure: { $0.stateDirectory = state.root }
        )
        #expect(receiver.waitForRequests(count: 20, timeoutSeconds: 15))
        let delivered = Set(receiver.requests().compactMap { $0.headers["x-vigil-id"] })
        #expect(delivered == Set(ids), "delivered after the restart: \(delivered.count) of \(ids.count)")
        #expect(fixture.sync().isEmpty)
    }

    @Test func aFullSpoolIsAlertedAndCounted() throws {
        let receiver = WebhookReceiver()
        let directory = TempTree("hook-full")
        defer { directory.remove() }
        try receiver.start(directory: directory.root)
        defer { receiver.stop() }
        let sink = Self.webhookSink(receiver.url + "/status/503", extra: "  spool: 64k")
        let fixture = try DaemonFixture(rules: sink + Self.logRule, label: "spool-full") { Self.prepare($0) }
        // About 400 bytes a record: 400 records need more than twice the 64 KiB limit.
        Self.appendJobs(fixture, 0..<400)
        var byKind: [String: [SeenAlert]] = [:]
        let deadline = Clock.monotonicNanoseconds() + 20_000_000_000
        while byKind["log.matched", default: []].count < 400 || byKind["vigil.spool_full"] == nil
            || byKind["vigil.spool_filling"] == nil, Clock.monotonicNanoseconds() < deadline
        {
            guard let alert = fixture.next(timeoutMilliseconds: 200) else { continue }
            byKind[alert.kind, default: []].append(alert)
        }
        #expect(byKind["log.matched"]?.count == 400, "the file sink has every alert")
        let filling = byKind["vigil.spool_filling"] ?? []
        #expect(filling.first?.state == "firing", "\(filling)")
        let full = byKind["vigil.spool_full"] ?? []
        #expect(full.first?.state == "firing", "\(full)")
        #expect(full.first?.message.contains("is full (spool: 64 KiB)") == true, "\(full)")
        #expect(full.count == 1, "one alert for the whole time it is full, not one per alert it misses")
    }

    @Test func aConditionThatResolvesShowsAsResolvedInAlertmanager() throws {
        let notifications = WebhookReceiver()
        let directory = TempTree("alertmanager")
        defer { directory.remove() }
        try notifications.start(directory: directory.path("hook").asDirectory())
        defer { notifications.stop() }
        let alertmanager = AlertmanagerServer()
        try alertmanager.start(directory: directory.path("am").asDirectory(), notify: notifications.url + "/am")
        defer { alertmanager.stop() }
        let rules = """
            - sink: am
              type: alertmanager
              url: \(alertmanager.url)
              labels: { env: test }
              retry: { initial: 50ms, max: 500ms }

            """ + sslRule
        let fixture = try DaemonFixture(rules: rules, label: "am-resolve") { tree in
            tree.makeDirectory("etc/analytics")
            tree.write("etc/analytics/upload-service.conf", uploadConfig("true"))
        }
        fixture.tree.write("etc/analytics/upload-service.conf", uploadConfig("false"))
        let firing = try #require(fixture.expect(rule: "ssl-off", state: "firing"))
        let listed = Self.waitForAlertmanager(alertmanager) { alerts in
            alerts.first { Self.label($0, "vigil_fingerprint") == firing.fingerprint }
        }
        let alert = try #require(listed, "Alertmanager never listed the firing alert")
        #expect(Self.label(alert, "alertname") == "ssl-off")
        #expect(Self.label(alert, "severity") == "critical")
        #expect(Self.label(alert, "env") == "test")
        #expect((alert["annotations"] as? [String: Any])?["summary"] as? String == firing.message)
        #expect((alert["status"] as? [String: Any])?["state"] as? String == "active")
        // Alertmanager notifies of the firing alert after its group_wait (it sends a resolution only for
        // alerts it notified as firing).
        #expect(Self.waitForNotification(notifications, status: "firing", fingerprint: firing.fingerprint))

        fixture.tree.write("etc/analytics/upload-service.conf", uploadConfig("true"))
        let resolved = try #require(fixture.expect(rule: "ssl-off", state: "resolved"))
        #expect(resolved.fingerprint == firing.fingerprint)
        // Alertmanager's API lists only unresolved alerts: the alert leaves the list...
        let gone = Self.waitForAlertmanager(alertmanager) { alerts in
            alerts.contains { Self.label($0, "vigil_fingerprint") == firing.fingerprint } ? nil : true
        }
        #expect(gone == true, "Alertmanager still lists the alert as active")
        // ...and Alertmanager's own notification says it is resolved.
        #expect(
            Self.waitForNotification(notifications, status: "resolved", fingerprint: firing.fingerprint),
            "Alertmanager sent no resolved notification: \(notifications.requests().map(\.body)); its log: \(alertmanager.log())"
        )
    }

    /// Waits (20 s at most) for a notification from Alertmanager with `status` that carries `fingerprint`.
    static func waitForNotification(_ receiver: WebhookReceiver, status: String, fingerprint: String) -> Bool {
        let deadline = Clock.monotonicNanoseconds() + 20_000_000_000
        while Clock.monotonicNanoseconds() < deadline {
            let seen = receiver.requests()
            if seen.contains(where: { $0.body.contains("\"status\":\"\(status)\"") && $0.body.contains(fingerprint) }) {
                return true
            }
            _ = receiver.waitForRequests(count: seen.count + 1, timeoutSeconds: 1)
        }
        return false
    }

    static func label(_ alert: [String: Any], _ name: String) -> String? {
        (alert["labels"] as? [String: Any])?[name] as? String
    }

    /// Polls Alertmanager's API (every 100 ms, up to 15 s) until `found` returns a value.
    static func waitForAlertmanager<T>(_ server: AlertmanagerServer, _ found: ([[String: Any]]) -> T?) -> T? {
        let deadline = Clock.monotonicNanoseconds() + 15_000_000_000
        while Clock.monotonicNanoseconds() < deadline {
            if let alerts = try? server.alerts(), let value = found(alerts) { return value }
            _ = poll(nil, 0, 100)
        }
        return nil
    }
}

extension String {
    /// Creates the directory (for receivers that need one of their own) and returns the path.
    fileprivate func asDirectory() -> String {
        mkdir(self, 0o755)
        return self
    }
}
