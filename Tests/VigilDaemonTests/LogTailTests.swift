import Testing
import VigilDaemon
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A log writer as applications are: one descriptor opened with O_APPEND and kept, written in pieces.
final class AppendingWriter {
    let path: String
    private(set) var descriptor: CInt

    init(_ path: String) {
        self.path = path
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        precondition(descriptor >= 0, "open \(path): \(errno)")
    }

    deinit { close(descriptor) }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        precondition(n == bytes.count)
    }

    func write(bytes: [UInt8]) {
        let n = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        precondition(n == bytes.count)
    }

    /// Opens the name again (after a rotation renamed the old file away).
    func reopen() {
        close(descriptor)
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        precondition(descriptor >= 0)
    }
}

extension DaemonFixture {
    /// Log alerts (not cookies) until `count` arrived, or nil after the deadline.
    func logAlerts(_ count: Int, timeoutMilliseconds: Int = 5000) -> [SeenAlert] {
        var seen: [SeenAlert] = []
        while seen.count < count, let alert = next(timeoutMilliseconds: timeoutMilliseconds) {
            if alert.rule != "cookie" { seen.append(alert) }
        }
        return seen
    }
}

/// The log watcher on real files, real inotify and real renames: appended lines, partial lines, globs,
/// rotation by rename and by copy-and-truncate, restarts from the state file, exactly-once alert ids.
@Suite(.serialized) struct LogTailTests {
    static let errorRule = """
        - rule: app-error
          severity: error
          log: /var/log/app.log
          match: 'ERROR code=(?<code>[0-9]+)'
          from: start
          message: "error {code} in {path}"

        """

    @Test func appendedLinesAlertAndAPartialLineWaitsForItsNewline() throws {
        let fixture = try DaemonFixture(rules: Self.errorRule, label: "log-append") { tree in
            tree.makeDirectory("var/log")
            tree.write("var/log/app.log", "INFO start\n")
        }
        let writer = AppendingWriter(fixture.tree.path("var/log/app.log"))
        writer.write("2025-04-13 07:15:22 UPLOAD ERROR code=17 upload failed\n")
        let first = try #require(fixture.logAlerts(1).first)
        #expect(first.rule == "app-error" && first.message == "error 17 in /var/log/app.log", "\(first)")
        #expect(first.kind == "log.matched" && first.path == "/var/log/app.log")
        #expect(JSONField.label(first.line, "code") == "17")

        // Half a line: nothing until its newline.
        writer.write("2025-04-13 07:15:23 UPLOAD ERROR code=")
        #expect(fixture.sync().isEmpty)
        writer.write("42 retry\nINFO fine\n")
        let second = try #require(fixture.logAlerts(1).first)
        #expect(second.message == "error 42 in /var/log/app.log")
        #expect(fixture.sync().isEmpty)
    }

    @Test func aFileThatAppearsLaterUnderAGlobIsFollowedFromItsStart() throws {
        let rules = """
            - rule: ssl-disabled
              severity: critical
              log: /var/log/analytics/unified/unified_*.log
              match: 'SSL certificate verification disabled for endpoint: (?<endpoint>\\S+)'
              message: "SSL verification disabled for {endpoint}"

            """
        let fixture = try DaemonFixture(rules: rules, label: "log-glob") { tree in
            tree.makeDirectory("var/log/analytics")
        }
        // The directory itself appears later too, then a new day's file.
        fixture.tree.makeDirectory("var/log/analytics/unified")
        fixture.tree.write(
            "var/log/analytics/unified/unified_20261128.log",
            "2025-04-13 07:15:22 UPLOAD WARN [SSLConnector] SSL certificate verification disabled for endpoint: https://api.analytics-partner.com\n"
        )
        let alert = try #require(fixture.logAlerts(1).first)
        #expect(alert.message == "SSL verification disabled for https://api.analytics-partner.com", "\(alert)")
        #expect(alert.path == "/var/log/analytics/unified/unified_20261128.log")
        // A name the glob does not match is not read.
        fixture.tree.write(
            "var/log/analytics/unified/other.txt",
            "SSL certificate verification disabled for endpoint: x\n"
        )
        #expect(fixture.sync().isEmpty)
    }

    @Test func renameRotationReadsTheOldFileToItsEndThenTheNewOne() throws {
        let fixture = try DaemonFixture(rules: LogStateTests.everyLine, label: "log-rename") { tree in
            tree.makeDirectory("var/log")
        }
        let path = fixture.tree.path("var/log/app.log")
        let writer = AppendingWriter(path)
        writer.write("line 1\nline 2\n")
        #expect(fixture.logAlerts(2).map(\.message) == ["line 1", "line 2"])
        // logrotate without copytruncate: rename, the writer keeps writing to the old file until it reopens.
        #expect(rename(path, path + ".1") == 0)
        writer.write("line 3\n")
        writer.reopen()
        writer.write("line 4\n")
        let messages = fixture.logAlerts(2).map(\.message)
        #expect(messages == ["line 3", "line 4"], "\(messages)")
        #expect(fixture.sync().isEmpty)
    }

    @Test func copyAndTruncateIsDetectedAndTheFileReadAgain() throws {
        let fixture = try DaemonFixture(rules: LogStateTests.everyLine, label: "log-truncate") { tree in
            tree.makeDirectory("var/log")
        }
        let writer = AppendingWriter(fixture.tree.path("var/log/app.log"))
        writer.write("before 1\nbefore 2\n")
        #expect(fixture.logAlerts(2).count == 2)
        #expect(truncate(fixture.tree.path("var/log/app.log"), 0) == 0)
        writer.write("after 1\n")
        let alerts = fixture.logAlerts(2)
        #expect(alerts.map(\.kind) == ["vigil.log_truncated", "log.matched"], "\(alerts)")
        #expect(alerts.first?.message.contains("may be lost") == true)
        #expect(alerts.last?.message == "after 1")
    }

    @Test func longLinesAreSplitAndFlaggedAndBinaryBytesPassThrough() throws {
        let fixture = try DaemonFixture(rules: LogStateTests.everyLine, label: "log-long") { tree in
            tree.makeDirectory("var/log")
        } configure: { options in
            options.logLineLimit = 4096
        }
        let writer = AppendingWriter(fixture.tree.path("var/log/app.log"))
        writer.write(String(repeating: "x", count: 10_000) + "\n")
        let pieces = fixture.logAlerts(3)
        #expect(pieces.count == 3)
        #expect(pieces.prefix(2).allSatisfy { JSONField.label($0.line, "split") == "true" })
        writer.write(bytes: [0x41, 0x00, 0xFF, 0xFE, 0x42, 0x0A])
        let binary = try #require(fixture.logAlerts(1).first)
        #expect(binary.message.hasPrefix("A\u{0}"), "\(binary)")
        #expect(fixture.sync().isEmpty)
    }

    @Test func countWindowsFireOncePerKeyWithTheCount() throws {
        let rules = """
            - rule: failed-logins
              severity: warning
              log: /var/log/auth.log
              match: 'Failed password for (?<user>[a-z]+)'
              count: { at_least: 3, within: 60s, by: "{user}" }
              from: start
              message: "{count} failed logins for {user} within {window}"

            """
        let fixture = try DaemonFixture(rules: rules, label: "log-count") { tree in
            tree.makeDirectory("var/log")
        }
        let writer = AppendingWriter(fixture.tree.path("var/log/auth.log"))
        writer.write("Failed password for jin\nFailed password for noah\nFailed password for jin\n")
        #expect(fixture.sync().isEmpty)
        writer.write("Failed password for jin\nFailed password for jin\n")
        let alert = try #require(fixture.logAlerts(1).first)
        #expect(alert.message == "3 failed logins for jin within 60 s", "\(alert)")
        #expect(alert.kind == "log.threshold")
        #expect(fixture.sync().isEmpty)
    }

    @Test func aLogThatIsASymlinkIsFollowedToItsTarget() throws {
        let fixture = try DaemonFixture(rules: Self.errorRule, label: "log-symlink") { tree in
            tree.makeDirectory("var/log")
            tree.makeDirectory("data/app")
            tree.write("data/app/current.log", "")
            tree.symlink("var/log/app.log", to: "/data/app/current.log")
        }
        let writer = AppendingWriter(fixture.tree.path("data/app/current.log"))
        writer.write("ERROR code=5 via the link\n")
        let alert = try #require(fixture.logAlerts(1).first)
        #expect(alert.message == "error 5 in /var/log/app.log", "\(alert)")
    }

    @Test func deletedAndRecreatedLogIsFollowedAgain() throws {
        let fixture = try DaemonFixture(rules: Self.errorRule, label: "log-recreate") { tree in
            tree.makeDirectory("var/log")
            tree.write("var/log/app.log", "")
        }
        fixture.tree.write("var/log/app.log", "ERROR code=1\n")
        #expect(fixture.logAlerts(1).first?.message == "error 1 in /var/log/app.log")
        fixture.tree.unlinkFile("var/log/app.log")
        fixture.tree.write("var/log/app.log", "ERROR code=2\n")
        #expect(fixture.logAlerts(1).first?.message == "error 2 in /var/log/app.log")
    }
}
