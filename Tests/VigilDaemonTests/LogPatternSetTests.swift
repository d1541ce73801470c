import Testing
import VigilCore
import VigilDaemon
import VigilRules
import VigilSystem
import VigilTestSupport

/// A `match:` pattern written on line `line` of `rules.yaml`, its scalar starting at column 12 (as in
/// `    match: 'PATTERN'` the quote is at 11), so an offset maps to column 12 + offset.
func logPattern(_ expression: String, caseless: Bool = false, line: Int = 3, names: [String] = []) -> LogPattern {
    LogPattern(
        expression: expression,
        caseless: caseless,
        location: SourceLocation(file: "rules.yaml", line: line, column: 12),
        columnOffset: 0,
        captureNames: names
    )
}

/// A log rule on `/var/log/app.log` with `patterns`.
func logRule(_ id: String, _ patterns: [LogPattern], actions: [ActionSpec] = []) -> Rule {
    let location = SourceLocation(file: "rules.yaml", line: 1, column: 3)
    return Rule(
        id: id,
        location: location,
        severity: .warning,
        description: nil,
        message: MessageTemplate(segments: [.literal(id)], source: id),
        subject: .log(
            LogSubject(
                paths: [PathPattern(raw: "/var/log/app.log", directory: "/var/log", name: .exact("app.log"))],
                patterns: patterns
            )
        ),
        actions: actions.isEmpty ? [.alert(sinks: nil, location: location)] : actions,
        enabled: true,
        tags: []
    )
}

/// The rule indexes `set` reports for `line`.
func matches(_ set: LogPatternSet, _ scratch: LogPatternSet.Scratch, _ line: String) -> [Int] {
    var found: [Int] = []
    var text = line
    text.withUTF8 { set.match(UnsafeRawBufferPointer($0), scratch: scratch) { found.append($0) } }
    return found
}

func captures(_ set: LogPatternSet, _ rule: Int, _ line: String) -> [String] {
    var text = line
    return text.withUTF8 { bytes in
        set.captures(ruleIndex: rule, line: UnsafeRawBufferPointer(bytes)).map { "\($0.name)=\($0.value)" }
    }
}

/// The compiled diagnostics of `rules`, or nil when they compile.
func failure(_ rules: [Rule]) -> [RuleDiagnostic]? {
    do {
        _ = try LogPatternSet(rules: rules)
        return nil
    } catch {
        return error.diagnostics
    }
}

/// One Vectorscan database for every log rule, against the real engines (Vectorscan and PCRE2).
@Suite struct LogPatternSetTests {
    @Test func rulesAreReportedOnceEachInAscendingOrder() throws {
        let set = try LogPatternSet(rules: [
            logRule("ssl", [logPattern("SSL certificate verification disabled")]),
            logRule(
                "failed",
                [logPattern("Failed password for (invalid user )?\\w+"), logPattern("authentication failure")]
            ),
            logRule("upload", [logPattern("^\\S+ \\S+ UPLOAD ")]),
            logRule("warn", [logPattern(" WARN ")]),
        ])
        let scratch = set.makeScratch()
        #expect(set.ruleCount == 4)
        #expect(
            matches(
                set,
                scratch,
                "2025-04-13 07:15:22 UPLOAD WARN [SSLConnector] SSL certificate verification disabled"
            )
                == [0, 2, 3]
        )
        // Both patterns of rule 1 match: it is reported once.
        #expect(matches(set, scratch, "Failed password for root; authentication failure") == [1])
        #expect(matches(set, scratch, "all quiet") == [])
        #expect(matches(set, scratch, "") == [])
        // The seen-bits are cleared between lines.
        #expect(matches(set, scratch, "x WARN y") == [3])
    }

    @Test func caselessPatternsIgnoreCaseAndOthersDoNot() throws {
        let set = try LogPatternSet(rules: [
            logRule("a", [logPattern("insecure flag", caseless: true)]),
            logRule("b", [logPattern("insecure flag")]),
            logRule("c", [logPattern("(?i)ERROR")]),
        ])
        let scratch = set.makeScratch()
        #expect(matches(set, scratch, "Connected with INSECURE Flag") == [0])
        #expect(matches(set, scratch, "connected with insecure flag") == [0, 1])
        #expect(matches(set, scratch, "an error") == [2])
    }

    @Test func logRulesWithoutPatternsMatchEveryLineAndOtherKindsNone() throws {
        let configRule = Rule(
            id: "cfg",
            location: SourceLocation(file: "rules.yaml", line: 9, column: 3),
            severity: .critical,
            description: nil,
            message: MessageTemplate(segments: [], source: ""),
            subject: .config(
                ConfigSubject(
                    path: PathPattern(raw: "/etc/a.conf", directory: "/etc", name: .exact("a.conf")),
                    format: .ini,
                    trigger: .changes(["*"])
                )
            ),
            actions: [],
            enabled: true,
            tags: []
        )
        let set = try LogPatternSet(rules: [
            logRule("all", []), configRule, logRule("ssl", [logPattern("SSL")]), logRule("every", []),
        ])
        let scratch = set.makeScratch()
        #expect(matches(set, scratch, "SSL off") == [0, 2, 3])
        #expect(matches(set, scratch, "nothing") == [0, 3])
        #expect(matches(set, scratch, "") == [0, 3])
        #expect(set.matchesEveryLine(ruleIndex: 0))
        #expect(!set.matchesEveryLine(ruleIndex: 2))
        // Only rules without any pattern at all: no database is needed.
        let bare = try LogPatternSet(rules: [logRule("all", [])])
        #expect(matches(bare, bare.makeScratch(), "x") == [0])
    }

    @Test func aThousandRulesInOneDatabase() throws {
        var rules: [Rule] = []
        for index in 0..<1000 {
            rules.append(logRule("r\(index)", [logPattern("event-\(index) (ok|failed) code=[0-9]{3}\\b")]))
        }
        let set = try LogPatternSet(rules: rules)
        let scratch = set.makeScratch()
        #expect(matches(set, scratch, "event-417 failed code=503") == [417])
        #expect(
            matches(set, scratch, "event-4 ok code=200 event-999 failed code=500 event-41 ok code=404") == [4, 41, 999]
        )
        #expect(matches(set, scratch, "event-417 failed code=5034") == [])
        // Every rule that matches, in order, when one line holds many.
        let all = (0..<1000).map { "event-\($0) ok code=200" }.joined(separator: " ")
        #expect(matches(set, scratch, all) == Array(0..<1000))
    }

    @Test func aCacheDirectoryGivesTheSameMatchesFromTheSecondSetOn() throws {
        let tree = TempTree("log-set-cache")
        defer { tree.remove() }
        var rules: [Rule] = [logRule("all", [])]
        for index in 0..<300 {
            rules.append(logRule("r\(index)", [logPattern("event-\(index) (ok|failed) code=[0-9]{3}\\b")]))
        }
        let first = try LogPatternSet(rules: rules, cacheDirectory: tree.path("cache"))
        #expect(first.databaseOrigin?.source == .compiled)
        #expect(first.databaseOrigin?.stored == true)
        let second = try LogPatternSet(rules: rules, cacheDirectory: tree.path("cache"))
        #expect(second.databaseOrigin?.source == .loadedFromCache)
        let line = "event-4 ok code=200 event-299 failed code=500 event-41 ok code=404"
        #expect(matches(second, second.makeScratch(), line) == [0, 5, 42, 300])
        #expect(matches(first, first.makeScratch(), line) == [0, 5, 42, 300])
        // Without patterns there is no database, so nothing to cache.
        #expect(
            try LogPatternSet(rules: [logRule("all", [])], cacheDirectory: tree.path("cache")).databaseOrigin == nil
        )
    }

    @Test func manyHitsAreMergedWithEveryLineRulesInOrder() throws {
        // More than 32 rules match: the seen bits give the order instead of sorting.
        var rules: [Rule] = []
        for index in 0..<50 {
            rules.append(index % 7 == 0 ? logRule("all\(index)", []) : logRule("x\(index)", [logPattern("x")]))
        }
        let set = try LogPatternSet(rules: rules)
        let scratch = set.makeScratch()
        #expect(matches(set, scratch, "x") == Array(0..<50))
        #expect(matches(set, scratch, "y") == Array(stride(from: 0, to: 50, by: 7)))
        #expect(matches(set, scratch, "xx") == Array(0..<50))
    }

    @Test func namedGroupsOfTheFirstMatchingPatternOnly() throws {
        let set = try LogPatternSet(rules: [
            logRule(
                "login",
                [
                    logPattern(
                        "Failed password for (?:invalid user )?(?<user>\\w+) from (?<ip>[0-9.]+)",
                        names: ["user", "ip"]
                    ),
                    logPattern("(?P<user>\\w+) locked out(?: after (?<tries>\\d+))?", names: ["user", "tries"]),
                ]
            ),
            logRule("plain", [logPattern("SSL")]),
        ])
        let scratch = set.makeScratch()
        let line = "sshd: Failed password for invalid user admin from 203.0.113.5 port 22"
        #expect(matches(set, scratch, line) == [0])
        #expect(captures(set, 0, line) == ["user=admin", "ip=203.0.113.5"])
        // The second pattern: a group that took no part is left out.
        #expect(captures(set, 0, "bob locked out") == ["user=bob"])
        #expect(captures(set, 0, "bob locked out after 5") == ["user=bob", "tries=5"])
        // Lines that did not match, rules without groups, indexes out of range: nothing.
        #expect(captures(set, 0, "all quiet") == [])
        #expect(captures(set, 1, "SSL") == [])
        #expect(captures(set, 7, line) == [])
    }

    @Test func namedGroupValuesAreDecodedLossily() throws {
        let set = try LogPatternSet(rules: [logRule("u", [logPattern("user=(?<user>\\S+)", names: ["user"])])])
        let line: [UInt8] = Array("user=".utf8) + [0x61, 0xFF, 0x00, 0x62]
        let values = line.withUnsafeBytes { set.captures(ruleIndex: 0, line: $0) }
        #expect(values.map(\.value) == ["a\u{FFFD}\u{0}b"])
    }

    @Test func matchingPatternsExplainsWhichPatternMatched() throws {
        let set = try LogPatternSet(rules: [
            logRule("r", [logPattern("alpha"), logPattern("beta"), logPattern("gamma")])
        ])
        var line = "beta and alpha"
        let found = line.withUTF8 { set.matchingPatterns(ruleIndex: 0, line: UnsafeRawBufferPointer($0)) }
        #expect(found == [0, 1])
    }

    @Test func anUnbalancedParenthesisIsReportedAtTheGroupItOpens() {
        let diagnostics = failure([logRule("bad", [logPattern("login (failed|denied")])])
        #expect(
            diagnostics?.map(\.description) == [
                "rules.yaml:3:18: error: pattern 'login (failed|denied' cannot be compiled: Missing close parenthesis for"
                    + " group started at index 6; close the group with ')', or write '\\(' for a literal parenthesis"
            ]
        )
    }

    @Test func aBackreferenceIsReportedWithVectorscansReasonAndTheFix() {
        let diagnostics = failure([logRule("repeat", [logPattern("(\\w+) \\1")])])
        #expect(diagnostics?.count == 1)
        let message = diagnostics?.first?.message ?? ""
        #expect(message.hasPrefix("pattern '(\\w+) \\1' cannot be compiled: Back-references are unsupported;"))
        #expect(message.contains("Vectorscan does not support backreferences"))
        #expect(diagnostics?.first?.location == SourceLocation(file: "rules.yaml", line: 3, column: 12))
    }

    @Test func everyBadPatternIsReportedInOnePass() {
        let diagnostics = failure([
            logRule("ok", [logPattern("fine")]),
            logRule("class", [logPattern("level=[z-a]", line: 7)]),
            logRule("paren", [logPattern("oops)", line: 9), logPattern("x{3,2}", line: 10)]),
            logRule("look", [logPattern("(?<=user=)\\w+", line: 12)]),
        ])
        let lines = diagnostics?.map(\.description) ?? []
        #expect(lines.count == 4)
        #expect(
            lines.first?.hasPrefix(
                "rules.yaml:7:21: error: pattern 'level=[z-a]' cannot be compiled: Range out of order"
            ) == true
        )
        #expect(
            lines.dropFirst().first?.hasPrefix(
                "rules.yaml:9:16: error: pattern 'oops)' cannot be compiled: Unmatched parentheses"
            ) == true
        )
        #expect(
            lines.dropFirst(2).first?.hasPrefix(
                "rules.yaml:10:13: error: pattern 'x{3,2}' cannot be compiled: Invalid repeat"
            ) == true
        )
        #expect(lines.last?.contains("Vectorscan does not support lookahead or lookbehind assertions") == true)
    }

    @Test func aPatternThatMatchesAnEmptyLineIsRefusedWithTheReason() {
        let diagnostics = failure([logRule("empty", [logPattern("(debug)?")])])
        #expect(diagnostics?.first?.message.contains("matches an empty line matches every line") == true)
    }

    @Test func anUnmappableColumnFallsBackToTheScalar() {
        var pattern = logPattern("a(b")
        pattern.columnOffset = nil
        #expect(failure([logRule("r", [pattern])])?.first?.location == pattern.location)
    }

    @Test func checkAlsoReportsSanitizePatterns() {
        let spec = SanitizeSpec(
            location: SourceLocation(file: "rules.yaml", line: 20, column: 5),
            patterns: [logPattern("ssn=[0-9]{3}-[0-9]{2}-[0-9]{4}", line: 21), logPattern("(a)\\1", line: 22)]
        )
        let rules = [logRule("ok", [logPattern("fine")]), logRule("sanitize", [], actions: [.sanitize(spec)])]
        let diagnostics = LogPatternSet.check(rules: rules)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.location.line == 22)
        #expect(diagnostics.first?.message.contains("backreferences") == true)
        #expect(LogPatternSet.check(rules: [logRule("ok", [logPattern("fine")])]).isEmpty)
    }
}

/// Custom `sanitize` patterns: every byte of every match becomes `*`.
@Suite struct CustomSecretPatternsTests {
    func mask(_ patterns: CustomSecretPatterns, _ line: String) -> (String, Int) {
        var bytes = Array(line.utf8)
        let scratch = patterns.makeScratch()
        let changed = bytes.withUnsafeMutableBytes { patterns.mask($0, scratch: scratch) }
        return (String(decoding: bytes, as: UTF8.self), changed)
    }

    @Test func wholeMatchesAreMaskedAndMaskingIsIdempotent() throws {
        let patterns = try CustomSecretPatterns(patterns: [
            logPattern("ssn=[0-9]{3}-[0-9]{2}-[0-9]{4}"), logPattern("session [a-f0-9]+", caseless: true),
        ])
        let (masked, changed) = mask(patterns, "ssn=123-45-6789 and SESSION 9f8e7d plus ssn=987-65-4321")
        #expect(masked == "*************** and ************** plus ***************")
        #expect(changed == 15 + 14 + 15)
        #expect(mask(patterns, masked) == (masked, 0))
        #expect(mask(patterns, "clean line") == ("clean line", 0))
    }

    @Test func aGrowingMatchIsMaskedToItsLongestEnd() throws {
        let patterns = try CustomSecretPatterns(patterns: [logPattern("key-[A-Z]+")])
        #expect(mask(patterns, "x key-ABCDEF y").0 == "x ********** y")
    }

    @Test func aRefusedPatternIsADiagnostic() {
        do {
            _ = try CustomSecretPatterns(patterns: [logPattern("(?=secret)\\w+", line: 30)])
            Issue.record("compiled")
        } catch {
            #expect(error.diagnostics.first?.location.line == 30)
        }
    }
}

/// The same, from rule files as users write them: the positions of the parser's scalars reach the diagnostics.
@Suite struct LogPatternSetYAMLTests {
    func compile(_ text: String) throws -> [Rule] {
        let compilation = RuleCompiler.compile(sources: [(file: "rules.yaml", text: text)])
        #expect(compilation.errorCount == 0, "\(compilation.diagnostics)")
        return try #require(compilation.ruleSet).rules
    }

    @Test func errorsPointAtTheColumnInThePatternForEveryScalarStyle() throws {
        let rules = try compile(
            """
            - rule: plain
              log: /var/log/a.log
              match: login (failed|denied
            - rule: quoted
              log: /var/log/a.log
              match: 'user=(\\w+) again \\1'
            - rule: listed
              log: /var/log/a.log
              match:
                - fine
                - "level=[z-a]"

            """
        )
        let lines = LogPatternSet.check(rules: rules).map(\.description)
        #expect(lines.count == 3, "\(lines)")
        // `match: login (failed|denied`: the scalar starts at column 10, the group at offset 6.
        #expect(
            lines.first?.hasPrefix("rules.yaml:3:16: error: pattern 'login (failed|denied' cannot be compiled") == true
        )
        // A backreference has no index in Vectorscan's message: the pattern's first character (after the quote).
        #expect(lines.dropFirst().first?.hasPrefix("rules.yaml:6:11: error: pattern 'user=(\\w+) again \\1'") == true)
        #expect(lines.dropFirst().first?.contains("Vectorscan does not support backreferences") == true)
        // `- "level=[z-a]"`: a double-quoted scalar has no exact column mapping (the parser gives none), so the
        // diagnostic points at the scalar (its quote, column 7) and Vectorscan's index stays in the message.
        #expect(lines.last?.hasPrefix("rules.yaml:11:7: error: pattern 'level=[z-a]'") == true)
        #expect(lines.last?.contains("at index 9") == true)
    }

    @Test func theShippedRulesCompileAndMatchTheSeedsLines() throws {
        let compilation = RuleCompiler.compile(paths: [VigilSourceTree.root + "/rules"])
        let rules = try #require(compilation.ruleSet).rules.filter(\.isLogRule)
        #expect(LogPatternSet.check(rules: rules).isEmpty)
        let set = try LogPatternSet(rules: rules)
        let line =
            "2025-04-13 07:15:22 UPLOAD WARN [SSLConnector] SSL certificate verification disabled for endpoint: https://api.analytics-partner.com"
        var text = line
        var matched: [String] = []
        text.withUTF8 {
            set.match(UnsafeRawBufferPointer($0), scratch: set.makeScratch()) { matched.append(rules[$0].id) }
        }
        #expect(matched.contains("upload-ssl-verification-disabled-logged"), "\(matched)")
        let index = try #require(rules.firstIndex { $0.id == "upload-ssl-verification-disabled-logged" })
        #expect(captures(set, index, line) == ["endpoint=https://api.analytics-partner.com"])
    }
}

/// The repository root, from this file's path.
enum VigilSourceTree {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(3)  // Tests/VigilDaemonTests/LogPatternSetTests.swift
        return parts.joined(separator: "/")
    }()
}
