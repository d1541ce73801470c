import Testing
import VigilDaemon
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The sanitize action on a real log while a writer appends at full speed: every secret masked in place,
/// benign lines untouched, size and inode unchanged, nothing the writer wrote lost; alerts never carry a
/// secret; the redacted copy.
@Suite(.serialized) struct LogSanitizeTests {
    static let rules = """
        - rule: mask-secrets
          severity: info
          log: /var/log/analytics/*.log
          from: start
          then:
            - sanitize: { copy_to: /var/log/analytics/sanitized }
        - rule: done-marker
          severity: info
          log: /var/log/analytics/*.log
          match: 'END-OF-TEST [0-9]+'
          from: start
          message: "{line}"
        - rule: leaked-line
          severity: warning
          log: /var/log/analytics/*.log
          match: 'connection refused'
          from: start
          message: "{line}"

        """

    @Test func secretsAreMaskedInPlaceWhileAWriterAppendsAtFullSpeed() throws {
        let fixture = try DaemonFixture(rules: Self.rules, label: "sanitize") { tree in
            tree.makeDirectory("var/log/analytics")
        }
        let path = fixture.tree.path("var/log/analytics/upload.log")
        let writer = AppendingWriter(path)
        var info = stat()
        #expect(stat(path, &info) == 0)
        let inode = info.st_ino
        let secret = SecretCorpus.lines("corpus.txt")
        let masked = SecretCorpus.lines("corpus.masked.txt")
        let benign = SecretCorpus.lines("benign.txt")
        var expected: [[UInt8]] = []
        var written = 0
        // 200 rounds of every secret and benign line, one write(2) per line, no pause.
        for _ in 0..<200 {
            for (index, line) in secret.enumerated() {
                writer.write(bytes: line + [0x0A])
                expected.append(masked[index])
                written += line.count + 1
            }
            for line in benign {
                writer.write(bytes: line + [0x0A])
                expected.append(line)
                written += line.count + 1
            }
        }
        let marker = Array("END-OF-TEST 1\n".utf8)
        writer.write(bytes: marker)
        written += marker.count
        var sawMarker = false
        var alertTexts: [String] = []
        while let alert = fixture.next() {
            alertTexts.append(alert.line)
            if alert.rule == "done-marker" {
                sawMarker = true
                break
            }
        }
        #expect(sawMarker)

        #expect(stat(path, &info) == 0)
        #expect(info.st_ino == inode && Int(info.st_size) == written, "size \(info.st_size), written \(written)")
        let content = try #require(readAll(path))
        var lines = content.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        lines.removeLast()  // after the last newline
        #expect(lines.count == expected.count + 1)
        var wrong = 0
        for (index, line) in expected.enumerated() where lines[index] != line {
            wrong += 1
            if wrong < 4 {
                Issue.record(
                    "line \(index): \(String(decoding: lines[index], as: UTF8.self)) != \(String(decoding: line, as: UTF8.self))"
                )
            }
        }
        #expect(wrong == 0)
        // The redacted copy holds the same masked lines.
        let copy = try #require(readAll(fixture.tree.path("var/log/analytics/sanitized/upload.log")))
        #expect(copy == content)
        // Alerts on lines with secrets carry them masked.
        let leaked = alertTexts.filter { $0.contains("\"rule\":\"leaked-line\"") }
        #expect(!leaked.isEmpty)
        #expect(
            leaked.allSatisfy { !$0.contains("Hunter2") && $0.contains("password=********") },
            "\(leaked.first ?? "")"
        )
    }

    @Test func maskingTwiceChangesNothingAndALineBeingWrittenWaits() throws {
        let fixture = try DaemonFixture(rules: Self.rules, label: "sanitize-twice") { tree in
            tree.makeDirectory("var/log/analytics")
            // Already masked by an earlier run: read from the start again, nothing to change.
            tree.write("var/log/analytics/old.log", "token=****** done\n")
        }
        let path = fixture.tree.path("var/log/analytics/old.log")
        let writer = AppendingWriter(path)
        writer.write("login password=sw")
        #expect(fixture.sync().isEmpty)
        // The half line is still as written: masking waits for its newline.
        #expect(fixture.tree.read("var/log/analytics/old.log") == "token=****** done\nlogin password=sw")
        writer.write("ordfish ok\nEND-OF-TEST 2\n")
        #expect(fixture.logAlerts(1).first?.rule == "done-marker")
        #expect(
            fixture.tree.read("var/log/analytics/old.log")
                == "token=****** done\nlogin password=********* ok\nEND-OF-TEST 2\n"
        )
    }
}

/// The whole file, read plainly (a writer may hold it open).
func readAll(_ path: String) -> [UInt8]? { fileBytes(path) }

/// A sanitizing root daemon must not be turned against the host: a hard link or a symlink planted in a log
/// directory, pointing at a decoy outside it, leaves the decoy untouched.
@Suite(.serialized) struct LogSanitizeSafetyTests {
    @Test func plantedLinksToADecoyLeaveItUntouched() throws {
        let decoy = "root:x:0:0:password=hunter2:/root:/bin/bash\n"
        let fixture = try DaemonFixture(rules: LogSanitizeTests.rules, label: "sanitize-links") { tree in
            tree.makeDirectory("var/log/analytics")
            tree.makeDirectory("etc")
            tree.write("etc/shadow-decoy", decoy)
            tree.write("etc/passwd-decoy", decoy)
            // Planted before vigil starts, and read from the start (from: start).
            #expect(link(tree.path("etc/shadow-decoy"), tree.path("var/log/analytics/hard.log")) == 0)
            tree.symlink("var/log/analytics/soft.log", to: "/etc/passwd-decoy")
        }
        // A line through each link, then the marker, through the hard link (the same file).
        let hard = AppendingWriter(fixture.tree.path("var/log/analytics/hard.log"))
        hard.write("token=abcdef123456 END-OF-TEST 3\n")
        #expect(fixture.logAlerts(1).first?.rule == "done-marker")
        #expect(fixture.tree.read("etc/shadow-decoy") == decoy + "token=abcdef123456 END-OF-TEST 3\n")
        #expect(fixture.tree.read("etc/passwd-decoy") == decoy)
        #expect(fixture.logs.messages.contains { $0.message.contains("hard links") }, "\(fixture.logs.messages)")
        #expect(fixture.logs.messages.contains { $0.message.contains("is a symlink") }, "\(fixture.logs.messages)")
    }
}
