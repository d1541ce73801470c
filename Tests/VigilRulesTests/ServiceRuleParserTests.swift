import Testing
import VigilRules

/// `service: NAME` compiles to an expect-running process rule about the unit, whose restart names the unit.
@Suite struct ServiceRuleParserTests {
    @Test func aServiceRuleIsAnExpectRuleAboutItsUnit() throws {
        let compilation = compileText(
            """
            - rule: upload-active
              severity: critical
              service: upload-service
              then: [alert, { restart: { command: [/usr/local/bin/upload-service] } }]
            """
        )
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let rule = try #require(compilation.ruleSet?.rules.first)
        guard case .process(let subject) = rule.subject, case .expectRunning(let minimum) = subject.trigger else {
            Issue.record("expected an expect-running process rule, got \(rule.subject)")
            return
        }
        #expect(minimum == 1)
        #expect(subject.service == "upload-service")
        #expect(subject.selector.units == ["upload-service"])
        #expect(rule.isStateRule)
        #expect(rule.message.source == "service upload-service is not active: none of its processes runs")
        guard case .restart(let restart) = rule.actions.last else {
            Issue.record("expected a restart action, got \(rule.actions)")
            return
        }
        #expect(restart.unit == "upload-service")
        #expect(restart.command == ["/usr/local/bin/upload-service"])
    }

    @Test(
        arguments: [
            (
                "- rule: r\n  service: \"upload service\"\n",
                [
                    "test.yaml:2:12: error: service 'upload service' is not a unit name; write the service's unit name as systemctl shows it, such as upload-service or upload-service.service"
                ]
            ),
            (
                "- rule: r\n  service: upload-service\n  match: ERROR\n",
                ["test.yaml:3:3: error: 'match' does not apply to service rules; it belongs to log: rules"]
            ),
            (
                "- rule: r\n  service: upload-service\n  then: [reload]\n",
                [
                    "test.yaml:3:10: error: action 'reload' does not apply to expect: rules; the rule fires when the process is not running, so there is nothing to reload; use restart"
                ]
            ),
        ] as [(String, [String])]
    )
    func errorsSayWhatIsWrongAndTheFix(_ text: String, _ expected: [String]) {
        let compilation = compileText(text)
        #expect(compilation.diagnostics.map(\.description) == expected)
    }
}
