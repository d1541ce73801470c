import Testing
import VigilRules

/// The rule compiled from `text`, which must compile without any diagnostic.
func onlyRule(_ text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> Rule {
    let compilation = compileText(text)
    #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)", sourceLocation: sourceLocation)
    return try #require(compilation.ruleSet?.rules.first, sourceLocation: sourceLocation)
}

/// The process subject of a rule, or a recorded issue.
func processSubject(_ rule: Rule, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> ProcessSubject {
    guard case .process(let process) = rule.subject else {
        Issue.record("not a process rule: \(String(describing: rule.subject))", sourceLocation: sourceLocation)
        throw ProcessRuleTestError.wrongSubject
    }
    return process
}

/// The `restart`/`reload` options of action `index`.
func serviceAction(_ rule: Rule, _ index: Int) -> (name: String, action: ServiceAction)? {
    guard index < rule.actions.count else { return nil }
    switch rule.actions[index] {
    case .restart(let action): return ("restart", action)
    case .reload(let action): return ("reload", action)
    case .alert, .sanitize, .chmod, .chown, .exec: return nil
    }
}

enum ProcessRuleTestError: Error {
    case wrongSubject
}

@Suite struct ProcessSelectorTests {
    @Test func bareStringIsAName() throws {
        let rule = try onlyRule("- rule: r\n  process: upload-service\n  expect: running\n")
        let process = try processSubject(rule)
        #expect(process.selector == ProcessSelector(names: ["upload-service"]))
    }

    @Test(arguments: ["any", "{}"])
    func anyAndEmptyMapMatchEverything(_ written: String) throws {
        let rule = try onlyRule("- rule: r\n  process: \(written)\n  on: [zombie]\n")
        let process = try processSubject(rule)
        #expect(process.selector == ProcessSelector())
        #expect(process.selector.matchesEverything)
    }

    @Test func everyKeyTakesAStringOrAList() throws {
        let text = """
            - rule: r
              process:
                name: [upload-service, "upload-*"]
                exe: /usr/local/bin/upload-service
                argv: "*--config /etc/analytics/*"
                user: [analytics, 1001, "www-data", "0"]
                parent: [systemd, init]
                unit: upload-service
                cgroup: /system.slice/upload-service.service
              on: [exec, exit, core-dump]
            """
        let rule = try onlyRule(text)
        let selector = try processSubject(rule).selector
        #expect(
            selector
                == ProcessSelector(
                    names: ["upload-service", "upload-*"],
                    executables: ["/usr/local/bin/upload-service"],
                    commandLines: ["*--config /etc/analytics/*"],
                    users: [
                        .name("analytics", VigilRules.SourceLocation(file: "test.yaml", line: 6, column: 12)),
                        .id(1001),
                        .name("www-data", VigilRules.SourceLocation(file: "test.yaml", line: 6, column: 29)), .id(0),
                    ],
                    parents: ["systemd", "init"],
                    units: ["upload-service"],
                    cgroups: ["/system.slice/upload-service.service"]
                )
        )
        #expect(!selector.matchesEverything)
    }

    @Test func longNamesAreAcceptedQuietly() throws {
        // `processing-service` is longer than the kernel's 15-byte comm; the daemon also matches the
        // executable's and argv[0]'s base names, so the rule file needs no warning.
        let rule = try onlyRule("- rule: r\n  process: processing-service\n  expect: running\n")
        #expect(try processSubject(rule).selector.names == ["processing-service"])
    }
}

@Suite struct ProcessTriggerTests {
    @Test func expectRunningIsAStateRuleWithDefaults() throws {
        let rule = try onlyRule("- rule: up\n  process: upload-service\n  expect: running\n")
        let process = try processSubject(rule)
        guard case .expectRunning(let minimum) = process.trigger else {
            Issue.record("trigger \(String(describing: process.trigger))")
            return
        }
        #expect(minimum == 1)
        #expect(rule.isStateRule)
        #expect(rule.message.source == "{rule}: {name} is not running")
        #expect(rule.resolvedMessage?.source == "{rule}: {name} runs again (pid {pid})")
        #expect(rule.actions.count == 1)
    }

    @Test func expectRunningWithAMinimum() throws {
        let rule = try onlyRule("- rule: up\n  process: postgres\n  expect: { running: 2 }\n")
        guard case .expectRunning(let minimum) = try processSubject(rule).trigger else {
            Issue.record("trigger")
            return
        }
        #expect(minimum == 2)
        #expect(rule.message.source == "{rule}: {count} {name} processes running, fewer than {minimum}")
        #expect(rule.resolvedMessage?.source == "{rule}: {count} {name} processes running again, at least {minimum}")
    }

    @Test func writtenMessagesReplaceBothDefaults() throws {
        let rule = try onlyRule(
            "- rule: up\n  process: upload-service\n  expect: running\n  message: \"{name} down on {host}\"\n"
        )
        #expect(rule.message.source == "{name} down on {host}")
        #expect(rule.resolvedMessage == nil)
        let resolved = try onlyRule(
            "- rule: up\n  process: upload-service\n  expect: running\n  resolved_message: \"{name} back\"\n"
        )
        #expect(resolved.message.source == "{rule}: {name} is not running")
        #expect(resolved.resolvedMessage?.source == "{name} back")
    }

    @Test func eventsWithAndWithoutExitFilter() throws {
        let rule = try onlyRule("- rule: e\n  process: upload-service\n  on: [exec, exit, core-dump, exit]\n")
        guard case .events(let kinds, let filter) = try processSubject(rule).trigger else {
            Issue.record("trigger")
            return
        }
        #expect(kinds == Set<ProcessEventKind>([.exec, .exit, .coreDump]))
        #expect(filter == nil)
        #expect(!rule.isStateRule)
        #expect(rule.message.source == "{rule}: {name} (pid {pid}) {status}")
        #expect(rule.resolvedMessage == nil)

        let single = try onlyRule("- rule: e\n  process: upload-service\n  on: exit\n")
        guard case .events(let singleKinds, nil) = try processSubject(single).trigger else {
            Issue.record("trigger")
            return
        }
        #expect(singleKinds == Set<ProcessEventKind>([.exit]))
    }

    @Test(
        arguments: [
            ("{ code: nonzero, signal: any }", ExitFilter(codes: .nonzero, signals: .any)),
            ("{ code: any }", ExitFilter(codes: .any, signals: nil)),
            ("{ code: 3 }", ExitFilter(codes: .list([3]), signals: nil)),
            ("{ code: [0, 1, \"255\"] }", ExitFilter(codes: .list([0, 1, 255]), signals: nil)),
            ("{ signal: KILL }", ExitFilter(codes: nil, signals: .list([9]))),
            (
                "{ signal: [SIGKILL, segv, 6, SigTerm, RTMIN, RTMIN+1, RTMAX-2, IOT] }",
                ExitFilter(codes: nil, signals: .list([9, 11, 6, 15, 34, 35, 62, 6]))
            ),
        ]
    )
    func exitFilters(_ written: String, _ expected: ExitFilter) throws {
        let rule = try onlyRule("- rule: e\n  process: upload-service\n  on: [exit]\n  exit: \(written)\n")
        guard case .events(_, let filter) = try processSubject(rule).trigger else {
            Issue.record("trigger")
            return
        }
        #expect(filter == expected)
    }

    @Test func zombieGraceDefaultsToFiveSeconds() throws {
        let rule = try onlyRule("- rule: z\n  process: any\n  on: [zombie]\n")
        guard case .zombie(let grace) = try processSubject(rule).trigger else {
            Issue.record("trigger")
            return
        }
        #expect(grace == 5000)
        #expect(rule.isStateRule)
        #expect(
            rule.message.source
                == "{rule}: {name} (pid {pid}) is a zombie; its parent {parent} (pid {ppid}) has not reaped it"
        )
        #expect(rule.resolvedMessage?.source == "{rule}: zombie {name} (pid {pid}) is gone")
    }

    @Test(arguments: [
        ("500ms", 500), ("5s", 5000), ("2m", 120_000), ("1h", 3_600_000), ("7", 7000), ("24h", 86_400_000),
    ])
    func durations(_ written: String, _ milliseconds: Int) throws {
        let rule = try onlyRule("- rule: z\n  process: any\n  on: [zombie]\n  grace: \(written)\n")
        guard case .zombie(let grace) = try processSubject(rule).trigger else {
            Issue.record("trigger")
            return
        }
        #expect(grace == milliseconds)
    }

    @Test func durationsLongerThanADayAreRefused() {
        #expect(
            compileText("- rule: z\n  process: any\n  on: [zombie]\n  grace: 25h\n").diagnostics.map(\.description) == [
                "test.yaml:4:10: error: 'grace' is 25h, longer than the limit of 24h; write a shorter duration"
            ]
        )
    }

    @Test func rootAllowExpandsListsInOrderWithoutRepeats() throws {
        let compilation = RuleCompiler.compile(sources: [
            (
                file: "rules.yaml",
                text: """
                - rule: root
                  process: any
                  on: [root]
                  allow: [/usr/bin/sudo, daemons, /usr/sbin/sshd, more]
                """
            ),
            (
                file: "lists.yaml",
                text: """
                - list: daemons
                  items: [/usr/sbin/sshd, /usr/sbin/cron, "/usr/lib/systemd/*"]
                - list: more
                  items: [/usr/sbin/cron, /sbin/agetty]
                """
            ),
        ])
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let rule = try #require(compilation.ruleSet?.rules.first)
        guard case .root(let allow) = try processSubject(rule).trigger else {
            Issue.record("trigger")
            return
        }
        #expect(allow == ["/usr/bin/sudo", "/usr/sbin/sshd", "/usr/sbin/cron", "/usr/lib/systemd/*", "/sbin/agetty"])
        #expect(!rule.isStateRule)
        #expect(rule.message.source == "{rule}: {exe} (pid {pid}) runs as root; parent {parent} (pid {ppid})")
        // The lists themselves stay in the set as written.
        #expect(compilation.ruleSet?.lists["more"] == ["/usr/sbin/cron", "/sbin/agetty"])
    }

    @Test func rootWithoutAllowAlertsOnEveryRootProcess() throws {
        let rule = try onlyRule("- rule: root\n  process: { user: 0 }\n  on: root\n")
        guard case .root(let allow) = try processSubject(rule).trigger else {
            Issue.record("trigger")
            return
        }
        #expect(allow.isEmpty)
    }

    @Test func unknownListWithoutAnyListSaysHowToDefineIt() {
        #expect(
            compileText("- rule: r\n  process: any\n  on: [root]\n  allow: [trusted]\n").diagnostics.map(\.description)
                == [
                    "test.yaml:4:11: error: unknown list 'trusted' in allow:; entries that do not start with '/' name lists, so define '- list: trusted' with items:, or write the executable's absolute path such as /usr/bin/trusted"
                ]
        )
    }
}

@Suite struct ServiceActionTests {
    @Test func bareRestartTakesEveryDefault() throws {
        let rule = try onlyRule("- rule: r\n  process: upload-service\n  expect: running\n  then: [alert, restart]\n")
        let (name, action) = try #require(serviceAction(rule, 1))
        #expect(name == "restart")
        #expect(action.location == VigilRules.SourceLocation(file: "test.yaml", line: 4, column: 17))
        #expect(action.unit == nil)
        #expect(action.command == nil)
        #expect(action.signal == nil)
        #expect(action.backoffMilliseconds == 1000)
        #expect(action.maximumBackoffMilliseconds == 60_000)
        #expect(action.flapLimit == 5)
        #expect(action.flapWindowMilliseconds == 60_000)
        #expect(action.confirmMilliseconds == 10_000)
    }

    @Test func restartWithEveryOption() throws {
        let text = """
            - rule: r
              process: { exe: /usr/local/bin/upload-service, user: analytics }
              on: [exit]
              then:
                - alert
                - restart:
                    unit: upload-service.service
                    command: [/usr/bin/systemctl, restart, upload-service]
                    signal: SIGTERM
                    backoff: 2s
                    max_backoff: 5m
                    flap: { restarts: 3, within: 10m }
                    confirm_within: 15s
            """
        let rule = try onlyRule(text)
        let (name, action) = try #require(serviceAction(rule, 1))
        #expect(name == "restart")
        #expect(action.location == VigilRules.SourceLocation(file: "test.yaml", line: 6, column: 7))
        #expect(action.unit == "upload-service.service")
        #expect(action.command == ["/usr/bin/systemctl", "restart", "upload-service"])
        #expect(action.signal == 15)
        #expect(action.backoffMilliseconds == 2000)
        #expect(action.maximumBackoffMilliseconds == 300_000)
        #expect(action.flapLimit == 3)
        #expect(action.flapWindowMilliseconds == 600_000)
        #expect(action.confirmMilliseconds == 15_000)
    }

    @Test func flapTakesEitherPart() throws {
        let rule = try onlyRule(
            "- rule: r\n  process: upload-service\n  on: exit\n  then: [{ restart: { flap: { restarts: 2 } } }]\n"
        )
        let (_, action) = try #require(serviceAction(rule, 0))
        #expect(action.flapLimit == 2)
        #expect(action.flapWindowMilliseconds == 60_000)
    }

    @Test(
        arguments: [
            ("reload", nil, nil, nil),
            ("{ reload: { unit: analytics-service } }", "analytics-service", nil, nil),
            ("{ reload: { command: [/usr/sbin/nginx, -s, reload] } }", nil, ["/usr/sbin/nginx", "-s", "reload"], nil),
            ("{ reload: { signal: USR1 } }", nil, nil, Int32(10)),
            ("{ reload: { signal: 1 } }", nil, nil, Int32(1)),
            ("{ reload: {} }", nil, nil, nil),
        ] as [(String, String?, [String]?, Int32?)]
    )
    func reloadForms(_ written: String, _ unit: String?, _ command: [String]?, _ signal: Int32?) throws {
        let rule = try onlyRule("- rule: r\n  process: analytics-service\n  on: [exec]\n  then: [alert, \(written)]\n")
        let (name, action) = try #require(serviceAction(rule, 1))
        #expect(name == "reload")
        #expect(action.unit == unit)
        #expect(action.command == command)
        #expect(action.signal == signal)
    }

    @Test func restartOnExpectWithOnlySignalIsRefusedButWithUnitIsFine() throws {
        _ = try onlyRule(
            "- rule: r\n  process: upload-service\n  expect: running\n  then: [{ restart: { unit: upload-service, signal: TERM } }]\n"
        )
        #expect(
            compileText(
                "- rule: r\n  process: upload-service\n  expect: running\n  then: [{ restart: { signal: TERM } }]\n"
            ).errorCount == 1
        )
    }
}

@Suite struct ProcessFixtureTests {
    @Test func processFixtureCompilesToTheDocumentedForms() throws {
        let compilation = try compileFixture("valid/process.yaml")
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let set = try #require(compilation.ruleSet)
        #expect(
            set.rules.map(\.id) == [
                "upload-service-running", "upload-service-exit", "zombies", "unexpected-root-process",
                "analytics-reload",
            ]
        )
        #expect(set.rules.map(\.isStateRule) == [true, false, true, false, false])
        let exit = try processSubject(set.rules[1])
        #expect(
            exit.selector
                == ProcessSelector(
                    executables: ["/usr/local/bin/upload-service"],
                    users: [
                        .name("analytics", VigilRules.SourceLocation(file: "valid/process.yaml", line: 14, column: 56))
                    ]
                )
        )
        let root = try processSubject(set.rules[3])
        guard case .root(let allow) = root.trigger else {
            Issue.record("trigger")
            return
        }
        #expect(allow == ["/usr/sbin/sshd", "/usr/sbin/cron", "/usr/lib/systemd/*", "/usr/bin/sudo"])
        let (name, reload) = try #require(serviceAction(set.rules[4], 1))
        #expect(name == "reload")
        #expect(reload.signal == 1)
    }

    @Test func processFieldsAreTheDocumentedOnes() {
        #expect(
            MessageTemplate.processFields == [
                "rule", "severity", "host", "pid", "ppid", "name", "exe", "argv", "user", "uid", "euid", "parent",
                "unit", "cgroup", "event", "code", "signal", "core", "status", "count", "minimum", "grace",
                "restarts", "cpu", "memory", "rss", "threshold", "held",
            ]
        )
    }
}
