import Testing
import VigilRules

enum PressureDiskRuleTestError: Error {
    case wrongSubject
}

/// The pressure subject of a one-rule file, or a recorded issue.
func pressureSubject(
    _ text: String,
    sourceLocation: Testing.SourceLocation = #_sourceLocation
) throws
    -> PressureSubject
{
    let rule = try onlyRule(text, sourceLocation: sourceLocation)
    guard case .pressure(let subject) = rule.subject else {
        Issue.record("not a pressure rule: \(String(describing: rule.subject))", sourceLocation: sourceLocation)
        throw PressureDiskRuleTestError.wrongSubject
    }
    #expect(rule.isSystemRule && rule.isStateRule, sourceLocation: sourceLocation)
    return subject
}

/// The disk subject of a one-rule file, or a recorded issue.
func diskSubject(_ text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> DiskSubject {
    let rule = try onlyRule(text, sourceLocation: sourceLocation)
    guard case .disk(let subject) = rule.subject else {
        Issue.record("not a disk rule: \(String(describing: rule.subject))", sourceLocation: sourceLocation)
        throw PressureDiskRuleTestError.wrongSubject
    }
    #expect(rule.isSystemRule && rule.isStateRule, sourceLocation: sourceLocation)
    return subject
}

@Suite struct PressureRuleParsingTests {
    @Test func defaultsAreSomeAndATwoSecondWindow() throws {
        let subject = try pressureSubject("- rule: p\n  pressure: memory\n  stall: 10%\n")
        #expect(
            subject
                == PressureSubject(
                    resource: .memory,
                    scope: .some,
                    stallMicroseconds: 200_000,
                    windowMicroseconds: 2_000_000
                )
        )
    }

    @Test func everyKeyIsRead() throws {
        let subject = try pressureSubject(
            """
            - rule: p
              pressure: io
              scope: full
              stall: 150ms
              within: 4s
              cgroup: /system.slice/analytics-service.service/
              message: "{resource} {scope} {stall} {window} {avg10} {cgroup} {path} {rule} {severity} {host}"
            """
        )
        #expect(
            subject
                == PressureSubject(
                    resource: .io,
                    scope: .full,
                    stallMicroseconds: 150_000,
                    windowMicroseconds: 4_000_000,
                    cgroup: "/system.slice/analytics-service.service"
                )
        )
    }

    @Test func aShareMayHaveAFractionAndCpuFullIsAllowed() throws {
        let subject = try pressureSubject("- rule: p\n  pressure: cpu\n  scope: full\n  stall: 2.5%\n  within: 10s\n")
        #expect(subject.stallMicroseconds == 250_000 && subject.scope == .full)
    }

    @Test(
        arguments: [
            (
                "- rule: p\n  pressure: memroy\n  stall: 10%\n",
                [
                    "test.yaml:2:13: error: pressure 'memroy' is not a resource; did you mean 'memory'? (expected one of: cpu, memory, io)"
                ]
            ),
            (
                "- rule: p\n  pressure: memory\n  scope: partial\n  stall: 10%\n",
                ["test.yaml:3:10: error: scope 'partial' is not known; expected one of: some, full"]
            ),
            (
                "- rule: p\n  pressure: memory\n",
                [
                    "test.yaml:1:3: error: pressure rule 'p' has no stall:; add stall: with the stalled share of the window (such as 10%) or a duration (such as 150ms)"
                ]
            ),
            (
                "- rule: p\n  pressure: memory\n  stall: 2s\n",
                [
                    "test.yaml:3:10: error: 'stall' is 2s, not shorter than the window of 2s (within:); the kernel needs a stall below the window, such as 10% or a longer within:"
                ]
            ),
            (
                "- rule: p\n  pressure: memory\n  stall: 100%\n",
                [
                    "test.yaml:3:10: error: 'stall' is '100%'; expected a share of the window above 0% and below 100%, such as 10%"
                ]
            ),
            (
                "- rule: p\n  pressure: memory\n  stall: lots\n",
                [
                    "test.yaml:3:10: error: 'stall' is 'lots'; expected a share of the window such as 10%, or a duration such as 150ms"
                ]
            ),
            (
                "- rule: p\n  pressure: memory\n  stall: 10%\n  within: 20s\n",
                [
                    "test.yaml:4:11: error: 'within' is 20s, longer than the maximum of 10s; expected a duration from 500ms to 10s"
                ]
            ),
            (
                "- rule: p\n  pressure: memory\n  stall: 10%\n  within: 100ms\n",
                [
                    "test.yaml:4:11: error: 'within' is 100ms, shorter than the minimum of 500ms; expected a duration from 500ms to 10s"
                ]
            ),
            (
                "- rule: p\n  pressure: memory\n  stall: 10%\n  cgroup: system.slice/a.service\n",
                [
                    "test.yaml:4:11: error: cgroup 'system.slice/a.service' is not absolute; write it from the cgroup root, as /proc/PID/cgroup shows it, such as '/system.slice/a.service'"
                ]
            ),
            (
                "- rule: p\n  pressure: memory\n  stall: 10%\n  above: 85%\n",
                [
                    "test.yaml:4:3: error: 'above' does not apply to pressure rules; it belongs to process: and disk: rules"
                ]
            ),
        ] as [(String, [String])]
    )
    func errorsSayWhatIsWrongAndTheFix(_ text: String, _ expected: [String]) {
        let compilation = compileText(text)
        #expect(compilation.diagnostics.map(\.description) == expected)
        #expect(compilation.ruleSet == nil)
    }
}

@Suite struct DiskRuleParsingTests {
    @Test func onePathAndTheDefaultRecheck() throws {
        let subject = try diskSubject("- rule: d\n  disk: /\n  above: 85%\n")
        #expect(subject == DiskSubject(paths: ["/"], usagePercent: 85, inodesPercent: nil, recheckMilliseconds: 60_000))
    }

    @Test func everyKeyIsRead() throws {
        let subject = try diskSubject(
            """
            - rule: d
              disk: [/, /var/log/analytics/]
              above: 92.5%
              inodes_above: 90%
              recheck: 5m
              message: "{mount} {path} {usage} {threshold} {size} {used} {available} {fstype} {inodes} {inodes_threshold}"
            """
        )
        #expect(
            subject
                == DiskSubject(
                    paths: ["/", "/var/log/analytics"],
                    usagePercent: 92.5,
                    inodesPercent: 90,
                    recheckMilliseconds: 300_000
                )
        )
    }

    @Test(
        arguments: [
            (
                "- rule: d\n  disk: /\n",
                [
                    "test.yaml:1:3: error: disk rule 'd' has neither above: nor inodes_above:, so it would never fire; add above: (such as 85%), inodes_above: (such as 90%), or both"
                ]
            ),
            (
                "- rule: d\n  disk: /\n  above: 85\n",
                [
                    "test.yaml:3:10: error: 'above' is '85'; expected a percentage such as 85%; write the percent sign: '85%'"
                ]
            ),
            (
                "- rule: d\n  disk: /\n  inodes_above: 100%\n",
                [
                    "test.yaml:3:17: error: 'inodes_above' is 100%; expected a percentage above 0% and below 100%, such as 90%"
                ]
            ),
            (
                "- rule: d\n  disk: var/log\n  above: 85%\n",
                ["test.yaml:2:9: error: path 'var/log' is not absolute; write it from the root, such as '/var/log'"]
            ),
            (
                "- rule: d\n  disk: [/var/log/*]\n  above: 85%\n",
                [
                    "test.yaml:2:10: error: path '/var/log/*' has a glob in '*'; disk: takes paths, each naming the filesystem it lives on"
                ]
            ),
            (
                "- rule: d\n  disk: [/var, /var/]\n  above: 85%\n",
                ["test.yaml:2:16: error: path '/var/' is listed twice in disk:; remove one of them"]
            ),
            (
                "- rule: d\n  disk: /\n  above: 85%\n  recheck: 10ms\n",
                [
                    "test.yaml:4:12: error: 'recheck' is 10ms, shorter than the minimum of 1s; expected a duration of at least 1s"
                ]
            ),
            (
                "- rule: d\n  disk: /\n  above: 85%\n  message: \"{mount} {pid}\"\n",
                [
                    "test.yaml:4:21: error: unknown field '{pid}' in message; expected one of: rule, severity, host, mount, path, usage, threshold, size, used, available, fstype, inodes, inodes_threshold"
                ]
            ),
        ] as [(String, [String])]
    )
    func errorsSayWhatIsWrongAndTheFix(_ text: String, _ expected: [String]) {
        let compilation = compileText(text)
        #expect(compilation.diagnostics.map(\.description) == expected)
        #expect(compilation.ruleSet == nil)
    }
}
