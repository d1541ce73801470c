import Foundation
import Testing
import VigilRules

#if canImport(Glibc)
import Glibc
#endif

/// Shipped rules (replaced by upgrades) and local rules (never touched): `override: true` and `disable:`.
@Suite struct RuleLayerTests {
    static let shipped = """
        - rule: tmp-world-writable
          file: /tmp/a
        - rule: passwd-changed
          file: /etc/passwd
          then: [alert: [ops]]
        - sink: ops
          type: stdout
        - list: trusted
          items: [/usr/sbin/sshd]

        """

    /// Compiles `local` (as `local.d/local.yaml`) over the shipped rules (as `rules.d/shipped.yaml`).
    static func compile(_ local: String, shipped: String = shipped) -> RuleCompilation {
        RuleCompiler.compile(
            shippedSources: [(file: "rules.d/shipped.yaml", text: shipped)],
            localSources: [(file: "local.d/local.yaml", text: local)]
        )
    }

    @Test func aLocalRuleWithOverrideReplacesTheShippedRule() throws {
        let compilation = Self.compile("- rule: tmp-world-writable\n  override: true\n  file: /tmp/b\n")
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let set = try #require(compilation.ruleSet)
        #expect(set.rules.map(\.id) == ["passwd-changed", "tmp-world-writable"])
        let replaced = try #require(set.rules.first { $0.id == "tmp-world-writable" })
        #expect(replaced.location == SourceLocation(file: "local.d/local.yaml", line: 1, column: 3))
        guard case .file(let subject) = replaced.subject else {
            Issue.record("expected a file rule, got \(replaced.subject)")
            return
        }
        #expect(subject.path.raw == "/tmp/b")
        #expect(
            compilation.layerChanges.map(\.description) == [
                "shipped rule 'tmp-world-writable' (rules.d/shipped.yaml:1:3) is overridden by local.d/local.yaml:1:3"
            ]
        )
        #expect(set.files == ["rules.d/shipped.yaml", "local.d/local.yaml"])
    }

    @Test func aLocalRuleWithAShippedIdButNoOverrideIsAnError() {
        let compilation = Self.compile("- rule: passwd-changed\n  file: /etc/shadow\n")
        #expect(compilation.ruleSet == nil)
        #expect(
            compilation.diagnostics.map(\.description) == [
                "local.d/local.yaml:1:9: error: rule id 'passwd-changed' is already a shipped rule (rules.d/shipped.yaml:3:3); add override: true to replace it, or pick another id"
            ]
        )
    }

    @Test func overrideOnAnIdNoShippedRuleHasIsAWarning() throws {
        let compilation = Self.compile("- rule: tmp-world-writeable\n  override: true\n  file: /tmp/b\n")
        #expect(
            compilation.diagnostics.map(\.description) == [
                "local.d/local.yaml:2:3: warning: override: true, but no shipped rule has id 'tmp-world-writeable' (it may have been renamed or removed in an upgrade), so this rule is loaded as a new one; remove override: or use the shipped rule's current id"
            ]
        )
        #expect(try #require(compilation.ruleSet).rules.count == 3)
    }

    @Test func disableTurnsShippedRulesOffByIdAsAListOrASingleId() throws {
        for local in ["- disable: [tmp-world-writable, passwd-changed]\n", "- disable: tmp-world-writable\n"] {
            let compilation = Self.compile(local)
            #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
            let set = try #require(compilation.ruleSet)
            #expect(set.rules.count == 2, "disabled rules stay in the set, turned off")
            #expect(set.rules.first { $0.id == "tmp-world-writable" }?.enabled == false)
            #expect(
                set.rules.first { $0.id == "passwd-changed" }?.enabled == local.contains("passwd-changed")
                    ? false : true
            )
            #expect(
                compilation.layerChanges.first?.description
                    == "shipped rule 'tmp-world-writable' (rules.d/shipped.yaml:1:3) is disabled by local.d/local.yaml:1:\(local.contains("[") ? 13 : 12)"
            )
        }
    }

    @Test func disablingAnUnknownIdIsAWarningSoAnUpgradeThatDropsARuleStillLoads() throws {
        let compilation = Self.compile("- disable: [tmp-world-writeable]\n")
        #expect(compilation.errorCount == 0)
        #expect(
            compilation.diagnostics.map(\.description) == [
                "local.d/local.yaml:1:13: warning: disable: names 'tmp-world-writeable', but no shipped rule has that id (it may have been renamed or removed in an upgrade), so nothing is disabled; remove it from disable: (did you mean 'tmp-world-writable'?)"
            ]
        )
        #expect(try #require(compilation.ruleSet).rules.allSatisfy(\.enabled))
    }

    @Test func disablingAndOverridingTheSameRuleIsAnError() {
        let compilation = Self.compile(
            "- disable: [passwd-changed]\n- rule: passwd-changed\n  override: true\n  file: /etc/shadow\n"
        )
        #expect(
            compilation.diagnostics.map(\.description) == [
                "local.d/local.yaml:1:13: error: rule 'passwd-changed' is both disabled here and overridden at local.d/local.yaml:2:3; keep one: disable: turns the shipped rule off, override: true replaces it"
            ]
        )
    }

    @Test func duplicateIdsWithinTheLocalLayerStayErrors() {
        let compilation = Self.compile("- rule: mine\n  file: /etc/a\n- rule: mine\n  file: /etc/b\n")
        #expect(
            compilation.diagnostics.map(\.description) == [
                "local.d/local.yaml:3:9: error: duplicate rule id 'mine'; first defined at local.d/local.yaml:1:3"
            ]
        )
    }

    @Test func sinksAndListsWithShippedNamesNeedOverride() throws {
        let clash = Self.compile("- sink: ops\n  type: stdout\n- list: trusted\n  items: [/usr/sbin/cron]\n")
        #expect(
            clash.diagnostics.map(\.description) == [
                "local.d/local.yaml:1:9: error: sink name 'ops' is already a shipped sink (rules.d/shipped.yaml:6:3); add override: true to replace it, or pick another name",
                "local.d/local.yaml:3:9: error: list name 'trusted' is already a shipped list (rules.d/shipped.yaml:8:3); add override: true to replace it, or pick another name",
            ]
        )
        let replaced = Self.compile(
            "- sink: ops\n  type: jsonl\n  path: /var/log/vigil/ops.jsonl\n  override: true\n- list: trusted\n  override: true\n  items: [/usr/sbin/cron]\n"
        )
        #expect(replaced.diagnostics.isEmpty, "\(replaced.diagnostics)")
        let set = try #require(replaced.ruleSet)
        #expect(set.sinks.map(\.kind) == [.jsonl(path: "/var/log/vigil/ops.jsonl")])
        #expect(set.lists == ["trusted": ["/usr/sbin/cron"]])
        #expect(replaced.layerChanges.map(\.item) == [.sink, .list])
        let unknown = Self.compile("- sink: pager\n  type: stdout\n  override: true\n")
        #expect(unknown.diagnostics.map(\.severity) == [.warning])
        #expect(
            unknown.diagnostics.first?.message.hasPrefix("override: true, but no shipped sink is named 'pager'") == true
        )
    }

    @Test func localRulesUseShippedSinks() throws {
        let compilation = Self.compile("- rule: mine\n  file: /etc/a\n  then: [alert: [ops]]\n")
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        #expect(try #require(compilation.ruleSet).rules.count == 3)
    }

    @Test func disableAndOverrideDoNotBelongInShippedRules() {
        let compilation = RuleCompiler.compile(
            sources: [(file: "rules.d/a.yaml", text: "- disable: [x]\n- rule: x\n  override: true\n  file: /etc/a\n")]
        )
        #expect(
            compilation.diagnostics.map(\.description) == [
                "rules.d/a.yaml:1:13: error: disable: belongs in local rule files (/etc/vigil/local.d, --local-rules), which upgrades never replace; in shipped rules remove rule 'x' or set enabled: false on it",
                "rules.d/a.yaml:3:3: warning: override: true has no effect in shipped rules; it belongs on a rule in a local rule file (/etc/vigil/local.d, --local-rules) that replaces a shipped rule, so remove it here",
            ]
        )
    }

    @Test func aDisableItemTakesOnlyIds() {
        let compilation = Self.compile("- disable: [Bad Id]\n  rule: x\n")
        #expect(
            compilation.diagnostics.map(\.description) == [
                "local.d/local.yaml:1:13: error: rule id 'Bad Id' is not valid; use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit",
                "local.d/local.yaml:2:3: error: unknown key 'rule' in disable:; a disable: item only lists rule ids, such as '- disable: [tmp-world-writable]'",
            ]
        )
    }

    @Test func anEmptyLocalDirectoryIsNoErrorButAnEmptyShippedOneIs() throws {
        let shipped = try makeTemporaryDirectory().path
        let local = try makeTemporaryDirectory().path
        defer {
            try? FileManager.default.removeItem(atPath: shipped)
            try? FileManager.default.removeItem(atPath: local)
        }
        try "- rule: x\n  file: /etc/a\n".write(toFile: shipped + "/a.yaml", atomically: false, encoding: .utf8)
        try "see docs/operations.md\n".write(toFile: local + "/README.txt", atomically: false, encoding: .utf8)
        let compilation = RuleCompiler.compile(shipped: [shipped], local: [local])
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        #expect(compilation.ruleSet?.rules.map(\.id) == ["x"])
        #expect(RuleCompiler.compile(shipped: [local], local: []).errorCount == 1)
    }
}
