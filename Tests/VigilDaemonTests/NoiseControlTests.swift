import Testing
import VigilDaemon
import VigilHarness
import VigilRules
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Dedup windows, their summaries, reminders and the JSON Lines sink following its file through a rotation,
/// on a real daemon: real inotify, a real log written by the test, alerts read back from the file.
@Suite(.serialized) struct NoiseControlTests {
    static func burstRule(dedup: String) -> String {
        """
        - rule: disk-full
          severity: error
          log: /var/log/app.log
          match: 'ERROR disk full'
          from: start
          message: "disk full on {path}"
        \(dedup)

        """
    }

    /// Appends `count` identical lines in one write each, as a busy writer would, within well under a second.
    static func burst(_ fixture: DaemonFixture, count: Int) {
        let writer = AppendingWriter(fixture.tree.path("var/log/app.log"))
        for _ in 0..<count { writer.write("2026-11-27 10:00:00 ERROR disk full\n") }
    }

    @Test func athousandIdenticalEventsGiveOneAlertAndOneSummaryOf999() throws {
        let fixture = try DaemonFixture(
            rules: Self.burstRule(dedup: "  dedup: { window: 2s }"),
            label: "dedup"
        ) { tree in
            tree.makeDirectory("var/log")
            tree.write("var/log/app.log", "")
        }
        let started = Clock.monotonicNanoseconds()
        Self.burst(fixture, count: 1000)
        let first = try #require(fixture.logAlerts(1).first)
        #expect(first.kind == "log.matched" && first.message == "disk full on /var/log/app.log", "\(first)")
        // The window closes 2 s after the first alert; the summary says what it held back.
        let summary = try #require(fixture.logAlerts(1, timeoutMilliseconds: 10_000).first)
        let elapsed = (Clock.monotonicNanoseconds() - started) / 1_000_000
        #expect(summary.kind == "vigil.summary" && summary.rule == "disk-full", "\(summary)")
        #expect(JSONField.label(summary.line, "count") == "999", "\(summary)")
        #expect(summary.message.hasPrefix("999 more alerts of rule 'disk-full' held back in the last 2 s"))
        #expect(summary.message.hasSuffix("the last: disk full on /var/log/app.log"), "\(summary)")
        #expect(elapsed >= 1900, "the summary came \(elapsed) ms after the burst, before the window closed")
        #expect(fixture.sync().isEmpty)
    }

    @Test func withoutDedupEveryEventIsAnAlert() throws {
        let fixture = try DaemonFixture(rules: Self.burstRule(dedup: ""), label: "no-dedup") { tree in
            tree.makeDirectory("var/log")
            tree.write("var/log/app.log", "")
        }
        Self.burst(fixture, count: 1000)
        let alerts = fixture.logAlerts(1000)
        #expect(alerts.count == 1000)
        #expect(Set(alerts.map(\.id)).count == 1000, "every event has its own id")
        #expect(alerts.allSatisfy { $0.kind == "log.matched" })
        #expect(fixture.sync().isEmpty)
    }

    @Test func aKeyKeepsDistinctValuesApartAndMaxLetsThatManyThrough() throws {
        let rules = """
            - rule: failed-login
              severity: warning
              log: /var/log/auth.log
              match: 'Failed password for (?<user>[a-z]+)'
              from: start
              message: "failed login for {user}"
              dedup: { key: "{user}", window: 2s, max: 2 }

            """
        let fixture = try DaemonFixture(rules: rules, label: "dedup-key") { tree in
            tree.makeDirectory("var/log")
            tree.write("var/log/auth.log", "")
        }
        let writer = AppendingWriter(fixture.tree.path("var/log/auth.log"))
        for _ in 0..<5 { writer.write("sshd: Failed password for alice\n") }
        for _ in 0..<3 { writer.write("sshd: Failed password for bob\n") }
        let alerts = fixture.logAlerts(6, timeoutMilliseconds: 10_000)
        let passed = alerts.filter { $0.kind == "log.matched" }
        let summaries = alerts.filter { $0.kind == "vigil.summary" }
        #expect(passed.filter { $0.message == "failed login for alice" }.count == 2, "\(alerts)")
        #expect(passed.filter { $0.message == "failed login for bob" }.count == 2, "\(alerts)")
        let counts = Dictionary(
            uniqueKeysWithValues: summaries.map {
                (JSONField.label($0.line, "dedup_key") ?? "", JSONField.label($0.line, "count") ?? "")
            }
        )
        #expect(counts == ["alice": "3", "bob": "1"], "\(summaries)")
    }

    @Test func aConditionThatStaysFiringIsRemindedUntilItResolves() throws {
        let rules = """
            - rule: ssl-off
              severity: critical
              config: /etc/analytics/upload-service.conf
              when: { key: verify_ssl, is: false }
              message: "verify_ssl is {value} in {path}"
              remind: 1s

            """
        let fixture = try DaemonFixture(rules: rules, label: "remind") { tree in
            tree.makeDirectory("etc/analytics")
            tree.write("etc/analytics/upload-service.conf", uploadConfig("true"))
        }
        fixture.tree.write("etc/analytics/upload-service.conf", uploadConfig("false"))
        let firing = try #require(fixture.expect(rule: "ssl-off", state: "firing"))
        let reminder = try #require(fixture.expect(rule: "ssl-off", state: "firing"))
        #expect(reminder.message.hasPrefix("Still firing since "), "\(reminder)")
        #expect(reminder.message.hasSuffix("(reminder 1): verify_ssl is false in /etc/analytics/upload-service.conf"))
        #expect(reminder.fingerprint == firing.fingerprint && reminder.id != firing.id)
        #expect(JSONField.label(reminder.line, "reminder") == "1")
        fixture.tree.write("etc/analytics/upload-service.conf", uploadConfig("true"))
        // The reminder that was due may already be on its way; after the resolution none follows.
        var resolved: SeenAlert?
        while let alert = fixture.next(), alert.rule == "ssl-off" {
            if alert.state == "resolved" {
                resolved = alert
                break
            }
        }
        #expect(resolved?.fingerprint == firing.fingerprint)
        let after = fixture.next(timeoutMilliseconds: 2500)
        #expect(
            after == nil || after?.rule == "cookie",
            "a reminder came after the resolution: \(String(describing: after))"
        )
    }

    @Test func theJSONLinesSinkFollowsItsFileThroughARotation() throws {
        let rules = """
            - sink: alerts-file
              type: jsonl
              path: /var/log/vigil/alerts.jsonl

            """ + Self.burstRule(dedup: "")
        let fixture = try DaemonFixture(rules: rules, label: "sink-rotate") { tree in
            tree.makeDirectory("var/log")
            tree.write("var/log/app.log", "")
        }
        let sink = fixture.tree.path("var/log/vigil/alerts.jsonl")
        Self.burst(fixture, count: 1)
        #expect(fixture.logAlerts(1).count == 1)
        // logrotate without copytruncate: rename, then the writers must start a new file under the name. The
        // rename is noticed asynchronously (inotify, on the action worker), so alerts written meanwhile still
        // land in the renamed file, as with any writer logrotate renames under: nothing is lost either way.
        #expect(rename(sink, sink + ".1") == 0)
        let count = { (text: String) in
            text.split(separator: "\n").filter { $0.contains("\"rule\":\"disk-full\"") }.count
        }
        var written = 1
        let deadline = Clock.monotonicNanoseconds() + 5_000_000_000
        var fresh = ""
        while Clock.monotonicNanoseconds() < deadline {
            Self.burst(fixture, count: 1)
            written += 1
            #expect(fixture.logAlerts(1).count == 1)
            fresh = String(decoding: fileBytes(sink) ?? [], as: UTF8.self)
            if count(fresh) > 0 { break }
        }
        let old = String(decoding: fileBytes(sink + ".1") ?? [], as: UTF8.self)
        #expect(count(fresh) == 1, "the alert after the reopen is in the new file: \(fresh)")
        #expect(count(old) + count(fresh) == written, "every alert is in one of the two files, once")
    }
}
