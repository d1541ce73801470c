import Synchronization
import Testing
import VigilDaemon
import VigilHarness
import VigilRules
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The `exec:` action with a real daemon and real child processes: the program gets the alert in its
/// environment (secrets masked), failures and timeouts are alerted, untrusted programs are refused when the
/// rules load, and a dry run spawns nothing.
@Suite(.serialized) struct ExecActionTests {
    /// A `command:` that writes the program's whole environment to `out` (through a temporary name and a
    /// rename, so the waiting test never reads half of it). `out` is the program's `$0`, never shell text.
    static func dumpEnvironment(to out: String) -> String {
        "[/bin/sh, -c, 'env > \"$0.tmp\" && mv \"$0.tmp\" \"$0\"', \(out)]"
    }

    /// The `KEY=value` lines of an environment dump.
    static func variables(_ bytes: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            result[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return result
    }

    @Test func aConfigRuleWithOnlyExecRunsItsProgramWithTheAlertInItsEnvironment() throws {
        let tree = TempTree("exec-out")
        defer { tree.remove() }
        let out = tree.path("env")
        let rules = """
            - rule: ssl-off
              severity: critical
              config: /etc/analytics/upload-service.conf
              when: { key: verify_ssl, is: false }
              message: "verify_ssl is {value} in {path}"
              then:
                - exec: { command: \(Self.dumpEnvironment(to: out)), timeout: 10s }

            """
        let fixture = try DaemonFixture(rules: rules, label: "exec-config") { tree in
            tree.makeDirectory("etc/analytics")
            tree.write("etc/analytics/upload-service.conf", uploadConfig("true"))
        }
        fixture.tree.write("etc/analytics/upload-service.conf", uploadConfig("false"))
        let dump = try #require(waitForFile(out), "the exec program never wrote \(out); log: \(fixture.logs.messages)")
        let env = Self.variables(dump)
        #expect(env["VIGIL_RULE"] == "ssl-off")
        #expect(env["VIGIL_STATE"] == "firing")
        #expect(env["VIGIL_SEVERITY"] == "critical")
        #expect(env["VIGIL_PATH"] == "/etc/analytics/upload-service.conf")
        #expect(env["VIGIL_FILE"] == "/etc/analytics/upload-service.conf")
        #expect(env["VIGIL_MESSAGE"] == "verify_ssl is false in /etc/analytics/upload-service.conf")
        #expect(env["VIGIL_ID"]?.utf8.count == 32)
        #expect(env["VIGIL_TIME"]?.hasSuffix("Z") == true && env["VIGIL_TIME"]?.contains("T") == true)
        #expect(env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        // The rule has no alert: nothing of ssl-off reaches the sinks, only the program ran.
        #expect(fixture.sync().filter { $0.rule == "ssl-off" }.isEmpty)
        #expect(fixture.daemon.counters.execsStarted.load(ordering: .relaxed) == 1)
        #expect(fixture.daemon.counters.execsFailed.load(ordering: .relaxed) == 0)
    }

    @Test func aLogRuleExecSeesTheLineOnlyMasked() throws {
        let tree = TempTree("exec-out")
        defer { tree.remove() }
        let out = tree.path("env")
        let rules = """
            - rule: db-refused
              severity: warning
              log: /var/log/analytics/*.log
              match: 'connection refused'
              message: "{line}"
              then:
                - alert
                - exec: { command: \(Self.dumpEnvironment(to: out)) }

            """
        let fixture = try DaemonFixture(rules: rules, label: "exec-log") { tree in
            tree.makeDirectory("var/log/analytics")
            tree.write("var/log/analytics/upload.log", "")
        }
        let writer = AppendingWriter(fixture.tree.path("var/log/analytics/upload.log"))
        writer.write("2025-04-13 07:20:01 UPLOAD ERROR [DBPool] connection refused: password=Hunter2! user=analytics\n")
        let alert = fixture.expect(rule: "db-refused", state: "event")
        #expect(alert?.message.contains("Hunter2") == false)
        let dump = try #require(waitForFile(out), "the exec program never wrote \(out); log: \(fixture.logs.messages)")
        let text = String(decoding: dump, as: UTF8.self)
        #expect(!text.contains("Hunter2"), "a secret reached the program: \(text)")
        let env = Self.variables(dump)
        #expect(env["VIGIL_RULE"] == "db-refused")
        #expect(env["VIGIL_STATE"] == "event")
        #expect(env["VIGIL_MESSAGE"]?.contains("connection refused: password=******** user=analytics") == true)
        #expect(env["VIGIL_LINE"] == env["VIGIL_MESSAGE"])
        #expect(env["VIGIL_FILE"] == "/var/log/analytics/upload.log")
        #expect(env["VIGIL_OFFSET"] == "0")
    }

    @Test func aFailingProgramRaisesExecFailedWithItsStatusAndFirstLine() throws {
        let rules = """
            - rule: always-fails
              severity: info
              file: /watched/*
              on: [created]
              then:
                - alert
                - exec: { command: [/bin/sh, -c, 'echo "disk on fire" >&2; echo second line; exit 3'] }

            """
        let fixture = try DaemonFixture(rules: rules, label: "exec-fail") { tree in tree.makeDirectory("watched") }
        fixture.tree.write("watched/a", "x")
        fixture.expect(rule: "always-fails", state: "event")
        let failure = try #require(fixture.next(), "no vigil.exec_failed; log: \(fixture.logs.messages)")
        #expect(failure.kind == "vigil.exec_failed")
        #expect(failure.rule == "always-fails")
        #expect(failure.state == "event")
        #expect(failure.message.contains("test.yaml:"))
        #expect(failure.message.contains("exec '/bin/sh' exited with status 3: disk on fire"), "\(failure)")
        #expect(JSONField.string(failure.line, "exit_code") == nil)  // labels are nested: check the text
        #expect(failure.line.contains(#""exit_code":"3""#))
        #expect(failure.line.contains(#""output":"disk on fire""#))
        #expect(fixture.daemon.counters.execsFailed.load(ordering: .relaxed) == 1)
    }

    @Test func aProgramThatHangsIsStoppedAtItsTimeoutAndReported() throws {
        let rules = """
            - rule: hangs
              severity: info
              file: /watched/*
              on: [created]
              then:
                - exec: { command: [/bin/sleep, '30'], timeout: 200ms }

            """
        let fixture = try DaemonFixture(rules: rules, label: "exec-hang") { tree in tree.makeDirectory("watched") }
        let started = Clock.monotonicNanoseconds()
        fixture.tree.write("watched/a", "x")
        let failure = try #require(fixture.next(), "no vigil.exec_failed; log: \(fixture.logs.messages)")
        let elapsed = (Clock.monotonicNanoseconds() - started) / 1_000_000
        #expect(failure.kind == "vigil.exec_failed")
        #expect(failure.message.contains("timed out after 200ms"), "\(failure)")
        #expect(failure.message.contains("SIGTERM (15)"), "\(failure)")
        #expect(elapsed >= 200 && elapsed < 2000, "stopped after \(elapsed) ms")
    }

    @Test func aProgramOthersCanChangeIsRefusedWhenTheRulesLoad() throws {
        let tree = TempTree("exec-untrusted")
        defer { tree.remove() }
        tree.makeDirectory("bin")
        tree.write("bin/hook", "#!/bin/sh\nexit 0\n", mode: 0o755)
        let hook = tree.path("bin/hook")
        chmod(hook, 0o777)
        let text = """
            - rule: with-hook
              file: /etc/passwd
              then:
                - exec: { command: [\(hook)] }

            """
        let compilation = RuleCompiler.compile(sources: [(file: "hooks.yaml", text: text)])
        #expect(compilation.ruleSet == nil)
        let message = compilation.diagnostics.map(\.description).joined(separator: "\n")
        #expect(message.contains("hooks.yaml:4:"), "\(message)")
        #expect(message.contains("refusing program '\(hook)' in exec: it is"), "\(message)")
        #expect(message.contains("world-writable"), "\(message)")
        chmod(hook, 0o755)
        #expect(RuleCompiler.compile(sources: [(file: "hooks.yaml", text: text)]).ruleSet != nil)
    }

    @Test func aDryRunSaysWhatItWouldExecAndSpawnsNothing() throws {
        let tree = TempTree("exec-out")
        defer { tree.remove() }
        let out = tree.path("env")
        let rules = """
            - rule: would-run
              severity: info
              file: /watched/*
              on: [created]
              then:
                - exec: { command: \(Self.dumpEnvironment(to: out)) }

            """
        let fixture = try DaemonFixture(rules: rules, label: "exec-dry") { tree in
            tree.makeDirectory("watched")
        } configure: { options in
            options.dryRun = true
        }
        fixture.tree.write("watched/a", "x")
        let alert = try #require(fixture.expect(rule: "would-run", state: "event"))
        #expect(alert.line.contains(#""dry_run":"would exec [/bin/sh, -c, "#), "\(alert)")
        _ = fixture.sync()
        #expect(fixture.daemon.counters.execsStarted.load(ordering: .relaxed) == 0)
        #expect(fileBytes(out) == nil)
        #expect(fixture.logs.messages.contains { $0.message.contains("Dry run: rule 'would-run' would exec [/bin/sh") })
    }

    @Test func aReloadThatAddsExecToARuleRunsItsProgram() throws {
        let tree = TempTree("exec-out")
        defer { tree.remove() }
        let out = tree.path("env")
        let plain = """
            - rule: watched
              severity: info
              file: /watched/*
              on: [created]

            """
        let withExec = """
            - rule: watched
              severity: info
              file: /watched/*
              on: [created]
              then:
                - alert
                - exec: { command: \(Self.dumpEnvironment(to: out)) }

            """
        let fixture = try DaemonFixture(rules: plain, label: "exec-reload") { tree in tree.makeDirectory("watched") }
        fixture.tree.write("watched/a", "x")
        fixture.expect(rule: "watched", state: "event")
        #expect(fileBytes(out) == nil)
        let summary = try fixture.daemon.reload(to: ReloadTests.ruleSet(withExec))
        #expect(summary.changed == ["watched"])
        fixture.tree.write("watched/b", "x")
        fixture.expect(rule: "watched", state: "event")
        let dump = try #require(waitForFile(out), "the exec program never ran after the reload")
        #expect(Self.variables(dump)["VIGIL_PATH"] == "/watched/b")
    }

    @Test func requestsBeyondTheQueueAreDroppedCountedAndAlertedOnce() throws {
        let rules = """
            - rule: slow-hook
              severity: info
              log: /var/log/app.log
              match: 'ERROR'
              then:
                - alert
                - exec: { command: [/bin/sleep, '30'], timeout: 1h }

            """
        let fixture = try DaemonFixture(rules: rules, label: "exec-drop") { tree in
            tree.makeDirectory("var/log")
            tree.write("var/log/app.log", "")
        }
        // 16 run, 256 wait; of 300, at least 28 are dropped (more when the exec thread had not started all
        // 16 yet as the queue filled). Each line's alert is written after its program was handed over, so
        // once all 300 are in, every drop is counted.
        let writer = AppendingWriter(fixture.tree.path("var/log/app.log"))
        writer.write(String(repeating: "ERROR busy\n", count: 300))
        var lines = 0
        var dropAlerts: [SeenAlert] = []
        while lines < 300 || dropAlerts.isEmpty, let alert = fixture.next() {
            if alert.rule == "slow-hook" { lines += 1 }
            if alert.kind == "vigil.exec_dropped" { dropAlerts.append(alert) }
        }
        #expect(lines == 300)
        // One alert for the window, at the first drop; the rest are counted for the next window's.
        #expect(dropAlerts.count == 1, "\(dropAlerts)")
        #expect(dropAlerts.first?.message.contains("(last of rule 'slow-hook')") == true, "\(dropAlerts)")
        let dropped = fixture.daemon.counters.execsDropped.load(ordering: .relaxed)
        #expect((28...44).contains(dropped), "\(dropped) dropped")
        #expect(fixture.sync().allSatisfy { $0.kind != "vigil.exec_dropped" })
    }
}
