import Testing
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `exec:` through the built binary: the program runs with the alert in its environment after the daemon
/// dropped its capabilities, its counters pass promtool, and `vigil check` refuses a program others could
/// change, at its line.
@Suite(
    .enabled(if: VigilBinary.exists, "build the vigil binary first (swift build), or set VIGIL_BINARY"),
    .timeLimit(.minutes(2))
)
struct ExecCommandLineTests {
    @Test func theDaemonRunsTheProgramAndCountsItInMetrics() throws {
        let out = TempDirectory("exec-cli-out")
        defer { out.remove() }
        let file = out.path + "/lines"
        let rules = """
            - rule: failed-login
              severity: warning
              log: /var/log/auth.log
              match: 'Failed password for (?<user>\\S+)'
              then:
                - alert
                - exec: { command: [/bin/sh, -c, 'printf "%s %s\\n" "$VIGIL_RULE" "$VIGIL_USER" >> "$0"', \(file)] }

            """
        let observed = try ObservedDaemon(label: "exec-cli", rules: rules)
        defer { observed.stop() }
        let address = try #require(observed.metricsAddress, "no bound address in the log: \(observed.daemon.log())")
        observed.appendFailedLogins(3)
        let lines = waitForFile(file) { $0.filter { $0 == UInt8(ascii: "\n") }.count >= 3 }
        let text = String(decoding: lines ?? [], as: UTF8.self)
        #expect(Set(text.split(separator: "\n")) == ["failed-login user0", "failed-login user1", "failed-login user2"])
        let body = MetricsEndpointTests.get("http://\(address)/metrics")?.text ?? ""
        #expect(body.contains("vigil_exec_started_total 3"), "\(body)")
        #expect(body.contains("vigil_exec_failed_total 0"))
        if Promtool.path != nil {
            out.write("metrics.prom", body)
            let result = try Promtool.check(out.path + "/metrics.prom")
            #expect(result.code == 0, "\(result)")
        }
    }

    @Test func checkRefusesAProgramOthersCanWriteAtItsLine() throws {
        let dir = TempDirectory("exec-check")
        defer { dir.remove() }
        dir.write("hook", "#!/bin/sh\nexit 0\n")
        let hook = dir.path + "/hook"
        chmod(hook, 0o777)
        dir.write(
            "rules.yaml",
            """
            - rule: hooked
              file: /etc/passwd
              then:
                - exec: { command: [\(hook), --now] }

            """
        )
        let result = try VigilBinary.run(["check", dir.path + "/rules.yaml"])
        #expect(result.code == 1, "\(result)")
        #expect(
            result.err.contains("\(dir.path)/rules.yaml:4:")
                && result.err.contains("refusing program '\(hook)' in exec:"),
            "\(result.err)"
        )
    }
}
