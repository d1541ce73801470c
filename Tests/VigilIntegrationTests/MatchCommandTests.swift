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

    /// A log that puts line boundaries, long lines, CRLF, NUL and invalid UTF-8 bytes everywhere a split between
    /// threads may fall: lines of every length up to 200 KiB (needles in various 64 KiB pieces), and no newline
    /// after the last line.
    static func awkwardLog(seed: UInt64) -> [UInt8] {
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var bytes: [UInt8] = []
        for index in 0..<3000 {
            var line: [UInt8] = []
            let length = index % 97 == 0 ? 60_000 + next(140_000) : next(200)
            while line.count < length {
                switch next(12) {
                case 0: line += Array("needle".utf8)
                case 1: line += [0x00]
                case 2: line += [0xFF, 0xC3]
                case 3: line += Array("ERROR\r".utf8)
                case 4: line += Array("password=hunter2 ".utf8)
                default: line += Array("abcdefghij".utf8.prefix(1 + next(10)))
                }
            }
            bytes += line
            if index % 5 == 0 { bytes.append(0x0D) }  // CRLF
            if index < 2999 { bytes.append(0x0A) }
        }
        return bytes
    }

    static let awkwardRules = """
        - rule: needle
          log: /var/log/a.log
          match: 'needle'
        - rule: crlf
          log: /var/log/a.log
          match: ['ERROR\\r$', '\\r$']
        - rule: secret
          log: /var/log/a.log
          match: 'password=\\S+'
        - rule: every
          log: /var/log/a.log

        """

    @Test func countsAndSamplesDoNotDependOnTheThreadCount() throws {
        let dir = TempDirectory("match-threads")
        defer { dir.remove() }
        dir.write("rules.yaml", Self.awkwardRules)
        dir.writeBytes("a.log", Self.awkwardLog(seed: 1))
        dir.writeBytes("b.log", Self.awkwardLog(seed: 2))
        dir.write("empty.log", "")
        // A split right after a newline: two equal lines, two threads.
        dir.write(
            "halves.log",
            String(repeating: "x", count: 99) + "needle\n" + String(repeating: "y", count: 99) + "needle\n"
        )
        let files = ["a.log", "empty.log", "b.log", "halves.log"].map { dir.path + "/" + $0 }
        func run(_ threads: Int, _ extra: [String] = []) throws -> [String] {
            let result = try VigilBinary.run(
                ["match", "--rules", dir.path + "/rules.yaml", "--threads", String(threads)] + extra + files
            )
            #expect(result.code == 0, "\(result.err)")
            // Everything but the timings. Split on "\n" bytes: in Swift "\r\n" is one Character.
            let lines = result.out.utf8.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
            return lines.filter { !$0.hasPrefix("vigil: ") && !$0.hasPrefix("patterns: ") }
                + lines.filter { $0.hasPrefix("vigil: ") }.map { String($0.prefix { $0 != ";" }) }
        }
        let one = try run(1)
        #expect(one.last?.hasPrefix("vigil: 6002 lines in 4 files, ") == true, "\(one.last ?? "")")
        #expect(
            one.contains { $0.hasPrefix("every (") && $0.hasSuffix(": 6002 lines (no match: patterns, so every line)") }
        )
        // Lines with a needle in one of their 64 KiB pieces, counted here without vigil.
        let needles = [Self.awkwardLog(seed: 1), Self.awkwardLog(seed: 2)].map(Self.linesWithANeedle).reduce(2, +)
        #expect(one.contains { $0.hasPrefix("needle (") && $0.hasSuffix(": \(needles) lines") }, "\(one)")
        for threads in [2, 3, 5] {
            let many = try run(threads)
            #expect(many == one, "--threads \(threads) differs from --threads 1")
        }
        for threads in [1, 2, 3] {
            let counted = try VigilBinary.run(
                ["match", "--rules", dir.path + "/rules.yaml", "--count-only", "--threads", String(threads)] + files
            )
            #expect(
                counted.out
                    == one.last.map { line in
                        let matched = line.split(separator: " ")[6]
                        return "\(matched) 6002\n"
                    },
                "--threads \(threads)"
            )
        }
        // The summary says how many threads matched.
        let summary = try VigilBinary.run(["match", "--rules", dir.path + "/rules.yaml", "--threads", "3"] + files)
        #expect(summary.out.contains(" pattern; 3 threads, "), "\(summary.out.suffix(200))")
        // Two threads on two equal lines: the second thread's part starts right after the first newline.
        let halves = try VigilBinary.run([
            "match", "--rules", dir.path + "/rules.yaml", "--count-only", "--threads", "2", dir.path + "/halves.log",
        ])
        #expect(halves.out == "2 2\n")
    }

    /// The lines of `bytes` with "needle" inside one of their 64 KiB pieces (as vigil matches them).
    static func linesWithANeedle(_ bytes: [UInt8]) -> Int {
        let needle = Array("needle".utf8)
        let piece = 64 * 1024
        return bytes.split(separator: 0x0A, omittingEmptySubsequences: false).count { line in
            let line = Array(line)
            return stride(from: 0, to: max(1, line.count), by: piece).contains { start in
                let part = Array(line[start..<min(line.count, start + piece)])
                return part.count >= needle.count
                    && (0...(part.count - needle.count)).contains { Array(part[$0..<($0 + needle.count)]) == needle }
            }
        }
    }

    @Test func theSecondRunLoadsThePatternsFromTheCache() throws {
        let dir = TempDirectory("match-cache")
        defer { dir.remove() }
        dir.write("rules.yaml", Self.rules)
        dir.write("app.log", Self.log)
        let arguments = [
            "match", "--rules", dir.path + "/rules.yaml", "--cache", dir.path + "/cache", dir.path + "/app.log",
        ]
        let first = try VigilBinary.run(arguments)
        #expect(first.code == 0, "\(first)")
        let firstLines = first.out.split(separator: "\n").map(String.init)
        #expect(
            firstLines.contains {
                $0.hasPrefix("patterns: compiled in ") && $0.contains(" (cached in '\(dir.path)/cache/patterns-")
            },
            "\(firstLines)"
        )
        let second = try VigilBinary.run(arguments)
        let secondLines = second.out.split(separator: "\n").map(String.init)
        #expect(secondLines.contains { $0.hasPrefix("patterns: loaded from cache in ") }, "\(secondLines)")
        #expect(second.err.isEmpty, "\(second.err)")
        // The same counts either way, and --count-only prints nothing more.
        #expect(
            firstLines.filter { $0.contains(" lines") && !$0.hasPrefix("vigil:") }
                == secondLines.filter {
                    $0.contains(" lines") && !$0.hasPrefix("vigil:")
                }
        )
        let counted = try VigilBinary.run(Array(arguments.dropLast()) + ["--count-only", dir.path + "/app.log"])
        #expect(counted.out == "5 7\n")

        // The default is $XDG_CACHE_HOME/vigil; --no-cache neither reads nor writes it.
        let xdg = dir.path + "/xdg"
        let plain = ["match", "--rules", dir.path + "/rules.yaml", dir.path + "/app.log"]
        _ = try VigilBinary.run(plain, environment: ["XDG_CACHE_HOME": xdg])
        let defaulted = try VigilBinary.run(plain, environment: ["XDG_CACHE_HOME": xdg])
        #expect(defaulted.out.contains("patterns: loaded from cache in "), "\(defaulted.out)")
        #expect(defaulted.out.contains("('\(xdg)/vigil/patterns-"), "\(defaulted.out)")
        let uncached = try VigilBinary.run(plain + ["--no-cache"], environment: ["XDG_CACHE_HOME": xdg])
        #expect(
            uncached.out.split(separator: "\n").contains { $0.hasPrefix("patterns: compiled in ") && !$0.contains("(") }
        )

        // A default directory that belongs to someone else (sudo with the caller's $HOME) is left alone.
        if geteuid() == 0 {
            let theirs = dir.path + "/theirs"
            #expect(mkdir(theirs, 0o755) == 0 && chown(theirs, 65534, 65534) == 0)
            let sudo = try VigilBinary.run(plain, environment: ["XDG_CACHE_HOME": theirs])
            #expect(sudo.code == 0 && sudo.err.isEmpty, "\(sudo)")
            #expect(
                sudo.out.split(separator: "\n").contains { $0.hasPrefix("patterns: compiled in ") && !$0.contains("(") }
            )
            #expect(access(theirs + "/vigil", F_OK) != 0)
        }

        // A cache others can write is not used, and says so on stderr; the run still succeeds.
        #expect(chmod(dir.path + "/cache", 0o777) == 0)
        let unsafe = try VigilBinary.run(arguments)
        #expect(unsafe.code == 0)
        #expect(
            unsafe.err
                == "vigil: could not use the compiled-pattern cache: the cache directory '\(dir.path)/cache' is writable by group or others (mode 0777); compiled the patterns instead, ignoring\n"
        )
        #expect(
            unsafe.out.split(separator: "\n").contains { $0.hasPrefix("patterns: compiled in ") && !$0.contains("(") }
        )
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

extension TempDirectory {
    /// Writes raw bytes (NUL, invalid UTF-8), which a `String` cannot carry.
    func writeBytes(_ name: String, _ bytes: [UInt8]) {
        let fd = open(path + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
