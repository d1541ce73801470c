import Testing
import VigilRules

/// The rotation subject of a rule, or a recorded issue.
func rotateSubject(_ rule: Rule, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> RotateSubject {
    guard case .rotate(let subject) = rule.subject else {
        Issue.record("not a rotate rule: \(String(describing: rule.subject))", sourceLocation: sourceLocation)
        throw RotateRuleTestError.wrongSubject
    }
    return subject
}

/// The subject of a one-rule file rotating `/var/log/a.log` at 1M, with `extra` (lines of keys) added.
func rotation(_ extra: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> RotateSubject {
    try rotateSubject(
        try onlyRule("- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n" + extra, sourceLocation: sourceLocation),
        sourceLocation: sourceLocation
    )
}

enum RotateRuleTestError: Error {
    case wrongSubject
}

@Suite struct RotateFixtureTests {
    @Test func rotateFixtureCompilesToTheDocumentedValues() throws {
        let compilation = try compileFixture("valid/rotate.yaml")
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let set = try #require(compilation.ruleSet)
        #expect(set.rules.map(\.id) == ["analytics-log-rotation", "upload-log-rotation"])
        #expect(set.rules.allSatisfy { $0.isRotateRule && !$0.isStateRule && !$0.isPermissionRule })
        func location(_ line: Int, _ column: Int) -> VigilRules.SourceLocation {
            VigilRules.SourceLocation(file: "valid/rotate.yaml", line: line, column: column)
        }

        let analytics = set.rules[0]
        let subject = try rotateSubject(analytics)
        #expect(
            subject.paths == [
                PathPattern(
                    raw: "/var/log/analytics/unified/*.log",
                    directory: "/var/log/analytics/unified",
                    name: .glob("*.log")
                )
            ]
        )
        #expect(subject.maximumBytes == 100 * 1024 * 1024)
        #expect(subject.interval == .daily)
        #expect(subject.keep == 14)
        #expect(subject.maximumAgeMilliseconds == 90 * 86_400_000)
        #expect(subject.dateFormat == "-%Y%m%d")
        #expect(subject.oldDirectory == ArchiveDirectory(path: "/var/log/archive"))
        #expect(subject.compress && subject.compressLevel == 6 && subject.delayCompress)
        #expect(!subject.copyTruncate && !subject.rotateEmpty)
        #expect(
            subject.create
                == FileAttributes(
                    mode: 0o640,
                    owner: .name("analytics", location(15, 34)),
                    group: .name("log-readers", location(15, 52))
                )
        )
        let post = try #require(subject.postRotate)
        #expect(post.location == location(16, 3))
        #expect(post.unit == "analytics-service")
        #expect(post.command == ["/usr/sbin/service", "analytics-service", "reload"])
        #expect(post.signal == 1)
        #expect(post.target == ProcessSelector(executables: ["/usr/bin/analytics-service"]))
        #expect(
            subject.sweep
                == ArchiveSweep(
                    mode: 0o600,
                    chmodAfterMilliseconds: 30 * 86_400_000,
                    deleteAfterMilliseconds: 90 * 86_400_000
                )
        )
        #expect(actionNames(analytics) == ["alert"])
        #expect(analytics.message.source == "{path} rotated to {rotated} ({reason}, {size} bytes); {outcome}")
        #expect(analytics.resolvedMessage == nil)

        let upload = set.rules[1]
        let uploadSubject = try rotateSubject(upload)
        #expect(
            uploadSubject.paths.map(\.normalised) == [
                "/var/log/analytics/upload.log", "/var/log/analytics/upload-error.log",
            ]
        )
        #expect(uploadSubject.maximumBytes == 512 * 1024)
        #expect(uploadSubject.interval == nil)
        #expect(
            uploadSubject.oldDirectory
                == ArchiveDirectory(
                    path: "/var/log/archive/upload",
                    attributes: FileAttributes(
                        mode: 0o750,
                        owner: .name("analytics", location(23, 65)),
                        group: .name("analytics", location(23, 83))
                    )
                )
        )
        #expect(uploadSubject.copyTruncate)
        #expect(uploadSubject.create == nil)
        #expect(uploadSubject.sweep == ArchiveSweep(deleteAfterMilliseconds: 14 * 86_400_000))
        #expect(actionNames(upload) == ["alert"], "no then: alerts")
    }

    @Test func rotateFieldsAreTheDocumentedOnes() throws {
        #expect(
            MessageTemplate.rotateFields == [
                "rule", "severity", "host", "path", "rotated", "size", "reason", "outcome",
            ]
        )
        let template = try MessageTemplate(parsing: MessageTemplate.defaultRotateSource)
        #expect(template.fieldNames.allSatisfy(MessageTemplate.rotateFields.contains))
    }

    @Test func theDefaultsAreLogrotatesUsualOnes() throws {
        let rule = try onlyRule("- rule: r\n  rotate: /var/log/a.log\n  every: weekly\n")
        let subject = try rotateSubject(rule)
        #expect(subject.maximumBytes == nil)
        #expect(subject.interval == .weekly)
        #expect(subject.keep == 14)
        #expect(subject.maximumAgeMilliseconds == nil)
        #expect(subject.dateFormat == "-%Y%m%d")
        #expect(subject.oldDirectory == nil)
        #expect(subject.compress && subject.compressLevel == 6 && !subject.delayCompress)
        #expect(!subject.copyTruncate && !subject.rotateEmpty)
        #expect(subject.create == nil && subject.postRotate == nil && subject.sweep == nil)
    }
}

@Suite struct RotateSpellingTests {
    @Test(
        arguments: [
            ("100", UInt64(100)), ("\"4096\"", 4096), ("512k", 512 * 1024), ("512K", 512 * 1024),
            ("100M", 100 * 1024 * 1024), ("'1G'", 1 << 30), ("2G", 2 << 30),
        ] as [(String, UInt64)]
    )
    func sizesAreBytesOr1024Based(_ written: String, _ bytes: UInt64) throws {
        let rule = try onlyRule("- rule: r\n  rotate: /var/log/a.log\n  size: \(written)\n")
        #expect(try rotateSubject(rule).maximumBytes == bytes)
    }

    @Test(arguments: RotationInterval.allCases)
    func everyPeriod(_ interval: RotationInterval) throws {
        let rule = try onlyRule("- rule: r\n  rotate: /var/log/a.log\n  every: \(interval.rawValue)\n")
        #expect(try rotateSubject(rule).interval == interval)
    }

    @Test(
        arguments: [
            ("90d", 90 * 86_400_000), ("2w", 14 * 86_400_000), ("12h", 12 * 3_600_000), ("3600s", 3_600_000),
            ("500ms", 500), ("'3650d'", 3650 * 86_400_000), ("36h", 36 * 3_600_000),
        ] as [(String, Int)]
    )
    func agesTakeDaysAndWeeks(_ written: String, _ milliseconds: Int) throws {
        #expect(try rotation("  max_age: \(written)\n").maximumAgeMilliseconds == milliseconds)
        let sweep = try rotation("  sweep: { chmod: 600, after: \(written) }\n").sweep
        #expect(sweep == ArchiveSweep(mode: 0o600, chmodAfterMilliseconds: milliseconds))
    }

    @Test(arguments: ["-%Y%m%d", "_%Y-%m-%d_%H%M%S", ".%s", "-%j", "-%Y%m%d%%"])
    func dateFormatsWithDigitConversions(_ format: String) throws {
        #expect(try rotation("  dateext: '\(format)'\n").dateFormat == format)
    }

    @Test func keepZeroDeletesEveryRotation() throws {
        #expect(try rotation("  keep: 0\n").keep == 0)
        #expect(try rotation("  keep: \"10000\"\n").keep == 10_000)
    }

    @Test func compression() throws {
        let off = try rotation("  compress: false\n")
        #expect(!off.compress)
        let fast = try rotation("  compress_level: 1\n  delaycompress: true\n")
        #expect(fast.compress && fast.compressLevel == 1 && fast.delayCompress)
        let unchanged = try rotation("  compress: false\n  delaycompress: false\n  if_empty: true\n")
        #expect(!unchanged.delayCompress && unchanged.rotateEmpty)
    }

    @Test func createTakesTheOldFilesAttributesOrItsOwn() throws {
        #expect(try rotation("  create: true\n").create == FileAttributes())
        #expect(try rotation("  create: {}\n").create == FileAttributes())
        #expect(try rotation("  create: false\n").create == nil)
        #expect(
            try rotation("  create: { mode: 600, owner: 0 }\n").create == FileAttributes(mode: 0o600, owner: .id(0))
        )
        #expect(try rotation("  copytruncate: true\n  create: false\n").copyTruncate)
    }

    @Test func olddirIsAPathOrAMap() throws {
        #expect(
            try rotation("  olddir: /var/log//archive/\n").oldDirectory == ArchiveDirectory(path: "/var/log/archive")
        )
        #expect(
            try rotation("  olddir: { path: /var/log/archive, group: 4 }\n").oldDirectory
                == ArchiveDirectory(path: "/var/log/archive", attributes: FileAttributes(group: .id(4)))
        )
    }

    @Test func aGlobEndingInStarIsFineWhenRotationsMoveAway() throws {
        let rule = try onlyRule("- rule: r\n  rotate: /var/log/app/*\n  every: daily\n  olddir: /var/log/archive\n")
        #expect(try rotateSubject(rule).paths.map(\.name) == [.glob("*")])
    }

    @Test(
        arguments: [
            ("{ unit: analytics-service }", "analytics-service", nil, nil),
            ("{ command: [/usr/sbin/service, app, reload] }", nil, ["/usr/sbin/service", "app", "reload"], nil),
            ("{ signal: USR1, to: { name: app } }", nil, nil, Int32(10)),
        ] as [(String, String?, [String]?, Int32?)]
    )
    func postrotateReachesTheWriter(_ written: String, _ unit: String?, _ command: [String]?, _ signal: Int32?) throws {
        let post = try #require(try rotation("  postrotate: \(written)\n").postRotate)
        #expect(post.unit == unit)
        #expect(post.command == command)
        #expect(post.signal == signal)
        #expect(post.location == testLocation(4, 3))
    }

    @Test func aWrittenMessageMayUseEveryRotateField() throws {
        let rule = try onlyRule(
            "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  message: \"{rule} {severity} {host} {path} {rotated} {size} {reason} {outcome}\"\n"
        )
        #expect(rule.message.fieldNames == MessageTemplate.rotateFields)
    }
}

@Suite struct RotateErrorTests {
    @Test(
        arguments: [
            (
                "- rule: r\n  rotate: /var/log/a.log\n  keep: 3\n",
                [
                    "test.yaml:1:3: error: rotate rule 'r' has neither size: nor every:, so it would never rotate; add size: (such as 100M), every: (such as daily), or both"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  copytruncate: true\n  create: { mode: \"0640\" }\n",
                [
                    "test.yaml:5:3: error: 'create' does not apply with copytruncate: true; the log is copied and truncated in place, so there is no new file to create; remove create: (the log keeps its mode and owner)"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  olddir: var/log/archive\n",
                [
                    "test.yaml:4:11: error: olddir 'var/log/archive' is not absolute; write it from the root, such as '/var/log/archive'"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  olddir: /var/log/arch*\n",
                [
                    "test.yaml:4:11: error: olddir '/var/log/arch*' contains a glob; name one directory"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  olddir: /var/log/../archive\n",
                [
                    "test.yaml:4:11: error: olddir '/var/log/../archive' contains '..'; write the path without it"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  olddir: { mode: \"0750\", owner: [a] }\n",
                [
                    "test.yaml:4:11: error: 'olddir' has no path:; add path: with an absolute directory such as /var/log/archive",
                    "test.yaml:4:34: error: 'owner' is a list; expected a user name such as analytics, or a uid such as 1001",
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  olddir: { paht: /var/log/archive }\n",
                [
                    "test.yaml:4:13: error: unknown key 'paht' in olddir:; did you mean 'path'? (expected one of: path, mode, owner, group)"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  olddir: [/var/log/archive]\n",
                [
                    "test.yaml:4:11: error: 'olddir' is a list; expected an absolute directory such as /var/log/archive, or { path: /var/log/archive, mode: \"0750\" }"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  postrotate: { unit: app, backoff: 1s, max_backoff: 2s, flap: { restarts: 2 }, confirm_within: 3s }\n",
                [
                    "test.yaml:4:28: error: 'backoff' does not apply to postrotate; it runs once per rotation, and a rotation that fails is alerted",
                    "test.yaml:4:41: error: 'max_backoff' does not apply to postrotate; it runs once per rotation, and a rotation that fails is alerted",
                    "test.yaml:4:58: error: 'flap' does not apply to postrotate; it runs once per rotation, and a rotation that fails is alerted",
                    "test.yaml:4:81: error: 'confirm_within' does not apply to postrotate; it runs once per rotation, and a rotation that fails is alerted",
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  postrotate:\n",
                [
                    "test.yaml:4:14: error: 'postrotate' says nothing to do; give unit: (a systemd unit to reload), command: [PROGRAM, ARGS…], or signal: with to: (the processes that get it)"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  postrotate: { signal: HUP }\n",
                [
                    "test.yaml:4:15: error: postrotate has signal: but no to:; a rotate rule has no processes of its own, so add to: with the writer, such as to: { exe: /usr/bin/analytics-service }"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  postrotate: { to: { name: app } }\n",
                [
                    "test.yaml:4:17: error: 'to' names the processes that receive signal:; add signal: (e.g. signal: HUP) or remove to:"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  postrotate: /usr/sbin/service app reload\n",
                [
                    "test.yaml:4:15: error: 'postrotate' is a string; expected a map such as { unit: analytics-service } or { command: [/usr/sbin/service, analytics-service, reload] }"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  postrotate: { command: [service, app, reload], signal: HUPP }\n",
                [
                    "test.yaml:4:27: error: program 'service' in command: is not absolute; write its full path such as '/usr/bin/service' (vigil does not search PATH)",
                    "test.yaml:4:58: error: signal 'HUPP' is not known; did you mean 'HUP'? (expected a name such as HUP, TERM or SIGUSR1, or a number from 1 to 64)",
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  sweep: { chmod: \"0600\" }\n",
                [
                    "test.yaml:4:12: error: 'chmod' in sweep: needs after:, the age from which archives get the mode, such as after: 30d"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  sweep: { after: 30d }\n",
                [
                    "test.yaml:4:12: error: 'after' in sweep: says when chmod: applies; add chmod: (such as \"0600\"), or remove after:"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  sweep: {}\n",
                [
                    "test.yaml:4:10: error: 'sweep' does nothing; add chmod: with after:, delete_after:, or both"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  sweep: { chmod: \"0600\", after: 90d, delete_after: 90d }\n",
                [
                    "test.yaml:4:53: error: 'delete_after' (90d) is not later than after: (90d), so archives would be deleted before chmod: applies; raise delete_after: or remove chmod:"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  sweep: { chmod: \"0999\", after: 30d, delete: 90d }\n",
                [
                    "test.yaml:4:19: error: chmod '0999' is not octal; write e.g. chmod: \"0600\"",
                    "test.yaml:4:39: error: unknown key 'delete' in sweep:; expected one of: chmod, after, delete_after",
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  sweep: 30d\n",
                [
                    "test.yaml:4:10: error: 'sweep' is a string; expected a map such as { chmod: \"0600\", after: 30d, delete_after: 90d }"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 100MB\n",
                [
                    "test.yaml:3:9: error: size '100MB' is not a size; did you mean '100M'? (expected a number of bytes, or a number followed by k, M or G (1024-based, as in logrotate), such as 100M)"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 0\n",
                [
                    "test.yaml:3:9: error: size is 0; expected a size larger than zero, such as 100M"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1.5G\n",
                [
                    "test.yaml:3:9: error: size '1.5G' is not a size; expected a number of bytes, or a number followed by k, M or G (1024-based, as in logrotate), such as 100M"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 99999999999999G\n",
                [
                    "test.yaml:3:9: error: size 99999999999999G is too large; expected a size such as 100M or 10G"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: [1M]\n",
                [
                    "test.yaml:3:9: error: 'size' is a list; expected a number of bytes, or a number followed by k, M or G (1024-based, as in logrotate), such as 100M"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  every: dayly\n  keep: 10001\n",
                [
                    "test.yaml:3:10: error: every 'dayly' is not known; did you mean 'daily'? (expected one of: hourly, daily, weekly, monthly)",
                    "test.yaml:4:9: error: keep 10001 is out of range; expected a whole number from 0 to 10000",
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  every: yearly\n  keep: -1\n",
                [
                    "test.yaml:3:10: error: every 'yearly' is not known; expected one of: hourly, daily, weekly, monthly",
                    "test.yaml:4:9: error: keep -1 is out of range; expected a whole number from 0 to 10000",
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  max_age: 90\n",
                [
                    "test.yaml:4:12: error: 'max_age' is 90, a number without a unit; write the unit, such as 90d for 90 days"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  max_age: 6m\n",
                [
                    "test.yaml:4:12: error: 'max_age' is 6m, and m could mean minutes or months; write months as days, such as 180d, or minutes as seconds, such as 360s"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  max_age: 3651d\n",
                [
                    "test.yaml:4:12: error: 'max_age' is 3651d, longer than the limit of 3650d (ten years); write a shorter age"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  max_age: 0d\n",
                [
                    "test.yaml:4:12: error: 'max_age' is 0d; expected an age longer than zero, such as 30d"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  max_age: 3 months\n",
                [
                    "test.yaml:4:12: error: 'max_age' is '3 months'; expected an age such as 90d, 2w or 12h (d: days, w: weeks, h: hours, s: seconds)"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  dateext: \"-old\"\n",
                [
                    "test.yaml:4:12: error: dateext '-old' has no date conversion, so every rotation would get the same name; use %Y %m %d %H %M %S %s %j, such as \"-%Y%m%d\""
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  dateext: \"-%Y/%m\"\n",
                [
                    "test.yaml:4:16: error: dateext '-%Y/%m' contains '/'; the date is part of the rotated file's name, so use another separator such as '-'"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  dateext: '-%Y%b%d'\n",
                [
                    "test.yaml:4:16: error: dateext '-%Y%b%d' uses '%b', which is not allowed; use %Y %m %d %H %M %S %s %j (digits only), such as \"-%Y%m%d\""
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  dateext: -%Y%\n",
                [
                    "test.yaml:4:15: error: dateext '-%Y%' ends with a lone '%'; write '%%' for a percent sign, or a conversion: %Y %m %d %H %M %S %s %j"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  compress_level: 10\n",
                [
                    "test.yaml:4:19: error: compress_level 10 is out of range; expected a whole number from 1 to 9"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  compress: false\n  compress_level: 9\n  delaycompress: true\n",
                [
                    "test.yaml:5:3: error: 'compress_level' applies only with compress: true; remove compress_level:",
                    "test.yaml:6:3: error: 'delaycompress' delays compression, but compress: is false; remove delaycompress: or compress: false",
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  compress: yes\n",
                [
                    "test.yaml:4:13: error: 'compress' is 'yes'; expected true or false"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  create: \"0640\"\n",
                [
                    "test.yaml:4:11: error: 'create' is a string; expected true, false, or a map such as { mode: \"0640\", owner: analytics, group: log-readers }"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  create: { mode: \"640\", user: analytics }\n",
                [
                    "test.yaml:4:26: error: unknown key 'user' in create:; expected one of: mode, owner, group"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  message: \"{path}: {line}\"\n  resolved_message: \"done\"\n",
                [
                    "test.yaml:4:21: error: unknown field '{line}' in message; expected one of: rule, severity, host, path, rotated, size, reason, outcome",
                    "test.yaml:5:3: error: 'resolved_message' applies only to state rules (config: with when:, process: with expect:, above: or on: [zombie], service:, mode and owner rules, pressure:, disk:, listening: and escalation:); event rules never resolve",
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  then: [alert, chmod, chown, sanitize, restart, { reload: { signal: HUP } }]\n",
                [
                    "test.yaml:4:17: error: action 'chmod' does not apply to rotate rules; a rotation sets modes and owners itself: use create: { mode: …, owner: … } for the new log, olddir: for the archive directory and sweep: { chmod: … } for old archives",
                    "test.yaml:4:24: error: action 'chown' does not apply to rotate rules; a rotation sets modes and owners itself: use create: { mode: …, owner: … } for the new log, olddir: for the archive directory and sweep: { chmod: … } for old archives",
                    "test.yaml:4:31: error: action 'sanitize' does not apply to rotate rules; sanitize applies to log rules: it masks secrets in the lines of log: files",
                    "test.yaml:4:41: error: action 'restart' does not apply to rotate rules; to tell the writer to reopen its log after a rotation, use postrotate: { unit: …, command: […], signal: … }",
                    "test.yaml:4:52: error: action 'reload' does not apply to rotate rules; to tell the writer to reopen its log after a rotation, use postrotate: { unit: …, command: […], signal: … }",
                ]
            ),
            (
                "- rule: r\n  log: /var/log/a.log\n  then: [alert, rotate]\n",
                [
                    "test.yaml:3:17: error: action 'rotate' does not exist; rotation is a rule kind of its own, so write a rule with rotate: PATH and size: or every: (see docs/rules.md#rotation-rules)"
                ]
            ),
            (
                "- rule: r\n  log: /var/log/a.log\n  size: 100M\n  every: daily\n  keep: 3\n",
                [
                    "test.yaml:3:3: error: 'size' does not apply to log rules; it belongs to rotate: rules",
                    "test.yaml:4:3: error: 'every' does not apply to log rules; it belongs to rotate: rules",
                    "test.yaml:5:3: error: 'keep' does not apply to log rules; it belongs to rotate: rules",
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  mode: \"0640\"\n  olddir: /var/log/archive\n  postrotate: { unit: app }\n",
                [
                    "test.yaml:4:3: error: 'olddir' does not apply to mode and owner rules; it belongs to rotate: rules",
                    "test.yaml:5:3: error: 'postrotate' does not apply to mode and owner rules; it belongs to rotate: rules",
                ]
            ),
            (
                "- rule: r\n  process: app\n  expect: running\n  sweep: { delete_after: 9d }\n",
                [
                    "test.yaml:4:3: error: 'sweep' does not apply to process rules; it belongs to rotate: rules"
                ]
            ),
            (
                "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n  on: [written]\n  when: { key: a, is: b }\n  match: x\n  expect: running\n  mode: \"0640\"\n  owner: analytics\n  recursive: true\n",
                [
                    "test.yaml:4:3: error: 'on' does not apply to rotate rules; a rotate rule fires on each rotation, when a log reaches size: or every: comes round",
                    "test.yaml:5:3: error: 'when' does not apply to rotate rules; use a config: rule to look at keys and values",
                    "test.yaml:6:3: error: 'match' does not apply to rotate rules; it belongs to log: rules",
                    "test.yaml:7:3: error: 'expect' does not apply to rotate rules; it belongs to process: rules",
                    "test.yaml:8:3: error: 'mode' does not apply to rotate rules; write create: { mode: … } for the new log (olddir: { mode: … } for the archive directory), or a file: rule with mode: for the logs",
                    "test.yaml:9:3: error: 'owner' does not apply to rotate rules; write create: { owner: … } for the new log (olddir: { owner: … } for the archive directory), or a file: rule with owner: for the logs",
                    "test.yaml:10:3: error: 'recursive' does not apply to rotate rules; list the logs, or use a glob such as /var/log/app/*.log",
                ]
            ),
            (
                "- rule: r\n  rotate: [/var/log/a.log, /var/log//a.log]\n  size: 1M\n",
                [
                    "test.yaml:2:28: error: path '/var/log//a.log' is listed twice in rotate:; remove one of them"
                ]
            ),
            (
                "- rule: r\n  rotate: [/var/log/app/*, /var/log/app.log*]\n  size: 1M\n",
                [
                    "test.yaml:2:12: error: glob '/var/log/app/*' in rotate: ends with '*', so it also matches the rotations left beside the logs (the name, the date and .gz), which would be rotated again; end the glob with the logs' suffix such as '*.log', or move rotations away with olddir:",
                    "test.yaml:2:28: error: glob '/var/log/app.log*' in rotate: ends with '*', so it also matches the rotations left beside the logs (the name, the date and .gz), which would be rotated again; end the glob with the logs' suffix such as '*.log', or move rotations away with olddir:",
                ]
            ),
            (
                "- rule: r\n  rotate: []\n  size: 1M\n",
                [
                    "test.yaml:2:11: error: 'rotate' is an empty list; expected at least one absolute path such as /var/log/app.log"
                ]
            ),
            (
                "- rule: r\n  rotate: var/log/a.log\n  size: 1M\n",
                [
                    "test.yaml:2:11: error: path 'var/log/a.log' is not absolute; write it from the root, such as '/var/log/a.log'"
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
            "- rule: r\n  rotate: /var/log/*\n  size: 1X\n  max_age: 9\n  postrotate: { signal: HUP, flap: {} }\n  then: [chmod]\n"
        )
        #expect(compilation.diagnostics.map(\.location.line) == [2, 3, 4, 5, 5, 6])
    }
}
