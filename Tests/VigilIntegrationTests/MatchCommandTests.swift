import Testing
import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil match` and the pattern checks of `vigil check`, on the built binary.
@Suite(
    .enabled(if: VigilBinary.exists, "build the vigil binary first (swift build), or set VIGIL_BINARY"),
    .timeLimit(.minutes(2))
)
struct MatchCommandTests {
    static let rules = """
        - rule: ssl-disabled
          log: /var/log/analytics/unified/unified_*.log
          match: 'SSL certificate verification disabled for endpoint: (?<endpoint>\\S+)'
        - rule: logins
          log: /var/log/auth.log
          match:
            - 'Failed password for (?<user>\\S+)'
            - 'password=(?<secret>\\S+)'
          caseless: true
        - rule: masked
          log: /var/log/analytics/*.log
          then: [sanitize]
        - rule: off
          enabled: false
          log: /var/log/a.log
          match: 'SSL'

        """

    /// Seed lines, a secret, a line without newline at the end.
    static let log = """
        2025-04-13 07:15:22 UPLOAD WARN [SSLConnector] SSL certificate verification disabled for endpoint: https://api.analytics-partner.com
        2025-04-13 07:16:45 UPLOAD INFO [HTTPClient] Connected to external API with insecure flag
        2025-04-13 08:01:12 UPLOAD WARN [SSLConnector] SSL certificate verification disabled for endpoint: https://metrics.analytics-partner.com
        sshd[42]: FAILED PASSWORD for root from 203.0.113.5
        2025-04-13 08:02:00 UPLOAD ERROR [DBPool] retry with password=Hunter2! card 4111111111111111

        last line without newline: failed password for bob
        """

    @Test func countsEveryRuleAndMasksTheSamples() throws {
        let dir = TempDirectory("match")
        defer { dir.remove() }
        dir.write("rules.yaml", Self.rules)
        dir.write("app.log", Self.log)
        let result = try VigilBinary.run(["match", "--rules", dir.path + "/rules.yaml", dir.path + "/app.log"])
        #expect(result.code == 0, "\(result)")
        let lines = result.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains { $0.hasPrefix("ssl-disabled (\(dir.path)/rules.yaml:1:3): 2 lines") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("logins (\(dir.path)/rules.yaml:4:3): 3 lines") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("masked (\(dir.path)/rules.yaml:10:3): 7 lines (no match:") }, "\(lines)")
        #expect(!result.out.contains("off ("), "disabled rules take no part")
        // Samples are masked; the secret never reaches the output.
        #expect(
            result.out.contains(
                "    2025-04-13 08:02:00 UPLOAD ERROR [DBPool] retry with password=******** card ************1111"
            )
        )
        #expect(!result.out.contains("Hunter2"))
        #expect(!result.out.contains("4111111111111111"))
        #expect(
            lines.contains {
                $0.hasPrefix("vigil: 7 lines in 1 file, 5 matched by a pattern; ") && $0.hasSuffix(" M lines/s")
            },
            "\(lines)"
        )

        let counted = try VigilBinary.run([
            "match", "--rules", dir.path + "/rules.yaml", "--count-only", dir.path + "/app.log",
        ])
        #expect(counted.code == 0)
        #expect(counted.out == "5 7\n")
        // Two files: totals over both.
        let twice = try VigilBinary.run([
            "match", "--rules", dir.path + "/rules.yaml", "--count-only", dir.path + "/app.log", dir.path + "/app.log",
        ])
        #expect(twice.out == "10 14\n")
    }

    @Test func countsEqualGrepsOnTheSecretCorpus() throws {
        let dir = TempDirectory("match-grep")
        defer { dir.remove() }
        let patterns = ["password", "[0-9]{4} [0-9]{4}", "BEGIN (RSA|OPENSSH) PRIVATE", "@[a-z]+\\.example"]
        dir.write("patterns.txt", patterns.joined(separator: "\n") + "\n")
        dir.write(
            "rules.yaml",
            patterns.enumerated().map { "- rule: p\($0.offset)\n  log: /var/log/a.log\n  match: '\($0.element)'\n" }
                .joined()
        )
        let corpus = VigilBinary.repositoryRoot + "/Tests/Fixtures/secrets/corpus.txt"
        let vigil = try VigilBinary.run(["match", "--rules", dir.path + "/rules.yaml", "--count-only", corpus])
        let grep = try Command.run("/usr/bin/grep", ["-E", "-c", "-f", dir.path + "/patterns.txt", corpus])
        #expect(vigil.code == 0, "\(vigil)")
        #expect(
            vigil.out.split(separator: " ").first.map(String.init)
                == grep.out.split(separator: "\n").first.map(String.init)
        )
    }

    @Test func aLineLongerThan64KiBIsMatchedInPiecesAndCountedOnce() throws {
        let dir = TempDirectory("match-long")
        defer { dir.remove() }
        dir.write("rules.yaml", "- rule: x\n  log: /var/log/a.log\n  match: 'needle'\n")
        // needle in the first and the third 64 KiB piece of one line, then a short line.
        let piece = 64 * 1024
        var long = "needle" + String(repeating: "a", count: 2 * piece) + "needle" + String(repeating: "b", count: 1000)
        long += "\nshort needle\n"
        dir.write("long.log", long)
        let result = try VigilBinary.run([
            "match", "--rules", dir.path + "/rules.yaml", "--count-only", dir.path + "/long.log",
        ])
        #expect(result.out == "2 2\n", "\(result)")
        // A needle cut by a piece boundary is not seen (the daemon matches the same pieces).
        let cut = String(repeating: "a", count: piece - 3) + "needle\n"
        dir.write("cut.log", cut)
        let split = try VigilBinary.run([
            "match", "--rules", dir.path + "/rules.yaml", "--count-only", dir.path + "/cut.log",
        ])
        #expect(split.out == "0 1\n", "\(split)")
    }

    @Test func explainSaysWhichPatternMatchedWithMaskedGroups() throws {
        let dir = TempDirectory("explain")
        defer { dir.remove() }
        dir.write("rules.yaml", Self.rules)
        let result = try VigilBinary.run([
            "match", "--rules", dir.path + "/rules.yaml", "--explain", "Retry: password=hunter2 for user bob",
        ])
        #expect(result.code == 0, "\(result)")
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(
            lines.contains("ssl-disabled (\(dir.path)/rules.yaml:1:3): no match (its pattern does not match)"),
            "\(lines)"
        )
        #expect(
            lines.contains {
                $0
                    == "logins (\(dir.path)/rules.yaml:4:3): matches: pattern 2 'password=(?<secret>\\S+)' (\(dir.path)/rules.yaml:8:7), ignoring case"
            },
            "\(lines)"
        )
        #expect(lines.contains("    secret = *******"), "\(lines)")
        #expect(!result.out.contains("hunter2"))
        #expect(lines.last == "vigil: the line matches 2 of 3 log rules")
    }

    @Test func clearErrorsForMissingFilesDirectoriesAndNoLogRules() throws {
        let dir = TempDirectory("match-errors")
        defer { dir.remove() }
        dir.write("rules.yaml", Self.rules)
        let missing = try VigilBinary.run([
            "match", "--rules", dir.path + "/rules.yaml", dir.path + "/nope.log", dir.path,
        ])
        #expect(missing.code == 1)
        #expect(
            missing.err.contains(
                "vigil: Failed to open '\(dir.path)/nope.log': No such file or directory; check the path"
            )
        )
        #expect(
            missing.err.contains("vigil: Failed to read '\(dir.path)': it is a directory; give the log files in it")
        )
        #expect(missing.out.isEmpty)

        dir.write("config.yaml", "- rule: c\n  config: /etc/a.conf\n  when: { key: a, is: b }\n")
        dir.write("app.log", "x\n")
        let none = try VigilBinary.run(["match", "--rules", dir.path + "/config.yaml", dir.path + "/app.log"])
        #expect(none.code == 1)
        #expect(
            none.err.contains(
                "vigil: no enabled log rules in '\(dir.path)/config.yaml'; add a rule with 'log:' and 'match:'"
            )
        )

        let noFiles = try VigilBinary.run(["match", "--rules", dir.path + "/rules.yaml"])
        #expect(noFiles.code != 0)
        #expect(noFiles.err.contains("no log files given"))
    }

    @Test func checkAndMatchReportPatternErrorsLikeOtherDiagnostics() throws {
        let dir = TempDirectory("check-patterns")
        defer { dir.remove() }
        dir.write(
            "bad.yaml",
            """
            - rule: bad
              log: /var/log/a.log
              match: 'login (failed'
            - rule: sanitize
              log: /var/log/a.log
              then:
                - sanitize: { patterns: ['(a)\\1'] }

            """
        )
        dir.write("app.log", "x\n")
        let file = dir.path + "/bad.yaml"
        let check = try VigilBinary.run(["check", file])
        #expect(check.code == 1, "\(check)")
        let lines = check.err.split(separator: "\n").map(String.init)
        #expect(
            lines.contains {
                $0.hasPrefix(
                    "\(file):3:17: error: pattern 'login (failed' cannot be compiled: Missing close parenthesis"
                )
            },
            "\(lines)"
        )
        #expect(
            lines.contains { $0.hasPrefix("\(file):7:") && $0.contains("Vectorscan does not support backreferences") },
            "\(lines)"
        )
        #expect(lines.last == "vigil: 2 errors in '\(file)'; no rules were loaded")
        let match = try VigilBinary.run(["match", "--rules", file, dir.path + "/app.log"])
        #expect(match.code == 1)
        #expect(match.err.contains("\(file):3:17: error: pattern 'login (failed'"))
    }
}
