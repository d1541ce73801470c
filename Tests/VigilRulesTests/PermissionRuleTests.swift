import Testing
import VigilRules

/// The mode and owner subject of a rule, or a recorded issue.
func permissionSubject(
    _ rule: Rule,
    sourceLocation: Testing.SourceLocation = #_sourceLocation
) throws -> PermissionSubject {
    guard case .permissions(let subject) = rule.subject else {
        Issue.record("not a mode and owner rule: \(String(describing: rule.subject))", sourceLocation: sourceLocation)
        throw PermissionRuleTestError.wrongSubject
    }
    return subject
}

/// The actions of a rule by name (`alert`, `chmod`, …) and where each is written.
func actionNames(_ rule: Rule) -> [String] {
    rule.actions.map { action in
        switch action {
        case .alert: "alert"
        case .chmod: "chmod"
        case .chown: "chown"
        case .restart: "restart"
        case .reload: "reload"
        case .sanitize: "sanitize"
        case .exec: "exec"
        }
    }
}

enum PermissionRuleTestError: Error {
    case wrongSubject
}

@Suite struct PermissionFixtureTests {
    @Test func permissionsFixtureCompilesToTheDocumentedValues() throws {
        let compilation = try compileFixture("valid/permissions.yaml")
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let set = try #require(compilation.ruleSet)
        #expect(set.rules.map(\.id) == ["analytics-log-tree", "upload-config-mode", "archive-tree"])
        #expect(set.rules.allSatisfy { $0.isPermissionRule && $0.isStateRule && !$0.isRotateRule })
        func location(_ line: Int, _ column: Int) -> VigilRules.SourceLocation {
            VigilRules.SourceLocation(file: "valid/permissions.yaml", line: line, column: column)
        }

        let tree = set.rules[0]
        let treeSubject = try permissionSubject(tree)
        #expect(
            treeSubject.paths == [
                PathPattern(raw: "/var/log/analytics", directory: "/var/log", name: .exact("analytics"))
            ]
        )
        #expect(treeSubject.recursive)
        #expect(treeSubject.fileMode == 0o640)
        #expect(treeSubject.directoryMode == 0o750)
        #expect(treeSubject.owner == .name("analytics", location(5, 10)))
        #expect(treeSubject.group == .name("log-readers", location(6, 10)))
        #expect(actionNames(tree) == ["alert", "chmod", "chown"])
        guard case .chmod(let chmodAt) = tree.actions[1], case .chown(let chownAt) = tree.actions[2] else {
            Issue.record("actions \(tree.actions)")
            return
        }
        #expect(chmodAt == location(10, 17))
        #expect(chownAt == location(10, 24))
        #expect(tree.message.source == "{path}: {found}, expected {expected}; {outcome}")
        #expect(tree.resolvedMessage?.source == "{path}: {expected} again")
        #expect(tree.severity == .warning)

        let config = set.rules[1]
        let configSubject = try permissionSubject(config)
        #expect(
            configSubject.paths == [
                PathPattern(
                    raw: "/etc/analytics/upload-service.conf",
                    directory: "/etc/analytics",
                    name: .exact("upload-service.conf")
                ),
                PathPattern(
                    raw: "/etc/analytics/conf.d/*.conf",
                    directory: "/etc/analytics/conf.d",
                    name: .glob("*.conf")
                ),
            ]
        )
        #expect(!configSubject.recursive)
        #expect(configSubject.fileMode == 0o640 && configSubject.directoryMode == 0o640)
        #expect(configSubject.owner == .id(0))
        #expect(configSubject.group == .id(1001))
        #expect(actionNames(config) == ["alert"], "no then: is an audit")
        #expect(config.severity == .error)

        let archive = set.rules[2]
        let archiveSubject = try permissionSubject(archive)
        #expect(
            archiveSubject.paths == [
                PathPattern(raw: "/var/log/archive/**", directory: "/var/log", name: .exact("archive"))
            ]
        )
        #expect(archiveSubject.recursive)
        #expect(archiveSubject.fileMode == nil)
        #expect(archiveSubject.directoryMode == 0o2750)
        #expect(archiveSubject.owner == nil && archiveSubject.group == nil)
        #expect(actionNames(archive) == ["chmod"], "chmod without alert enforces silently")
    }

    @Test func permissionFieldsAreTheDocumentedOnes() throws {
        #expect(
            MessageTemplate.permissionFields == [
                "rule", "severity", "host", "path", "kind", "found", "expected", "outcome",
            ]
        )
        for source in [MessageTemplate.defaultPermissionSource, MessageTemplate.defaultPermissionResolvedSource] {
            let template = try MessageTemplate(parsing: source)
            #expect(template.fieldNames.allSatisfy(MessageTemplate.permissionFields.contains))
        }
    }
}

@Suite struct PermissionSpellingTests {
    @Test(
        arguments: [
            ("750", UInt32(0o750)), ("0750", 0o750), ("\"0640\"", 0o640), ("'0640'", 0o640), ("2750", 0o2750),
            ("\"4755\"", 0o4755), ("000", 0), ("1777", 0o1777), ("0777", 0o777),
        ] as [(String, UInt32)]
    )
    func modesAreThreeOrFourOctalDigits(_ written: String, _ mode: UInt32) throws {
        let subject = try permissionSubject(try onlyRule("- rule: r\n  file: /var/log/a\n  mode: \(written)\n"))
        #expect(subject.fileMode == mode)
        #expect(subject.directoryMode == mode)
    }

    @Test func fileModeAndDirModeOverrideModePerKind() throws {
        let both = try permissionSubject(
            try onlyRule("- rule: r\n  file: /var/log/a\n  mode: 700\n  file_mode: 600\n")
        )
        #expect(both.fileMode == 0o600 && both.directoryMode == 0o700)
        let directoriesOnly = try permissionSubject(try onlyRule("- rule: r\n  file: /var/log/a\n  dir_mode: 0750\n"))
        #expect(directoriesOnly.fileMode == nil && directoriesOnly.directoryMode == 0o750)
        let filesOnly = try permissionSubject(try onlyRule("- rule: r\n  file: /var/log/a.log\n  file_mode: 0640\n"))
        #expect(filesOnly.fileMode == 0o640 && filesOnly.directoryMode == nil)
    }

    @Test(
        arguments: [
            ("/var/log/a", ["/var/log/a"], false),
            ("/var/log/a/**", ["/var/log/a"], true),
            ("//var/log/./a/**/", ["/var/log/a"], true),
            ("[/var/log/a/**, \"/var/log/b*/**\"]", ["/var/log/a", "/var/log/b*"], true),
            ("[/var/log/a.log, /var/log/b.log]", ["/var/log/a.log", "/var/log/b.log"], false),
            ("\n    - /var/log/a\n    - /var/log/*.log", ["/var/log/a", "/var/log/*.log"], false),
        ] as [(String, [String], Bool)]
    )
    func pathsAreOneOrAListAndDirStarStarIsRecursive(
        _ written: String,
        _ normalised: [String],
        _ recursive: Bool
    ) throws {
        let subject = try permissionSubject(try onlyRule("- rule: r\n  file: \(written)\n  owner: root\n"))
        #expect(subject.paths.map(\.normalised) == normalised)
        #expect(subject.recursive == recursive)
    }

    @Test func recursiveTrueMakesEveryPathRecursive() throws {
        let subject = try permissionSubject(
            try onlyRule("- rule: r\n  file: [/var/log/a/**, /var/log/b]\n  recursive: true\n  group: adm\n")
        )
        #expect(subject.recursive)
        #expect(subject.paths.map(\.name) == [.exact("a"), .exact("b")])
        #expect(subject.paths.map(\.raw) == ["/var/log/a/**", "/var/log/b"])
        #expect(subject.group == .name("adm", testLocation(4, 10)))
    }

    @Test(
        arguments: [
            ("analytics", UserReference.name("analytics", testLocation(3, 10))),
            ("\"1001\"", .id(1001)), ("0", .id(0)), ("4294967294", .id(4_294_967_294)),
            ("www-data", .name("www-data", testLocation(3, 10))),
            ("'machine$'", .name("machine$", testLocation(3, 10))),
        ] as [(String, UserReference)]
    )
    func ownersAreNamesOrIds(_ written: String, _ owner: UserReference) throws {
        let subject = try permissionSubject(try onlyRule("- rule: r\n  file: /var/log/a\n  owner: \(written)\n"))
        #expect(subject.owner == owner)
        #expect(subject.fileMode == nil && subject.directoryMode == nil && subject.group == nil)
    }

    @Test func aWrittenMessageResolvesWithResolvedPlusIt() throws {
        let rule = try onlyRule(
            "- rule: r\n  file: /var/log/a\n  mode: 640\n  message: \"{path} is {found} ({kind})\"\n"
        )
        #expect(rule.message.source == "{path} is {found} ({kind})")
        #expect(rule.resolvedMessage == nil)
        let resolved = try onlyRule(
            "- rule: r\n  file: /var/log/a\n  mode: 640\n  resolved_message: \"{rule}: {path} is {expected}\"\n"
        )
        #expect(resolved.resolvedMessage?.source == "{rule}: {path} is {expected}")
        #expect(resolved.message.source == MessageTemplate.defaultPermissionSource)
    }

    @Test func chmodAndChownAloneOrWithAlert() throws {
        let rule = try onlyRule("- rule: r\n  file: /var/log/a\n  mode: 640\n  owner: root\n  then: [chown, chmod]\n")
        #expect(actionNames(rule) == ["chown", "chmod"])
        let empty = try onlyRule("- rule: r\n  file: /var/log/a\n  mode: 640\n  then: [{ chmod: }]\n")
        #expect(actionNames(empty) == ["chmod"])
    }
}

@Suite struct PermissionErrorTests {
    @Test(
        arguments: [
            (
                "- rule: r\n  file: /var/log/a\n  mode: \"0640\"\n  on: [attributes]\n",
                [
                    "test.yaml:4:3: error: 'on' does not apply to mode and owner rules; they check the mode and owner at start-up and on every change, so remove on: (or watch changes with a file: rule without mode:, owner: and group:)"
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  owner: analytics\n  then: [alert, chmod]\n",
                [
                    "test.yaml:4:17: error: action 'chmod' needs the mode to restore; add mode: (or file_mode:, dir_mode:), or remove chmod"
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  mode: \"0640\"\n  then: [chown]\n",
                [
                    "test.yaml:4:10: error: action 'chown' needs the owner to restore; add owner: or group:, or remove chown"
                ]
            ),
            (
                "- rule: r\n  config: /etc/a.conf\n  changes: [x]\n  then: [chmod, chown]\n",
                [
                    "test.yaml:4:10: error: action 'chmod' does not apply to config rules; chmod restores what a mode and owner rule says, so add a rule with file: and mode:",
                    "test.yaml:4:17: error: action 'chown' does not apply to config rules; chown restores what a mode and owner rule says, so add a rule with file: and owner: or group:",
                ]
            ),
            (
                "- rule: r\n  file: /etc/a.conf\n  then: [alert, chmod]\n",
                [
                    "test.yaml:3:17: error: action 'chmod' does not apply to file rules; chmod restores what a mode and owner rule says, so add a rule with file: and mode:"
                ]
            ),
            (
                "- rule: r\n  process: sshd\n  on: [exec]\n  then: [chown]\n",
                [
                    "test.yaml:4:10: error: action 'chown' does not apply to process rules; chown restores what a mode and owner rule says, so add a rule with file: and owner: or group:"
                ]
            ),
            (
                "- rule: r\n  log: /var/log/a.log\n  then: [chmod]\n",
                [
                    "test.yaml:3:10: error: action 'chmod' does not apply to log rules; chmod restores what a mode and owner rule says, so add a rule with file: and mode:"
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  recursive: true\n",
                [
                    "test.yaml:3:3: error: 'recursive' applies only to mode and owner rules; add mode:, owner: or group:, or remove recursive:"
                ]
            ),
            (
                "- rule: r\n  file: [/var/log/a, /var/log/b]\n",
                [
                    "test.yaml:2:9: error: 'file' is a list, but only mode and owner rules take several paths; write one file: rule per path, or add mode:, owner: or group:"
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  group: adm\n  when: { key: a, is: b }\n  changes: [a]\n  format: ini\n  match: x\n  from: start\n  expect: running\n  allow: [/usr/bin/x]\n",
                [
                    "test.yaml:4:3: error: 'when' does not apply to mode and owner rules; use a config: rule to look at keys and values",
                    "test.yaml:5:3: error: 'changes' does not apply to mode and owner rules; use a config: rule to look at keys and values",
                    "test.yaml:6:3: error: 'format' does not apply to mode and owner rules; use a config: rule to look at keys and values",
                    "test.yaml:7:3: error: 'match' does not apply to mode and owner rules; it belongs to log: rules",
                    "test.yaml:8:3: error: 'from' does not apply to mode and owner rules; it belongs to log: rules",
                    "test.yaml:9:3: error: 'expect' does not apply to mode and owner rules; it belongs to process: rules",
                    "test.yaml:10:3: error: 'allow' does not apply to mode and owner rules; it belongs to process: rules",
                ]
            ),
            (
                "- rule: r\n  file: [/var/log/a, /var/log//a/, /var/log/b/**, /var/log/b]\n  recursive: true\n  mode: \"0640\"\n",
                [
                    "test.yaml:2:22: error: path '/var/log//a/' is listed twice in file:; remove one of them",
                    "test.yaml:2:51: error: path '/var/log/b' is listed twice in file:; remove one of them",
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  mode: \"0999\"\n  file_mode: 12345\n  dir_mode: rwx\n",
                [
                    "test.yaml:3:9: error: mode '0999' is not octal; write e.g. mode: \"0640\"",
                    "test.yaml:4:14: error: file_mode '12345' has 5 digits; a mode has 3 or 4 octal digits, write e.g. file_mode: \"0640\"",
                    "test.yaml:5:13: error: dir_mode 'rwx' is not octal; write e.g. dir_mode: \"0750\"",
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  mode: [0640]\n  file_mode: 0o640\n  dir_mode: \"\"\n",
                [
                    "test.yaml:3:9: error: 'mode' is a list; expected an octal mode, write e.g. mode: \"0640\"",
                    "test.yaml:4:14: error: file_mode '0o640' is not octal; write e.g. file_mode: \"0640\"",
                    "test.yaml:5:13: error: dir_mode '' is not octal; write e.g. dir_mode: \"0750\"",
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  mode:\n",
                [
                    "test.yaml:3:8: error: 'mode' is empty; expected an octal mode, write e.g. mode: \"0640\""
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  owner: \"ana*\"\n  group: \"\"\n",
                [
                    "test.yaml:3:10: error: owner 'ana*' is a glob; write one user name, such as owner: analytics",
                    "test.yaml:4:10: error: 'group' is an empty string; write a group name such as log-readers, or a gid such as 1001",
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  owner: -analytics\n  group: 4294967295\n",
                [
                    "test.yaml:3:10: error: owner '-analytics' is not a valid user name; a user name has letters, digits, '.', '_' and '-' and does not start with '-'; or write a uid such as 1001",
                    "test.yaml:4:10: error: group id 4294967295 is out of range; expected a gid from 0 to 4294967294",
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  owner: [analytics]\n  group: \"log readers\"\n",
                [
                    "test.yaml:3:10: error: 'owner' is a list; expected a user name such as analytics, or a uid such as 1001",
                    "test.yaml:4:10: error: group 'log readers' is not a valid group name; a group name has letters, digits, '.', '_' and '-' and does not start with '-'; or write a gid such as 1001",
                ]
            ),
            (
                "- rule: r\n  file: [/var/log/a/**, /var/log/b]\n  mode: \"0640\"\n",
                [
                    "test.yaml:2:25: error: path '/var/log/b' has no /** but '/var/log/a/**' has; a rule is recursive for all its paths or for none, so add /** to every path (or write recursive: true), or split the rule"
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a/**\n  recursive: false\n  mode: \"0640\"\n",
                [
                    "test.yaml:2:9: error: path '/var/log/a/**' ends with /**, which means recursive, but the rule says recursive: false; remove /** or recursive: false"
                ]
            ),
            (
                "- rule: r\n  file: /**\n  mode: \"0640\"\n",
                [
                    "test.yaml:2:9: error: path '/**' names no file; expected a file path such as /var/log/analytics/**"
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  mode: \"0640\"\n  then: [{ chmod: \"0600\" }]\n",
                [
                    "test.yaml:4:19: error: action 'chmod' takes no options; it restores what the rule's mode:, file_mode: and dir_mode: say, so write chmod on its own"
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  mode: \"0640\"\n  owner: root\n  then: [chmod, chown, chmod]\n",
                [
                    "test.yaml:5:24: error: action 'chmod' is listed twice in then:; remove one of them"
                ]
            ),
            (
                "- rule: r\n  log: /var/log/a.log\n  mode: \"0640\"\n  owner: root\n  recursive: true\n",
                [
                    "test.yaml:3:3: error: 'mode' does not apply to log rules; it belongs to mode and owner rules (file: with mode:, owner: or group:)",
                    "test.yaml:4:3: error: 'owner' does not apply to log rules; it belongs to mode and owner rules (file: with mode:, owner: or group:)",
                    "test.yaml:5:3: error: 'recursive' does not apply to log rules; it belongs to mode and owner rules (file: with mode:, owner: or group:)",
                ]
            ),
            (
                "- rule: r\n  process: sshd\n  expect: running\n  group: adm\n",
                [
                    "test.yaml:4:3: error: 'group' does not apply to process rules; it belongs to mode and owner rules (file: with mode:, owner: or group:)"
                ]
            ),
            (
                "- rule: r\n  config: /etc/a.conf\n  changes: [x]\n  file_mode: \"0640\"\n",
                [
                    "test.yaml:4:3: error: 'file_mode' does not apply to config rules; it belongs to mode and owner rules (file: with mode:, owner: or group:)"
                ]
            ),
            (
                "- rule: r\n  mode: \"0640\"\n",
                [
                    "test.yaml:1:3: error: rule 'r' has no subject; expected one of: config, file, process, log, rotate, pressure, disk, listening, escalation, service (mode: needs file: with the paths it applies to)"
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  mode: \"0640\"\n  message: \"{path} {change}\"\n  resolved_message: \"{path} {line}\"\n",
                [
                    "test.yaml:4:20: error: unknown field '{change}' in message; expected one of: rule, severity, host, path, kind, found, expected, outcome",
                    "test.yaml:5:29: error: unknown field '{line}' in message; expected one of: rule, severity, host, path, kind, found, expected, outcome",
                ]
            ),

        ] as [(String, [String])]
    )
    func errorsSayWhatIsWrongAndTheFix(_ text: String, _ expected: [String]) {
        let compilation = compileText(text)
        #expect(compilation.diagnostics.map(\.description) == expected)
        #expect(compilation.ruleSet == nil)
    }

    @Test func everyErrorOfARuleIsReportedAtOnce() {
        let compilation = compileText(
            "- rule: r\n  file: [/var/log/a, /var/log/a]\n  mode: \"0999\"\n  owner: \"*\"\n  on: [deleted]\n  then: [chown, chmod]\n"
        )
        #expect(compilation.diagnostics.map(\.location.line) == [2, 3, 4, 5])
        #expect(compilation.errorCount == 4)
    }
}
