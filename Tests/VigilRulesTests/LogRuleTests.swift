import Testing
import VigilCore
import VigilRules

/// The log subject of a rule, or a recorded issue.
func logSubject(_ rule: Rule, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> LogSubject {
    guard case .log(let log) = rule.subject else {
        Issue.record("not a log rule: \(String(describing: rule.subject))", sourceLocation: sourceLocation)
        throw LogRuleTestError.wrongSubject
    }
    return log
}

/// The `sanitize` options of action `index`.
func sanitizeSpec(_ rule: Rule, _ index: Int) -> SanitizeSpec? {
    guard index < rule.actions.count, case .sanitize(let spec) = rule.actions[index] else { return nil }
    return spec
}

/// The patterns of a one-rule log file whose `match:` is `written` (as it stands after `match: `).
func logPatterns(matching written: String) throws -> [LogPattern] {
    try logSubject(try onlyRule("- rule: r\n  log: /var/log/a.log\n  match: \(written)\n")).patterns
}

enum LogRuleTestError: Error {
    case wrongSubject
}

/// A location in the in-memory file `test.yaml`.
func testLocation(_ line: Int, _ column: Int) -> VigilRules.SourceLocation {
    VigilRules.SourceLocation(file: "test.yaml", line: line, column: column)
}

@Suite struct LogFixtureTests {
    @Test func logFixtureCompilesToTheDocumentedForms() throws {
        let compilation = try compileFixture("valid/log.yaml")
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let set = try #require(compilation.ruleSet)
        #expect(
            set.rules.map(\.id) == [
                "ssl-verification-disabled", "ssh-brute-force", "every-upload-line", "mask-secrets", "redacted-copies",
            ]
        )
        #expect(set.rules.allSatisfy { $0.isLogRule && !$0.isStateRule && !$0.isProcessRule })

        let ssl = try logSubject(set.rules[0])
        #expect(
            ssl.paths == [
                PathPattern(
                    raw: "/var/log/analytics/unified/unified_*.log",
                    directory: "/var/log/analytics/unified",
                    name: .glob("unified_*.log")
                )
            ]
        )
        #expect(
            ssl.patterns == [
                LogPattern(
                    expression: #"SSL certificate verification disabled for endpoint: (?<endpoint>\S+)"#,
                    caseless: true,
                    location: VigilRules.SourceLocation(file: "valid/log.yaml", line: 5, column: 10),
                    columnOffset: 1,
                    captureNames: ["endpoint"]
                )
            ]
        )
        #expect(ssl.count == nil)
        #expect(ssl.start == .end)
        #expect(set.rules[0].message.fieldNames == ["rule", "endpoint", "path"])
        #expect(set.rules[0].severity == .critical)

        let ssh = try logSubject(set.rules[1])
        #expect(ssh.paths.map(\.name) == [.exact("auth.log"), .glob("auth.log.[0-9]")])
        #expect(ssh.patterns.map(\.captureNames) == [["user", "ip"], ["user", "ip"]])
        #expect(ssh.patterns.map(\.columnOffset) == [0, nil])
        #expect(ssh.patterns.map(\.caseless) == [false, false])
        #expect(ssh.patterns[1].expression == #"Invalid user (?<user>\S+) from (?<ip>\S+)"#)
        #expect(ssh.captureNames == ["user", "ip"])
        #expect(ssh.start == .start)
        let count = try #require(ssh.count)
        #expect(count.threshold == 5)
        #expect(count.windowMilliseconds == 60_000)
        #expect(count.key?.segments == [.field("user"), .literal("@"), .field("ip")])
        #expect(set.rules[1].message.source == "{rule}: {count} matching lines within {window} for {key}")

        let every = try logSubject(set.rules[2])
        #expect(every.patterns.isEmpty)
        #expect(every.count == LogCount(threshold: 1000, windowMilliseconds: 60_000, key: nil))
        #expect(set.rules[2].message.source == "{rule}: {count} lines within {window}")

        let mask = set.rules[3]
        #expect(
            try logSubject(mask).paths.map(\.normalised) == [
                "/var/log/analytics/*.log", "/var/log/analytics/unified/*.log",
            ]
        )
        #expect(mask.message.source == "{rule}: {line}")
        let bare = try #require(sanitizeSpec(mask, 0))
        #expect(bare == SanitizeSpec(location: VigilRules.SourceLocation(file: "valid/log.yaml", line: 25, column: 7)))
        #expect(bare.detectors == Set(SecretDetector.allCases))
        #expect(bare.inPlace && bare.copyDirectory == nil && bare.patterns.isEmpty)

        let copies = set.rules[4]
        #expect(copies.actions.count == 2)
        let spec = try #require(sanitizeSpec(copies, 1))
        #expect(spec.location == VigilRules.SourceLocation(file: "valid/log.yaml", line: 31, column: 7))
        #expect(spec.detectors == [.passwords, .cards])
        #expect(spec.patterns.map(\.expression) == ["token=[A-Za-z0-9]+"])
        #expect(spec.patterns.map(\.caseless) == [false])
        #expect(spec.patterns.map(\.columnOffset) == [1])
        #expect(!spec.inPlace)
        #expect(spec.copyDirectory == "/var/log/analytics/sanitized")
    }

    @Test func logFieldsAreTheDocumentedOnes() {
        #expect(
            MessageTemplate.logFields == [
                "rule", "severity", "host", "path", "line", "offset", "count", "key", "window",
            ]
        )
    }
}

@Suite struct LogSubjectTests {
    @Test func aRuleWithoutMatchSeesEveryLine() throws {
        let rule = try onlyRule("- rule: r\n  log: /var/log/a.log\n")
        let log = try logSubject(rule)
        #expect(log.patterns.isEmpty)
        #expect(log.count == nil)
        #expect(log.start == .end)
        #expect(rule.message.source == "{rule}: {line}")
        #expect(rule.actions.count == 1)
    }

    @Test(arguments: [
        ("'/var/log/a.log'", ["/var/log/a.log"]),
        ("[/var/log/a.log]", ["/var/log/a.log"]),
        (
            "[/var/log//a.log, /var/log/./b.log, \"/var/log/c*.log\"]",
            ["/var/log/a.log", "/var/log/b.log", "/var/log/c*.log"]
        ),
        (
            "\n    - /srv/app/log/app.log\n    - /srv/app/log/app.log.1",
            ["/srv/app/log/app.log", "/srv/app/log/app.log.1"]
        ),
    ])
    func pathsAreOneOrAList(_ written: String, _ expected: [String]) throws {
        let rule = try onlyRule("- rule: r\n  log: \(written)\n")
        #expect(try logSubject(rule).paths.map(\.normalised) == expected)
    }

    @Test(arguments: [("end", LogStart.end), ("start", LogStart.start), ("'start'", LogStart.start)])
    func fromIsEndOrStart(_ written: String, _ expected: LogStart) throws {
        let rule = try onlyRule("- rule: r\n  log: /var/log/a.log\n  from: \(written)\n")
        #expect(try logSubject(rule).start == expected)
    }

    @Test func caselessAppliesToEveryPattern() throws {
        let rule = try onlyRule("- rule: r\n  log: /var/log/a.log\n  match: [a, b]\n  caseless: true\n")
        #expect(try logSubject(rule).patterns.map(\.caseless) == [true, true])
    }

    @Test func aLeadingCaselessFlagMakesThatPatternCaseless() throws {
        let patterns = try logPatterns(matching: "['(?i)error', 'Error']")
        #expect(patterns.map(\.caseless) == [true, false])
        #expect(patterns[0].expression == "(?i)error")
    }

    @Test func countKeyMayUseThePath() throws {
        let rule = try onlyRule(
            "- rule: r\n  log: /var/log/*.log\n  count: { at_least: 3, within: 500ms, by: \"{path}\" }\n"
        )
        let count = try #require(try logSubject(rule).count)
        #expect(count == LogCount(threshold: 3, windowMilliseconds: 500, key: try MessageTemplate(parsing: "{path}")))
        #expect(rule.message.source == "{rule}: {count} lines within {window} for {key}")
    }

    @Test func countWithoutByCountsAllMatchingLinesTogether() throws {
        let rule = try onlyRule(
            "- rule: r\n  log: /var/log/a.log\n  match: 'Out of memory'\n  count: { at_least: 2, within: 10m }\n"
        )
        #expect(try logSubject(rule).count == LogCount(threshold: 2, windowMilliseconds: 600_000, key: nil))
        #expect(rule.message.source == "{rule}: {count} matching lines within {window}")
    }

    @Test func messagesMayUseBuiltInFieldsAndCaptureNamesOfEveryPattern() throws {
        let rule = try onlyRule(
            """
            - rule: r
              log: /var/log/auth.log
              match: ['Failed password for (?<user>\\S+)', 'Connection closed by (?<ip>\\S+)']
              message: "{rule} {severity} {host} {path} {line} {offset} {count} {key} {window} {user} {ip}"
            """
        )
        #expect(rule.message.fieldNames.count == 11)
    }

    @Test func defaultMessagesFollowCountAndMatch() throws {
        let path = PathPattern(raw: "/a", directory: "/", name: .exact("a"))
        let pattern = LogPattern(
            expression: "x",
            caseless: false,
            location: testLocation(1, 1),
            columnOffset: 0,
            captureNames: []
        )
        let key = try MessageTemplate(parsing: "{user}")
        let cases: [(LogSubject, String)] = [
            (LogSubject(paths: [path], patterns: []), "{rule}: {line}"),
            (LogSubject(paths: [path], patterns: [pattern]), "{rule}: {line}"),
            (
                LogSubject(
                    paths: [path],
                    patterns: [pattern],
                    count: LogCount(threshold: 2, windowMilliseconds: 1000, key: nil)
                ),
                "{rule}: {count} matching lines within {window}"
            ),
            (
                LogSubject(
                    paths: [path],
                    patterns: [pattern],
                    count: LogCount(threshold: 2, windowMilliseconds: 1000, key: key)
                ),
                "{rule}: {count} matching lines within {window} for {key}"
            ),
            (
                LogSubject(
                    paths: [path],
                    patterns: [],
                    count: LogCount(threshold: 2, windowMilliseconds: 1000, key: key)
                ),
                "{rule}: {count} lines within {window} for {key}"
            ),
        ]
        for (subject, source) in cases {
            #expect(MessageTemplate.defaultSource(for: subject) == source)
            #expect(throws: Never.self) { try MessageTemplate(parsing: source) }
        }
    }

    @Test func aWrittenMessageIsKept() throws {
        let rule = try onlyRule(
            "- rule: r\n  log: /var/log/a.log\n  match: 'x (?<n>\\d+)'\n  count: { at_least: 2, within: 1s }\n  message: \"{n}\"\n"
        )
        #expect(rule.message.source == "{n}")
        #expect(rule.resolvedMessage == nil)
    }
}

@Suite struct CaptureNameTests {
    @Test(
        arguments: [
            (#"(?<a>x)(?P<b>y)(?'c'z)"#, ["a", "b", "c"]),
            (#"(?:(?<outer>a(?<inner>b)))(?<last>c)"#, ["outer", "inner", "last"]),
            (#"\(?<no>x\)"#, []),
            (#"\\(?<yes>x)"#, ["yes"]),
            (#"[(?<no>)](?<yes>x)"#, ["yes"]),
            (#"[]()?<no>](?<yes>x)"#, ["yes"]),
            (#"[^](?<no>)](?<yes>x)"#, ["yes"]),
            (#"[\](?<no>)](?<yes>x)"#, ["yes"]),
            (#"[[:alpha:](?<no>)](?<yes>x)"#, ["yes"]),
            (#"(?<=a)(?<!b)(?<x>c)"#, ["x"]),
            (#"(?P<x>a)(?P=x)(?P>x)"#, ["x"]),
            (#"\Q(?<no>)\E(?<yes>x)"#, ["yes"]),
            (#"(?# (?<no> )(?<yes>x)"#, ["yes"]),
            (#"(?i)(?<_private9>x)"#, ["_private9"]),
            (#"(?<open"#, []),
            ("plain text", []),
        ] as [(String, [String])]
    )
    func namesInOpeningOrder(_ expression: String, _ names: [String]) throws {
        // A single-quoted YAML scalar holds every expression as written, once its quotes are doubled.
        let patterns = try logPatterns(matching: "'\(expression.replacing("'", with: "''"))'")
        #expect(patterns.map(\.captureNames) == [names])
        #expect(patterns.map(\.expression) == [expression])
    }

    @Test func theSameNameInTwoPatternsIsOneField() throws {
        let log = try logSubject(
            try onlyRule("- rule: r\n  log: /var/log/a.log\n  match: ['(?<user>a)(?<x>b)', '(?<y>c)(?<user>d)']\n")
        )
        #expect(log.patterns.map(\.captureNames) == [["user", "x"], ["y", "user"]])
        #expect(log.captureNames == ["user", "x", "y"])
    }

    @Test func aRepeatedNameIsAnErrorAtItsColumn() {
        // `  match: '(?<a>x)(?<a>y)'`: the quote is column 10, the second name starts at column 11 + 10.
        let compilation = compileText("- rule: r\n  log: /var/log/a.log\n  match: '(?<a>x)(?<a>y)'\n")
        #expect(
            compilation.diagnostics.map(\.description) == [
                "test.yaml:3:21: error: capture name 'a' is used twice in this pattern; give each group its own name, or use one group"
            ]
        )
    }
}

@Suite struct PatternLocationTests {
    @Test(
        arguments: [
            // (value after `match: `, column of the scalar, columnOffset)
            ("abc", 10, 0 as Int?),
            ("'abc'", 10, 1),
            ("'it''s'", 10, nil),
            ("'ab'''", 10, nil),
            ("\"abc\"", 10, nil),
            ("\"a\\\\d\"", 10, nil),
            ("[abc, 'def']", 11, 0),
            (">-\n    abc", 10, nil),
            ("|-\n    abc", 10, nil),
            ("abc\n    def", 10, nil),
            ("'abc\n    def'", 10, nil),
            ("abc # a comment", 10, 0),
        ] as [(String, Int, Int?)]
    )
    func columnOffsetFollowsTheScalarStyle(_ written: String, _ column: Int, _ offset: Int?) throws {
        let pattern = try #require(try logPatterns(matching: written).first)
        #expect(pattern.location == testLocation(3, column))
        #expect(pattern.columnOffset == offset)
    }

    @Test func offsetsMapToColumnsOnTheLine() throws {
        // `  match: 'ab(?<x>c)'`: the quote is column 10, `a` column 11.
        let pattern = try #require(try logPatterns(matching: "'ab(?<x>c)'").first)
        #expect(pattern.location(ofOffset: 0) == testLocation(3, 11))
        #expect(pattern.location(ofOffset: 5) == testLocation(3, 16))
        let plain = try #require(try logPatterns(matching: "ab(c").first)
        #expect(plain.location(ofOffset: 2) == testLocation(3, 12))
    }

    @Test func byteOffsetsAfterNonASCIITextCountCharacters() throws {
        // `Ü` is two bytes in UTF-8 and one column; `(` is byte 3, column 10 + 1 + 2.
        let pattern = try #require(try logPatterns(matching: "'Üb(?<x>c)'").first)
        #expect(pattern.location(ofOffset: 3) == testLocation(3, 13))
        #expect(pattern.location(ofOffset: 0) == testLocation(3, 11))
    }

    @Test func unmappedPatternsPointAtTheScalar() throws {
        let pattern = try #require(try logPatterns(matching: "\"a\\\\d(\"").first)
        #expect(pattern.location(ofOffset: 4) == pattern.location)
    }
}

@Suite struct SanitizeActionTests {
    @Test(arguments: ["sanitize", "{ sanitize: }", "{ sanitize: {} }"])
    func bareSanitizeTakesEveryDefault(_ written: String) throws {
        let rule = try onlyRule("- rule: r\n  log: /var/log/a.log\n  then: [\(written)]\n")
        let spec = try #require(sanitizeSpec(rule, 0))
        #expect(spec == SanitizeSpec(location: testLocation(3, 10)))
    }

    @Test func noDetectorsArePossibleWithPatterns() throws {
        let rule = try onlyRule(
            "- rule: r\n  log: /var/log/a.log\n  then: [{ sanitize: { detectors: [], patterns: 'session=\\w+' } }]\n"
        )
        let spec = try #require(sanitizeSpec(rule, 0))
        #expect(spec.detectors.isEmpty)
        #expect(spec.patterns.map(\.expression) == [#"session=\w+"#])
        #expect(spec.inPlace)
    }

    @Test func everyDetectorHasItsName() throws {
        let names = SecretDetector.allCases.map(\.rawValue).joined(separator: ", ")
        #expect(names == "passwords, bearer-tokens, jwts, aws-keys, private-keys, cards, emails")
        let rule = try onlyRule("- rule: r\n  log: /var/log/a.log\n  then: [{ sanitize: { detectors: [\(names)] } }]\n")
        #expect(sanitizeSpec(rule, 0)?.detectors == Set(SecretDetector.allCases))
    }

    @Test func copiesBesideTheInPlaceMasking() throws {
        let rule = try onlyRule(
            "- rule: r\n  log: /var/log/app/*.log\n  then: [alert, { sanitize: { copy_to: /var/log/app//redacted/. } }]\n"
        )
        let spec = try #require(sanitizeSpec(rule, 1))
        #expect(spec.inPlace)
        #expect(spec.copyDirectory == "/var/log/app/redacted")
    }
}
