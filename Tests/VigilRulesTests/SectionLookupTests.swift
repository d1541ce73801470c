import Testing
import VigilCore
import VigilRules

/// A bare key in a rule finds the setting inside sections too, so adding an `[upload]` header above
/// `verify_ssl = false` does not hide it.
@Suite struct SectionLookupTests {
    private func condition(_ yaml: String) throws -> Condition {
        let text = """
            - rule: r
              config: /etc/x.conf
              when: \(yaml)

            """
        let compilation = RuleCompiler.compile(sources: [(file: "t.yaml", text: text)])
        let rule = try #require(compilation.ruleSet?.rules.first, "\(compilation.diagnostics)")
        guard case .config(let subject) = rule.subject, case .when(let condition) = subject.trigger else {
            throw ConditionMissing()
        }
        return condition
    }

    private struct ConditionMissing: Error {}

    private func snapshot(_ text: String) throws -> ConfigSnapshot {
        try #require(ConfigParser.parse(text).snapshot)
    }

    @Test func bareKeyFindsTheSettingInASection() throws {
        let c = try condition("{ key: verify_ssl, is: false }")
        #expect(c.evaluate(try snapshot("[upload]\nverify_ssl = false\n")))
        #expect(!c.evaluate(try snapshot("[upload]\nverify_ssl = true\n")))
        #expect(c.evaluate(try snapshot("[a]\nverify_ssl = true\n[b]\nverify_ssl = off\n")), "any section")
        #expect(try snapshot("[a]\nverify_ssl = true\n[b]\nverify_ssl = off\n").value(forKey: "verify_ssl") == "true")
    }

    @Test func topLevelSettingWinsOverSections() throws {
        let c = try condition("{ key: verify_ssl, is: false }")
        #expect(!c.evaluate(try snapshot("verify_ssl = true\n[b]\nverify_ssl = false\n")))
    }

    @Test func sectionKeyNamesOnlyThatSection() throws {
        let c = try condition("{ key: b.verify_ssl, is: false }")
        #expect(!c.evaluate(try snapshot("[a]\nverify_ssl = false\n[b]\nverify_ssl = true\n")))
        #expect(c.evaluate(try snapshot("[a]\nverify_ssl = true\n[b]\nverify_ssl = false\n")))
    }

    @Test func missingMeansNowhere() throws {
        let c = try condition("{ key: verify_ssl, missing: true }")
        #expect(!c.evaluate(try snapshot("[upload]\nverify_ssl = false\n")))
        #expect(c.evaluate(try snapshot("[upload]\nother = 1\n")))
    }
}
