import Foundation
import Testing
import VigilCore
import VigilRules

/// Compiles one in-memory source named `test.yaml`.
func compileText(_ text: String, file: String = "test.yaml") -> RuleCompilation {
    RuleCompiler.compile(sources: [(file: file, text: text)])
}

@Suite struct ValidFixtureTests {
    @Test func seedFixtureCompilesToTheExpectedStructure() throws {
        let compilation = try compileFixture("valid/seed.yaml")
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let set = try #require(compilation.ruleSet)
        #expect(
            set.rules.map(\.id) == [
                "upload-ssl-verification-disabled", "upload-config-changed", "upload-config-removed",
                "analytics-limits",
            ]
        )
        #expect(set.sinks.map(\.name) == ["alerts-file", "console"])
        #expect(set.sinks[0].kind == .jsonl(path: "/var/log/vigil/alerts.jsonl"))
        #expect(set.sinks[1].kind == .stdout)
        #expect(set.lists == ["trusted-root-binaries": ["/usr/sbin/sshd", "/usr/sbin/cron"]])
        #expect(set.files == ["valid/seed.yaml"])

        let ssl = set.rules[0]
        #expect(ssl.severity == .critical)
        #expect(ssl.isStateRule)
        #expect(ssl.tags == ["tls", "seed"])
        #expect(ssl.location == SourceLocation(file: "valid/seed.yaml", line: 12, column: 3))
        guard case .config(let config) = ssl.subject, case .when(let condition) = config.trigger,
            case .key(let test, _) = condition, case .equals(let literal) = test.test
        else {
            Issue.record("unexpected subject \(ssl.subject)")
            return
        }
        #expect(
            config.path
                == PathPattern(
                    raw: "/etc/analytics/upload-service.conf",
                    directory: "/etc/analytics",
                    name: .exact("upload-service.conf")
                )
        )
        #expect(test.key == "verify_ssl")
        #expect(literal == .bool(false))
        #expect(
            ssl.message.segments == [
                .literal("SSL verification disabled in "), .field("path"), .literal(" ("), .field("key"),
                .literal(" = "), .field("value"), .literal(")"),
            ]
        )

        let changed = set.rules[1]
        #expect(!changed.isStateRule)
        guard case .config(let changedConfig) = changed.subject, case .changes(let keys) = changedConfig.trigger else {
            Issue.record("unexpected subject \(changed.subject)")
            return
        }
        #expect(keys == ["api_url", "metrics_url"])
        guard case .alert(let sinks, _) = changed.actions.first else { return }
        #expect(sinks == ["alerts-file", "console"])

        let removed = set.rules[2]
        guard case .file(let file) = removed.subject else {
            Issue.record("unexpected subject \(removed.subject)")
            return
        }
        #expect(file.on == [.deleted, .attributes])
        #expect(removed.severity == .warning)
        #expect(removed.message.source == "{rule}: {path}")
        #expect(removed.actions.count == 1)

        let limits = set.rules[3]
        guard case .config(let limitsConfig) = limits.subject, case .when(let limitsCondition) = limitsConfig.trigger
        else {
            Issue.record("unexpected subject \(limits.subject)")
            return
        }
        #expect(limitsConfig.path.directory == "/etc/analytics/conf.d")
        #expect(limitsConfig.path.name == .glob("*.conf"))
        #expect(limitsCondition.keysMentioned() == ["limits.max_connections", "mode", "retries"])
        #expect(limits.message.segments.first == .literal("{limits} in "))
    }

    @Test(arguments: ["valid/empty.yaml", "valid/comments-only.yaml"])
    func emptyFilesHaveNoRules(_ name: String) throws {
        let compilation = try compileFixture(name)
        #expect(compilation.diagnostics.isEmpty)
        #expect(compilation.ruleSet?.rules.isEmpty == true)
    }

    @Test func everyValidFixtureCompilesWithoutDiagnostics() throws {
        for name in fixtureNames("valid") {
            let compilation = try compileFixture("valid/\(name).yaml")
            #expect(compilation.diagnostics.isEmpty, "valid/\(name).yaml: \(compilation.diagnostics)")
        }
    }
}

@Suite struct CompilerBehaviourTests {
    @Test func duplicateRuleIdsAcrossFilesPointAtTheFirstDefinition() {
        let compilation = RuleCompiler.compile(sources: [
            (file: "rules/b.yaml", text: "- rule: x\n  file: /etc/a\n"),
            (file: "rules/a.yaml", text: "# one\n\n- rule: x\n  file: /etc/b\n- sink: s\n  type: stdout\n"),
            (file: "rules/c.yaml", text: "- sink: s\n  type: stdout\n"),
        ])
        #expect(
            compilation.diagnostics.map(\.description) == [
                "rules/a.yaml:3:9: error: duplicate rule id 'x'; first defined at rules/b.yaml:1:3",
                "rules/c.yaml:1:9: error: duplicate sink name 's'; first defined at rules/a.yaml:5:3",
            ]
        )
        #expect(
            compilation.summary == "vigil: 2 errors (1 in 'rules/a.yaml', 1 in 'rules/c.yaml'); no rules were loaded"
        )
    }

    @Test func sinksMayBeDefinedInALaterFile() {
        let compilation = RuleCompiler.compile(sources: [
            (file: "a.yaml", text: "- rule: x\n  file: /etc/a\n  then: [{ alert: [late] }]\n"),
            (file: "b.yaml", text: "- sink: late\n  type: stdout\n"),
        ])
        #expect(compilation.diagnostics.isEmpty)
        #expect(compilation.summary == "vigil: 1 rule and 1 sink loaded from 2 files")
    }

    @Test func unknownSinkWithNoSinksDefinedSaysSo() {
        let compilation = compileText("- rule: x\n  file: /etc/a\n  then:\n    - alert: pager\n")
        #expect(
            compilation.diagnostics.map(\.description) == [
                "test.yaml:4:14: error: unknown sink 'pager'; no sinks are defined, so add an item '- sink: pager' with a type:"
            ]
        )
    }

    @Test func pathsAreNormalised() throws {
        let compilation = compileText("- rule: x\n  file: //etc//./analytics/app.conf/\n")
        let rule = try #require(compilation.ruleSet?.rules.first)
        guard case .file(let file) = rule.subject else { return }
        #expect(file.path.raw == "//etc//./analytics/app.conf/")
        #expect(file.path.directory == "/etc/analytics")
        #expect(file.path.name == .exact("app.conf"))
        #expect(file.path.normalised == "/etc/analytics/app.conf")
        #expect(file.on == Set(FileChangeKind.allCases))
    }

    @Test func fileInRootDirectoryKeepsSlashDirectory() throws {
        let compilation = compileText("- rule: x\n  file: /vigil.conf\n")
        let rule = try #require(compilation.ruleSet?.rules.first)
        guard case .file(let file) = rule.subject else { return }
        #expect(file.path.directory == "/")
        #expect(file.path.normalised == "/vigil.conf")
    }

    @Test func literalTypesFollowTheYAMLType() throws {
        let text = """
            - rule: x
              config: /etc/a
              when:
                all:
                  - { key: A, is: false }
                  - { key: b, is: "false" }
                  - { key: c, is: 80 }
                  - { key: d, is: "80" }
                  - { key: e, is: TRUE }
                  - { key: f, is_not: off }
                  - { key: g, in: [1.5, x, true] }
                  - { key: h, ge: "10" }
            """
        let compilation = compileText(text)
        #expect(compilation.errorCount == 0)
        #expect(
            compilation.diagnostics.map(\.description) == [
                "test.yaml:10:27: warning: 'off' is compared as text, not as a boolean; write true or false to match every spelling (yes/no/on/off/1/0), or quote it"
            ]
        )
        #expect(compilation.summary == "vigil: 1 rule and 0 sinks loaded from 1 file with 1 warning")
        let rule = try #require(compilation.ruleSet?.rules.first)
        guard case .config(let config) = rule.subject, case .when(.all(let conditions)) = config.trigger else {
            Issue.record("unexpected subject")
            return
        }
        let tests = conditions.compactMap { condition -> KeyCondition? in
            if case .key(let test, _) = condition { return test }
            return nil
        }
        #expect(tests.map(\.key) == ["a", "b", "c", "d", "e", "f", "g", "h"])
        func literal(_ index: Int) -> ConfigLiteral? {
            switch tests[index].test {
            case .equals(let value), .notEquals(let value): value
            default: nil
            }
        }
        #expect(literal(0) == .bool(false))
        #expect(literal(1) == .string("false"))
        #expect(literal(2) == .number(80))
        #expect(literal(3) == .string("80"))
        #expect(literal(4) == .bool(true))
        #expect(literal(5) == .string("off"))
        guard case .oneOf(let values) = tests[6].test, case .greaterOrEqual(let bound) = tests[7].test else {
            Issue.record("unexpected tests")
            return
        }
        #expect(values == [.number(1.5), .string("x"), .bool(true)])
        #expect(bound == 10)
    }

    @Test func errorsInOneRuleDoNotStopTheNext() {
        let text = """
            - rule: a
              severity: high
              file: /etc/a
            - rule: b
              severity: low
              file: /etc/b
            """
        let compilation = compileText(text)
        #expect(compilation.errorCount == 2)
        #expect(compilation.diagnostics.map(\.location.line) == [2, 5])
    }

    @Test func nulBytesInSourcesAreRefused() {
        let compilation = compileText("- rule: x\u{0}\n")
        #expect(
            compilation.diagnostics.map(\.description) == [
                "test.yaml: error: refusing rule file 'test.yaml': it contains a NUL byte at offset 9, so it is not a text file; check that the right file was named"
            ]
        )
    }

    @Test func controlCharactersAreAPositionedYAMLError() throws {
        let compilation = compileText("- rule: x\n  file: /etc/a\u{1}\n")
        let diagnostic = try #require(compilation.diagnostics.first)
        #expect(compilation.errorCount == 1)
        #expect(diagnostic.location.line == 2)
        #expect(diagnostic.message.hasPrefix("invalid YAML: control characters are not allowed"))
    }

    @Test func disabledRulesStayInTheSet() throws {
        let compilation = compileText("- rule: x\n  file: /etc/a\n  enabled: false\n")
        let rule = try #require(compilation.ruleSet?.rules.first)
        #expect(!rule.enabled)
    }
}

/// A fresh temporary directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-rules-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct CompilePathsTests {
    @Test func directoriesAreReadInNameOrderSkippingOtherFiles() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try "- rule: second\n  file: /etc/b\n".write(
            to: directory.appendingPathComponent("20-b.yml"),
            atomically: true,
            encoding: .utf8
        )
        try "- rule: first\n  file: /etc/a\n".write(
            to: directory.appendingPathComponent("10-a.yaml"),
            atomically: true,
            encoding: .utf8
        )
        try "not rules".write(to: directory.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        try "- bad".write(to: directory.appendingPathComponent(".hidden.yaml"), atomically: true, encoding: .utf8)
        let compilation = RuleCompiler.compile(paths: [directory.path])
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        #expect(compilation.ruleSet?.rules.map(\.id) == ["first", "second"])
        #expect(compilation.ruleSet?.files == [directory.path + "/10-a.yaml", directory.path + "/20-b.yml"])
    }

    @Test func missingPathsAndEmptyDirectoriesAreErrorsWithoutLineNumbers() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.path + "/nope.yaml"
        let compilation = RuleCompiler.compile(paths: [missing, directory.path])
        #expect(
            compilation.diagnostics.map(\.description) == [
                "\(missing): error: failed to open '\(missing)': no such file or directory; check the path",
                "\(directory.path): error: directory '\(directory.path)' contains no rule files; add a file ending in .yaml or .yml",
            ]
        )
        #expect(compilation.ruleSet == nil)
    }

    @Test func oversizedNulAndWorldWritableFilesAreRefused() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let big = directory.appendingPathComponent("big.yaml")
        try Data(repeating: UInt8(ascii: "#"), count: 4 * 1024 * 1024 + 1).write(to: big)
        let binary = directory.appendingPathComponent("binary.yaml")
        try Data([0x2d, 0x20, 0x00, 0x0a]).write(to: binary)
        let open = directory.appendingPathComponent("open.yaml")
        try "- rule: x\n  file: /etc/a\n".write(to: open, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: open.path)
        let compilation = RuleCompiler.compile(paths: [big.path, binary.path, open.path])
        let messages = compilation.diagnostics.map(\.message)
        #expect(messages.count == 3)
        #expect(
            messages[0]
                == "refusing rule file '\(big.path)': it is 4194305 bytes, larger than the 4 MiB limit; split it into several files"
        )
        #expect(messages[1].contains("NUL byte at offset 2"))
        #expect(messages[2].contains("it is group-writable and world-writable (mode 0666)"))
    }

    @Test(.enabled(if: getuid() != 0, "root reads every file"))
    func unreadableFilesAreReported() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("secret.yaml")
        try "- rule: x\n  file: /etc/a\n".write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: file.path)
        let compilation = RuleCompiler.compile(paths: [file.path])
        #expect(
            compilation.diagnostics.map(\.message) == [
                "failed to open '\(file.path)': permission denied; make it readable by the user vigil runs as"
            ]
        )
    }

    @Test func fixtureDirectoryCompilesAsAWhole() {
        let compilation = RuleCompiler.compile(paths: [fixturesDirectory.appendingPathComponent("valid").path])
        #expect(compilation.errorCount == 0, "\(compilation.diagnostics)")
        // seed.yaml 4, process.yaml 5, log.yaml 5, permissions.yaml 3, rotate.yaml 2.
        #expect(compilation.ruleSet?.rules.count == 19)
    }
}

@Suite struct YAMLEdgeCaseTests {
    @Test func secondDocumentIsOneClearError() {
        let compilation = compileText("- rule: a\n  file: /etc/a\n---\n- rule: b\n  file: /etc/b\n")
        #expect(
            compilation.diagnostics.map(\.description) == [
                "test.yaml:3:1: error: a rule file holds one YAML document, but another one starts here; remove the '---' line or split the file"
            ]
        )
    }

    @Test func anchorsAndAliasesAreExpanded() throws {
        let text = """
            - rule: a
              config: &upload /etc/analytics/upload-service.conf
              changes: &keys [api_url]
            - rule: b
              file: *upload
            """
        let compilation = compileText(text)
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        #expect(compilation.ruleSet?.rules.count == 2)
    }

    @Test func singleActionMapAndScalarListsAreAccepted() throws {
        let compilation = compileText(
            "- sink: s\n  type: stdout\n- rule: a\n  file: /etc/a\n  on: deleted\n  then: { alert: s }\n"
        )
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let rule = try #require(compilation.ruleSet?.rules.first)
        guard case .alert(let sinks, _) = rule.actions.first, case .file(let file) = rule.subject else { return }
        #expect(sinks == ["s"])
        #expect(file.on == [.deleted])
    }

    @Test func topLevelScalarAndEmptyListItems() {
        #expect(
            compileText("hello\n").diagnostics.map(\.message) == [
                "the top level of a rule file is a string; expected a list of items, each starting with '- rule:', '- sink:' or '- list:'"
            ]
        )
        #expect(
            compileText("-\n").diagnostics.map(\.message) == [
                "item is empty; expected a map starting with rule:, sink: or list:"
            ]
        )
        #expect(compileText("---\n").diagnostics.isEmpty)
        #expect(compileText("[]\n").diagnostics.isEmpty)
    }
}
