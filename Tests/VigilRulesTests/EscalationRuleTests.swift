import Testing
import VigilRules

/// `escalation:` rules: the sources, `any`, `also:`, the default messages, and the errors.
@Suite struct EscalationRuleTests {
    /// The escalation subject of the only rule of `text`.
    func subject(_ text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> EscalationSubject? {
        let compilation = compileText(text)
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)", sourceLocation: sourceLocation)
        guard let rule = compilation.ruleSet?.rules.first, case .escalation(let subject) = rule.subject else {
            Issue.record("not an escalation rule", sourceLocation: sourceLocation)
            return nil
        }
        #expect(rule.isEscalationRule && rule.isStateRule, sourceLocation: sourceLocation)
        return subject
    }

    @Test func sourcesAreReadAsWritten() {
        #expect(
            subject("- rule: r\n  severity: critical\n  escalation: [cron, systemd]\n")
                == EscalationSubject(sources: [.cron, .systemd])
        )
        #expect(subject("- rule: r\n  escalation: cron\n") == EscalationSubject(sources: [.cron]))
        #expect(subject("- rule: r\n  escalation: [systemd]\n") == EscalationSubject(sources: [.systemd]))
    }

    @Test func anyMeansEverySource() {
        #expect(subject("- rule: r\n  escalation: any\n") == EscalationSubject(sources: [.cron, .systemd]))
    }

    @Test func alsoAddsProgramsRootRuns() {
        #expect(
            subject("- rule: r\n  escalation: cron\n  also: [/usr/local/sbin/backup.sh, /opt/x/run]\n")
                == EscalationSubject(sources: [.cron], also: ["/usr/local/sbin/backup.sh", "/opt/x/run"])
        )
    }

    @Test func defaultMessagesNameTheProgramTheSourceAndTheWriter() throws {
        let compilation = compileText("- rule: r\n  escalation: cron\n")
        let rule = try #require(compilation.ruleSet?.rules.first)
        let fields: (String) -> String? = { name in
            [
                "program": "/home/aanya/scripts/m.sh", "source": "/etc/crontab:3", "writer": "user aanya",
                "path": "/home/aanya/scripts", "reason": "owned by aanya", "fix": "chown root:root /home/aanya/scripts",
                "outcome": "only root can write it",
            ][name]
        }
        #expect(
            rule.message.render(fields)
                == "root runs /home/aanya/scripts/m.sh (/etc/crontab:3), but user aanya can write /home/aanya/scripts: owned by aanya; fix: chown root:root /home/aanya/scripts"
        )
        #expect(rule.resolvedMessage?.render(fields) == "Resolved: /home/aanya/scripts/m.sh: only root can write it")
    }

    @Test(
        arguments: [
            (
                "- rule: r\n  escalation: [crn]\n",
                [
                    "test.yaml:2:16: error: unknown escalation source 'crn'; did you mean 'cron'? (expected one of: cron, systemd, any)"
                ]
            ),
            (
                "- rule: r\n  escalation: [cron, upstart]\n",
                [
                    "test.yaml:2:22: error: unknown escalation source 'upstart'; expected one of: cron, systemd, any"
                ]
            ),
            (
                "- rule: r\n  escalation: []\n",
                [
                    "test.yaml:2:15: error: 'escalation' is an empty list; expected at least one of: cron, systemd, any, such as escalation: [cron, systemd]"
                ]
            ),
            (
                "- rule: r\n  escalation: { cron: true }\n",
                ["test.yaml:2:15: error: 'escalation' is a map; expected a list of strings"]
            ),
            (
                "- rule: r\n  escalation: cron\n  also: [usr/local/sbin/b.sh]\n",
                [
                    "test.yaml:3:10: error: path 'usr/local/sbin/b.sh' is not absolute; write it from the root, such as '/usr/local/sbin/b.sh'"
                ]
            ),
            (
                "- rule: r\n  escalation: cron\n  also: [/usr/local/sbin/*.sh]\n",
                [
                    "test.yaml:3:10: error: path '/usr/local/sbin/*.sh' in also: contains a glob; name each program root runs"
                ]
            ),
            (
                "- rule: r\n  escalation: cron\n  stall: 10%\n",
                ["test.yaml:3:3: error: 'stall' does not apply to escalation rules; it belongs to pressure: rules"]
            ),
            (
                "- rule: r\n  escalation: cron\n  message: \"{program} {nope}\"\n",
                [
                    "test.yaml:3:23: error: unknown field '{nope}' in message; expected one of: rule, severity, host, program, path, source, writer, reason, fix, outcome"
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
