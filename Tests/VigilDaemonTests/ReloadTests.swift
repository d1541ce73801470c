import Testing
import VigilDaemon
import VigilHarness
import VigilRules
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Hot reload in-process: `Daemon.reload(to:)` with rule sets compiled like the daemon's, on a running
/// daemon with real inotify. What must hold: unchanged rules keep their state (a firing condition is not
/// sent again), added rules are judged at once, removed rules' conditions are resolved, changed rules are
/// judged again without a second firing, sink changes are refused, and no log line is lost or doubled.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ReloadTests {
    /// Rules as the fixture compiles them (with its cookie rule), for a reload.
    static func ruleSet(_ rules: String) throws -> RuleSet {
        let compilation = RuleCompiler.compile(sources: [(file: "test.yaml", text: DaemonFixture.cookieRule + rules)])
        guard let ruleSet = compilation.ruleSet else {
            throw HarnessError("rules did not compile: \(compilation.diagnostics.map(\.description))")
        }
        return ruleSet
    }

    static let debugRule = """
        - rule: debug-on
          severity: warning
          config: /etc/analytics/upload-service.conf
          when: { key: debug, is: true }
          message: "debug is on in {path}"

        """

    static func prepare(_ tree: TempTree) {
        tree.makeDirectory("etc/analytics")
        tree.write("etc/analytics/upload-service.conf", uploadConfig("false", extra: "debug = true"))
    }

    @Test func anAddedRuleIsJudgedAtOnceAndAnUnchangedOneIsNotFiredAgain() throws {
        let fixture = try DaemonFixture(rules: sslRule, label: "reload-add", prepare: Self.prepare)
        fixture.expect(rule: "ssl-off", state: "firing")
        let summary = try fixture.daemon.reload(to: Self.ruleSet(sslRule + Self.debugRule))
        #expect(summary.added == ["debug-on"] && summary.unchanged == 2 && summary.removed.isEmpty)
        let seen = fixture.sync()
        #expect(seen.map(\.rule) == ["debug-on"], "\(seen)")
        #expect(seen.first?.state == "firing")
        // Both rules still run: fixing the config resolves both, once each.
        fixture.tree.writeReplacing("etc/analytics/upload-service.conf", uploadConfig("true", extra: "debug = false"))
        let after = fixture.sync()
        #expect(
            Set(after.map(\.rule)) == ["ssl-off", "debug-on"] && after.allSatisfy { $0.state == "resolved" },
            "\(after)"
        )
    }

    @Test func aRemovedRulesConditionIsResolved() throws {
        let fixture = try DaemonFixture(rules: sslRule + Self.debugRule, label: "reload-remove", prepare: Self.prepare)
        let fired = fixture.sync()
        #expect(Set(fired.map(\.rule)) == ["ssl-off", "debug-on"])
        let summary = try fixture.daemon.reload(to: Self.ruleSet(sslRule))
        #expect(summary.removed == ["debug-on"])
        _ = fixture.daemon.runDueSweeps(now: Clock.monotonicNanoseconds())
        let alert = fixture.expect(rule: "debug-on", state: "resolved")
        #expect(alert?.line.contains("\"resolved_by\":\"rule_removed\"") == true, "\(String(describing: alert))")
        #expect(alert?.fingerprint == fired.first { $0.rule == "debug-on" }?.fingerprint)
        // The removed rule no longer runs.
        fixture.tree.writeReplacing("etc/analytics/upload-service.conf", uploadConfig("false", extra: "debug = false"))
        fixture.tree.writeReplacing("etc/analytics/upload-service.conf", uploadConfig("false", extra: "debug = true"))
        #expect(fixture.sync().isEmpty)
    }

    @Test func aChangedRuleStillTrueIsNotFiredAgainAndResolvesWithItsNewText() throws {
        let fixture = try DaemonFixture(rules: sslRule, label: "reload-change", prepare: Self.prepare)
        fixture.expect(rule: "ssl-off", state: "firing")
        let changed = sslRule.replacing("verify_ssl is {value} in {path}", with: "TLS off in {path}")
        let summary = try fixture.daemon.reload(to: Self.ruleSet(changed))
        #expect(summary.changed == ["ssl-off"])
        _ = fixture.daemon.runDueSweeps(now: Clock.monotonicNanoseconds())
        #expect(fixture.sync().isEmpty, "a condition still true must not be sent again")
        fixture.tree.writeReplacing("etc/analytics/upload-service.conf", uploadConfig("true"))
        let resolved = fixture.expect(rule: "ssl-off", state: "resolved")
        #expect(resolved?.message.contains("TLS off in") == true, "\(String(describing: resolved))")
    }

    @Test func aChangedRuleNoLongerTrueIsResolved() throws {
        let fixture = try DaemonFixture(rules: sslRule, label: "reload-untrue", prepare: Self.prepare)
        fixture.expect(rule: "ssl-off", state: "firing")
        let changed = sslRule.replacing("is: false", with: "is: maybe")
        _ = try fixture.daemon.reload(to: Self.ruleSet(changed))
        _ = fixture.daemon.runDueSweeps(now: Clock.monotonicNanoseconds())
        let alert = fixture.expect(rule: "ssl-off", state: "resolved")
        #expect(alert?.line.contains("\"resolved_by\":\"reload\"") == true, "\(String(describing: alert))")
    }

    @Test func aSinkChangeIsRefusedAndTheRunningRulesStay() throws {
        let fixture = try DaemonFixture(rules: sslRule, label: "reload-sink", prepare: Self.prepare)
        fixture.expect(rule: "ssl-off", state: "firing")
        let withSink =
            sslRule + """
                - sink: extra
                  type: jsonl
                  path: /extra.jsonl

                """
        #expect(throws: DaemonError.self) { try fixture.daemon.reload(to: Self.ruleSet(withSink)) }
        fixture.tree.writeReplacing("etc/analytics/upload-service.conf", uploadConfig("true"))
        fixture.expect(rule: "ssl-off", state: "resolved")
        #expect(access(fixture.tree.path("extra.jsonl"), F_OK) != 0)
    }

    @Test func logLinesAreAlertedExactlyOnceAcrossReloadsThatRebuildTheLogWatcher() throws {
        let logRule = """
            - rule: counted
              severity: info
              log: /var/log/app/app.log
              match: 'EVENT (?<n>\\d+)'
              message: "event {n}"

            """
        let fixture = try DaemonFixture(rules: logRule, label: "reload-log") { tree in
            tree.makeDirectory("var/log/app")
            tree.write("var/log/app/app.log", "")
        }
        let log = fixture.tree.path("var/log/app/app.log")
        let fd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC)
        #expect(fd >= 0)
        defer { close(fd) }
        var written = 0
        for round in 0..<10 {
            for _ in 0..<200 {
                written += 1
                let line = Array("EVENT \(written)\n".utf8)
                _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            }
            // Each round adds or drops a second log rule: the log watcher is rebuilt while lines arrive.
            let extra =
                round % 2 == 0
                ? "- rule: other-\(round)\n  severity: info\n  log: /var/log/app/app.log\n  match: 'NEVER\(round)'\n  message: x\n"
                : ""
            let summary = try fixture.daemon.reload(to: Self.ruleSet(logRule + extra))
            #expect(summary.rebuilt == ["vigil-log"], "\(summary)")
        }
        // The log watcher handles lines in order: once the marker's alert is in, every earlier line's is.
        let marker = Array("EVENT 0\n".utf8)
        _ = marker.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var seen: [Int: Int] = [:]
        while let alert = fixture.next(timeoutMilliseconds: 20_000) {
            guard alert.rule == "counted", let n = Int(alert.message.dropFirst("event ".count)) else { continue }
            if n == 0 { break }
            seen[n, default: 0] += 1
        }
        let missing = (1...written).filter { seen[$0] == nil }
        let doubled = seen.filter { $0.value > 1 }.map(\.key).sorted()
        #expect(missing.isEmpty, "missing: \(missing.prefix(20))")
        #expect(doubled.isEmpty, "doubled: \(doubled.prefix(20))")
    }

    /// The process watcher is rebuilt with the connector and the table handed over: a process that started
    /// before the reload is still known when it exits after it, and an `expect: running` rule that was
    /// firing is not sent again.
    @Test(
        .enabled(
            if: procConnectorAvailable,
            "needs the netlink proc connector (root, or CAP_NET_ADMIN before Linux 6.6)"
        )
    )
    func processesKnownBeforeAReloadAreKnownAfterIt() throws {
        let name = uniqueName("vqr")
        let missing = uniqueName("vqm")
        let rules = """
            - rule: died
              severity: error
              process: { name: \(name) }
              on: [exit]
              message: "{name} (pid {pid}) {status}"
            - rule: must-run
              severity: critical
              process: { name: \(missing) }
              expect: running
              message: "\(missing) is not running"

            """
        let fixture = try DaemonFixture(rules: rules, label: "reload-proc") { tree in
            try? StandIn.install("/bin/sleep", at: tree.path("usr/local/bin/\(name)"))
        }
        fixture.expect(rule: "must-run", state: "firing")
        let child = try ChildProcess(executable: fixture.tree.path("usr/local/bin/\(name)"), arguments: ["30"])
        defer { _ = child.terminate() }
        // Seen by the old watcher (its exec read), then the watcher is rebuilt by a new rule.
        _ = fixture.sync()
        let added =
            rules + """
                - rule: other
                  severity: info
                  process: { name: \(uniqueName("vqo")) }
                  on: [exec]
                  message: "never"

                """
        let summary = try fixture.daemon.reload(to: Self.ruleSet(added))
        #expect(summary.rebuilt == ["vigil-proc"], "\(summary)")
        _ = fixture.daemon.runDueSweeps(now: Clock.monotonicNanoseconds())
        child.signal(SIGKILL)
        let died = fixture.expect(rule: "died", state: "event")
        #expect(died?.message == "\(name) (pid \(child.pid)) killed by SIGKILL", "\(String(describing: died))")
        #expect(fixture.sync().allSatisfy { $0.rule != "must-run" }, "must-run was sent again")
    }

    /// A `count:` window of an unchanged log rule survives a reload that rebuilds the log watcher: two
    /// failures before it and one after make the three that fire the rule.
    @Test func countWindowsOfUnchangedLogRulesSurviveAReload() throws {
        let rules = """
            - rule: brute-force
              severity: error
              log: /var/log/app/auth.log
              match: 'FAILED from (?<ip>\\S+)'
              count: { at_least: 3, within: 60s, by: "{ip}" }
              message: "{count} failures from {ip}"
            - rule: mark
              severity: info
              log: /var/log/app/auth.log
              match: 'MARK (?<n>\\d+)'
              message: "mark {n}"

            """
        let fixture = try DaemonFixture(rules: rules, label: "reload-count") { tree in
            tree.makeDirectory("var/log/app")
            tree.write("var/log/app/auth.log", "")
        }
        let fd = open(fixture.tree.path("var/log/app/auth.log"), O_WRONLY | O_APPEND | O_CLOEXEC)
        defer { close(fd) }
        func append(_ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
        append("FAILED from 203.0.113.9\nFAILED from 203.0.113.9\nMARK 1\n")
        // The mark's alert comes after the two failures were counted (lines are handled in order).
        #expect(fixture.expect(rule: "mark", state: "event")?.message == "mark 1")
        let other = "- rule: other\n  severity: info\n  log: /var/log/app/auth.log\n  match: 'NEVER'\n  message: x\n"
        let summary = try fixture.daemon.reload(to: Self.ruleSet(rules + other))
        #expect(summary.rebuilt == ["vigil-log"], "\(summary)")
        append("FAILED from 203.0.113.9\n")
        let fired = fixture.expect(rule: "brute-force", state: "event")
        #expect(fired?.message == "3 failures from 203.0.113.9", "\(String(describing: fired))")
    }
}
