import Testing
import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// End to end: the built binary, as a user runs it.
@Suite(
    .enabled(if: VigilBinary.exists, "build the vigil binary first (swift build), or set VIGIL_BINARY"),
    .timeLimit(.minutes(2))
)
struct CommandLineTests {
    /// Three distinct mistakes: an unknown action, a bad severity, an unknown template field.
    static let threeErrors = """
        - rule: upload-ssl
          severity: urgent
          config: /etc/analytics/upload-service.conf
          when: { key: verify_ssl, is: false }
          message: "SSL off on {hots}"
          then: [chmood]

        """

    @Test func checkReportsEveryErrorWithItsPositionAndExitsOne() throws {
        let dir = TempDirectory("check")
        defer { dir.remove() }
        dir.write("bad.yaml", Self.threeErrors)
        let file = dir.path + "/bad.yaml"
        for arguments in [["check", file], ["run", "--rules", file, "--root", dir.path]] {
            let result = try VigilBinary.run(arguments)
            #expect(result.code == 1, "\(arguments): \(result)")
            let lines = result.err.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("\(file):2:13: error: severity 'urgent'") }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("\(file):5:24: error: unknown field '{hots}'") }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("\(file):6:10: error: unknown action 'chmood'") }, "\(lines)")
            #expect(lines.contains { $0.contains("3 errors in '\(file)'") }, "\(lines)")
            #expect(!result.err.contains("USAGE"), "never the usage text")
            #expect(!result.err.contains("Fatal error"), "never a stack trace")
        }
    }

    @Test func checkAcceptsTheShippedRules() throws {
        let result = try VigilBinary.run(["check", VigilBinary.repositoryRoot + "/rules"])
        #expect(result.code == 0, "\(result)")
        #expect(result.out.contains("no errors"))
    }

    /// `vigil check --root DIR` looks owners, groups and process users up in DIR/etc/passwd and DIR/etc/group.
    @Test func checkLooksUpUserAndGroupNamesInTheRoot() throws {
        let dir = TempDirectory("check-root")
        defer { dir.remove() }
        #expect(mkdir(dir.path + "/etc", 0o755) == 0)
        dir.write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nanalytics:x:1001:1001::/srv/analytics:/bin/false\n")
        dir.write("etc/group", "root:x:0:\nlog-readers:x:1002:analytics\n")
        dir.write(
            "rules.yaml",
            """
            - rule: analytics-log-tree
              file: /var/log/analytics/**
              owner: analytx
              group: log-readers
              mode: "0750"
              then: [alert, chmod, chown]
            - rule: analytics-log-rotation
              rotate: /var/log/analytics/unified/*.log
              size: 100M
              create: { mode: "0640", owner: analytics, group: log-reader }
            - rule: upload-exit
              process: { name: upload-service, user: [analytics, 1002, uploader] }
              on: [exit]

            """
        )
        let file = dir.path + "/rules.yaml"
        let result = try VigilBinary.run(["check", "--root", dir.path, file])
        #expect(result.code == 1, "\(result)")
        #expect(
            result.err.split(separator: "\n").map(String.init) == [
                "\(file):3:10: error: user 'analytx' is not in \(dir.path)/etc/passwd; use a user name from that file or a uid",
                "\(file):10:52: error: group 'log-reader' is not in \(dir.path)/etc/group; use a group name from that file or a gid",
                "\(file):12:60: error: user 'uploader' is not in \(dir.path)/etc/passwd; use a user name from that file or a uid",
                "vigil: 3 errors in '\(file)'; no rules were loaded",
            ]
        )

        dir.write(
            "etc/passwd",
            "analytics:x:1001:1001::/:/bin/false\nanalytx:x:1003:1003::/:/bin/false\nuploader:x:1004:1004::/:/bin/false\n"
        )
        dir.write("etc/group", "log-readers:x:1002:\nlog-reader:x:1005:\n")
        let fixed = try VigilBinary.run(["check", "--root", dir.path, file])
        #expect(fixed.code == 0, "\(fixed)")
        #expect(fixed.out.contains("3 rules and 0 sinks in 1 file: no errors"), "\(fixed)")

        let missing = try VigilBinary.run(["check", "--root", dir.path + "/nonexistent", file])
        #expect(missing.code == 1)
        #expect(
            missing.err.contains("Failed to use --root '\(dir.path)/nonexistent': it is not a directory"),
            "\(missing)"
        )
    }

    @Test func runRejectsAMissingRoot() throws {
        let result = try VigilBinary.run([
            "run", "--rules", VigilBinary.repositoryRoot + "/rules", "--root", "/nonexistent/vigil-root",
        ])
        #expect(result.code == 1)
        #expect(result.err.contains("'/nonexistent/vigil-root'"), "\(result.err)")
    }

    /// The daemon against a sandbox of the seed's server: an editor's save fires, SIGTERM stops it within a second.
    @Test func runAlertsOnTheSeedsIncidentAndStopsOnSIGTERM() throws {
        let sandbox = try SeedSandbox(label: "e2e")
        defer { sandbox.remove() }
        let alerts = sandbox.hostPath("/var/log/vigil/test-alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        let daemon = try VigilBinary.runShippedRules(on: sandbox, alerts: alerts)
        try sandbox.writeReplacing(SeedSandbox.configPath, SeedSandbox.insecureConfig)
        let line = follower.nextFileAlert() ?? ""
        #expect(JSONField.string(line, "rule") == "upload-ssl-verification-disabled", "\(line)\n\(daemon.log())")
        #expect(JSONField.string(line, "state") == "firing")
        #expect(JSONField.string(line, "severity") == "critical")
        #expect(JSONField.string(line, "path") == "/etc/analytics/upload-service.conf")
        // The rules' own sink, inside the root, got the same alert.
        let ruleSink = ProcFile.readText(sandbox.hostPath("/var/log/vigil/alerts.jsonl")) ?? ""
        #expect(ruleSink.contains(JSONField.string(line, "id") ?? "no id"))

        let before = Clock.monotonicNanoseconds()
        let code = daemon.stop(timeoutMilliseconds: 1000)
        let elapsed = Clock.monotonicNanoseconds() - before
        #expect(code == 0, "exit code \(String(describing: code)); log: \(daemon.log())")
        #expect(elapsed < 1_000_000_000)
        #expect(daemon.log().contains("ready"), "\(daemon.log())")
    }

    /// A restart finds the insecure config still insecure: the condition was firing when vigil stopped
    /// (`firing.state`), so nothing is sent again — receivers see no duplicate, not even one with the same id.
    @Test func aConditionStillTrueAfterARestartIsNotSentAgain() throws {
        let sandbox = try SeedSandbox(label: "ids")
        defer { sandbox.remove() }
        try sandbox.write(SeedSandbox.configPath, SeedSandbox.insecureConfig)
        var fingerprint = ""
        for round in 0..<2 {
            let alerts = sandbox.hostPath("/var/log/vigil/round\(round).jsonl")
            let follower = try LineFollower(path: alerts)
            let daemon = try VigilBinary.runShippedRules(on: sandbox, alerts: alerts)
            if round == 0 {
                let line = follower.nextFileAlert() ?? ""
                fingerprint = JSONField.string(line, "fingerprint") ?? ""
                #expect(JSONField.string(line, "state") == "firing", "\(line)")
            } else {
                // The matcher judges every file before READY=1, and writes its alerts itself: by now any
                // start-up alert about the config would be in the file.
                let again = follower.drain().filter { JSONField.string($0, "fingerprint") == fingerprint }
                #expect(again.isEmpty, "\(again)")
            }
            #expect(daemon.stop() == 0)
        }
        #expect(!fingerprint.isEmpty)
    }

    @Test func demoRunsTheSeedsIncidentAndExitsZero() throws {
        let result = try VigilBinary.run(
            ["demo", "--rules", VigilBinary.repositoryRoot + "/rules"],
            timeoutMilliseconds: 100_000
        )
        #expect(result.code == 0, "\(result)")
        // Ten reactions before issue 7's (eight without root, which the filling disk needs).
        let reactions = result.out.split(separator: "\n").first { $0.contains(" reactions (") }
        let count = reactions.flatMap { Int($0.split(separator: " ").first ?? "") } ?? 0
        #expect(count >= (geteuid() == 0 ? 18 : 16), "\(result.out)")
        // The system-health steps: the runaway job past its hold, the listener, the root cron job.
        #expect(result.out.contains("firing · demo-cpu-hog"), "\(result.out)")
        #expect(result.out.contains("firing · unexpected-listener: debug-server"), "\(result.out)")
        #expect(result.out.contains("resolved · root-runs-user-writable"), "\(result.out)")
        // The hot reload: a rule saved while vigil runs fires without a restart.
        #expect(result.out.contains("firing · demo-ssl-verified"), "\(result.out)")
        #expect(
            geteuid() != 0 || result.out.contains("firing · disk-usage: /var/lib/postgresql (tmpfs)"),
            "\(result.out)"
        )
        // The rotation step: rotated past 100M, compressed, and the archive passes gzip -t.
        #expect(result.out.contains("unified-log-rotation"), "\(result.out)")
        #expect(result.out.contains("gzip -t: OK") || access("/usr/bin/gzip", X_OK) != 0, "\(result.out)")
        // The chmod 777 step: put right, and said so.
        #expect(result.out.contains("mode 0777, expected mode 0640; restored"), "\(result.out)")
        #expect(result.out.contains("The log's mode is 640 again"), "\(result.out)")
        // The log steps: the SSL finding alerted with its endpoint, the leaked secrets masked in the log.
        #expect(result.out.contains("upload-ssl-verification-disabled-logged"), "\(result.out)")
        #expect(result.out.contains("password=******** user=analytics"), "\(result.out)")
        #expect(result.out.contains("card **** **** **** 1111"), "\(result.out)")
        #expect(!result.out.contains("Hunter2"), "\(result.out)")
        #expect(result.out.contains("killed by SIGKILL"), "\(result.out)")
        #expect(result.out.contains("Restarted upload-service: new pid"), "\(result.out)")
        #expect(result.out.components(separatedBy: "firing").count - 1 >= 2)
    }
}

extension String {
    fileprivate func components(separatedBy separator: String) -> [Substring] {
        split(separator: separator, omittingEmptySubsequences: false)
    }
}

/// The daemon without the capabilities that let root read any file (run through `capsh`, as a unit with a
/// reduced `CapabilityBoundingSet` would): an unreadable config is one clear error, and fixing its mode is enough.
@Suite(
    .enabled(
        if: VigilBinary.exists && access("/usr/sbin/capsh", X_OK) == 0 && getuid() == 0,
        "needs root, capsh (Debian libcap2-bin) and the built binary"
    ),
    .timeLimit(.minutes(1))
)
struct WithoutReadCapabilitiesTests {
    @Test func unreadableConfigIsReportedAndPickedUpOnceReadable() throws {
        let sandbox = try SeedSandbox(label: "nocaps")
        defer { sandbox.remove() }
        try sandbox.write(SeedSandbox.configPath, SeedSandbox.insecureConfig)
        #expect(chmod(sandbox.hostPath(SeedSandbox.configPath), 0) == 0)
        let alerts = sandbox.hostPath("/var/log/vigil/test-alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        let daemon = try VigilBinary.runShippedRules(
            on: sandbox,
            alerts: alerts,
            launcher: [
                "/usr/sbin/capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", "exec \"$@\"", "vigil",
            ]
        )
        defer { daemon.stop() }
        let log = daemon.log()
        #expect(log.contains("Failed to read '/etc/analytics/upload-service.conf': permission denied"), "\(log)")
        #expect(!log.contains(sandbox.root + "/etc"), "messages name the server's path, not the sandbox's: \(log)")
        // The mode change is an event: the file is read at once and the insecure value fires.
        #expect(chmod(sandbox.hostPath(SeedSandbox.configPath), 0o644) == 0)
        let line = follower.nextFileAlert() ?? ""
        #expect(JSONField.string(line, "state") == "firing", "\(line)\n\(daemon.log())")
    }
}

/// Every kind of alert the daemon writes validates against docs/alert.schema.json, checked by an
/// independent validator (Python's `jsonschema`, draft 2020-12).
@Suite(
    .enabled(if: VigilBinary.exists && SchemaValidator.available, "needs the built binary and python3 with jsonschema"),
    .timeLimit(.minutes(1))
)
struct AlertSchemaTests {
    @Test func realAlertLinesValidateAgainstTheSchema() throws {
        let sandbox = try SeedSandbox(label: "schema")
        defer { sandbox.remove() }
        let alerts = sandbox.hostPath("/var/log/vigil/schema-alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        let daemon = try VigilBinary.runShippedRules(on: sandbox, alerts: alerts)
        // Each step waits for its alerts: unwaited, the daemon would rightly judge only the final content.
        var lines: [String] = []
        var processLines = 0
        func collect(_ count: Int) {
            var collected = 0
            while collected < count, let line = follower.next(timeoutMilliseconds: 5000) {
                // The seed's services do not run in this sandbox: the expected-process alerts arrive too, and
                // the host's own listeners, pressure and the sandbox's root cron job.
                if LineFollower.isHostAlert(line.line) {
                    if (JSONField.string(line.line, "kind") ?? "").hasPrefix("process.") { processLines += 1 }
                    continue
                }
                lines.append(line.line)
                collected += 1
            }
        }
        try sandbox.writeReplacing(SeedSandbox.configPath, SeedSandbox.insecureConfig)  // firing
        collect(1)
        let moved = SeedSandbox.insecureConfig.replacingAll(
            "api.analytics-partner.com",
            with: "api2.analytics-partner.com"
        )
        try sandbox.write(SeedSandbox.configPath, moved)  // event: endpoints changed
        collect(1)
        #expect(chmod(sandbox.hostPath(SeedSandbox.configPath), 0o600) == 0)  // event: attributes
        collect(1)
        try sandbox.write(SeedSandbox.configPath, SeedSandbox.fixedConfig)  // resolved, and the endpoints back
        collect(2)
        #expect(daemon.stop() == 0)
        let states = Set(lines.compactMap { JSONField.string($0, "state") })
        #expect(states == ["firing", "event", "resolved"], "\(lines)")
        let kinds = Set(lines.compactMap { JSONField.string($0, "kind") })
        #expect(kinds.contains("config.changed") && kinds.contains("file.attributes"), "\(kinds)")
        let verdict = try SchemaValidator.validate(alerts)
        #expect(verdict.code == 0, "\(verdict.output)")
        #expect(processLines >= 4, "the four expected processes are missing in the sandbox")
        // Every line in the file (process alerts keep arriving on a busy host) validated.
        let written = (ProcFile.readText(alerts, limit: 1 << 24) ?? "").split(separator: "\n").count
        #expect(written >= lines.count + processLines)
        #expect(verdict.output.contains("\(written) valid"), "\(verdict.output)")
    }
}

/// Runs python3's jsonschema over a JSON Lines file.
enum SchemaValidator {
    static let script = """
        import json, sys, jsonschema
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        n = 0
        for line in open(sys.argv[2]):
            for error in validator.iter_errors(json.loads(line)):
                print("invalid:", error.message, "in", line.strip()); sys.exit(1)
            n += 1
        print(n, "valid")
        """

    static var available: Bool {
        (try? Command.run("/usr/bin/env", ["python3", "-c", "import jsonschema"]).code) == 0
    }

    static func validate(_ file: String) throws -> (code: Int32, output: String) {
        let result = try Command.run(
            "/usr/bin/env",
            ["python3", "-c", script, VigilBinary.repositoryRoot + "/docs/alert.schema.json", file]
        )
        return (result.code, result.out + result.err)
    }
}

extension String {
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
