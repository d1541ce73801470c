import Testing
import VigilCore
import VigilRules

/// A snapshot from `key = value` pairs (keys already in lookup form).
func snapshot(_ pairs: [String: String]) -> ConfigSnapshot {
    var entries: [String: ConfigEntry] = [:]
    for (key, value) in pairs {
        entries[key] = ConfigEntry(key: key, rawKey: key, value: value, line: 1)
    }
    return ConfigSnapshot(entries: entries)
}

/// A one-key condition.
func keyTest(_ key: String, _ test: KeyTest) -> Condition {
    .key(KeyCondition(key: key, test: test), SourceLocation(file: "t", line: 1, column: 1))
}

@Suite struct LiteralMatchingTests {
    @Test(arguments: ["false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "0", " false ", "\tno"])
    func falseSpellings(_ value: String) {
        #expect(ConfigLiteral.bool(false).matches(configValue: value))
        #expect(!ConfigLiteral.bool(true).matches(configValue: value))
    }

    @Test(arguments: ["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "1", " true "])
    func trueSpellings(_ value: String) {
        #expect(ConfigLiteral.bool(true).matches(configValue: value))
        #expect(!ConfigLiteral.bool(false).matches(configValue: value))
    }

    @Test(arguments: ["", "maybe", "2", "falsey", "n", "disabled"])
    func otherValuesAreNeitherTrueNorFalse(_ value: String) {
        #expect(!ConfigLiteral.bool(true).matches(configValue: value))
        #expect(!ConfigLiteral.bool(false).matches(configValue: value))
    }

    @Test func numbersCompareNumerically() {
        #expect(ConfigLiteral.number(80).matches(configValue: "80"))
        #expect(ConfigLiteral.number(80).matches(configValue: "80.0"))
        #expect(ConfigLiteral.number(80).matches(configValue: "+80"))
        #expect(ConfigLiteral.number(80).matches(configValue: " 080 "))
        #expect(ConfigLiteral.number(-1.5).matches(configValue: "-1.50"))
        #expect(ConfigLiteral.number(0.5).matches(configValue: ".5"))
        #expect(!ConfigLiteral.number(80).matches(configValue: "81"))
        #expect(!ConfigLiteral.number(80).matches(configValue: "80s"))
        #expect(!ConfigLiteral.number(16).matches(configValue: "0x10"))
        #expect(!ConfigLiteral.number(1000).matches(configValue: "1e3"))
        #expect(!ConfigLiteral.number(0).matches(configValue: "nan"))
        #expect(!ConfigLiteral.number(0).matches(configValue: ""))
    }

    @Test func stringsCompareExactly() {
        #expect(ConfigLiteral.string("https://x").matches(configValue: "https://x"))
        #expect(!ConfigLiteral.string("https://x").matches(configValue: "HTTPS://x"))
        #expect(!ConfigLiteral.string("false").matches(configValue: "no"))
        #expect(ConfigLiteral.string("false").matches(configValue: "false"))
    }
}

@Suite struct ConditionEvaluationTests {
    let config = snapshot([
        "verify_ssl": "False", "port": "8080", "mode": "fast", "limits.max": "12.5", "name": "upload",
    ])

    @Test func equalityTests() {
        #expect(keyTest("verify_ssl", .equals(.bool(false))).evaluate(config))
        #expect(!keyTest("verify_ssl", .notEquals(.bool(false))).evaluate(config))
        #expect(keyTest("port", .equals(.number(8080))).evaluate(config))
        #expect(keyTest("mode", .oneOf([.string("slow"), .string("fast")])).evaluate(config))
        #expect(!keyTest("mode", .oneOf([.string("slow"), .number(1)])).evaluate(config))
        #expect(keyTest("name", .notEquals(.string("download"))).evaluate(config))
    }

    @Test func orderingTests() {
        #expect(keyTest("port", .greaterThan(1024)).evaluate(config))
        #expect(keyTest("port", .greaterOrEqual(8080)).evaluate(config))
        #expect(!keyTest("port", .lessThan(8080)).evaluate(config))
        #expect(keyTest("port", .lessOrEqual(8080)).evaluate(config))
        #expect(!keyTest("mode", .greaterThan(0)).evaluate(config))
        #expect(!keyTest("mode", .lessThan(0)).evaluate(config))
    }

    @Test func sectionsAreAddressedAsSectionDotKey() {
        #expect(keyTest("limits.max", .lessThan(13)).evaluate(config))
        #expect(!keyTest("other.max", .present).evaluate(config))
        // A bare key with no top-level setting finds it in a section (see SectionLookupTests).
        #expect(keyTest("max", .present).evaluate(config))
    }

    @Test func absentKeysFailEveryTestButMissing() {
        let tests: [KeyTest] = [
            .equals(.bool(false)), .notEquals(.bool(false)), .notEquals(.string("x")), .oneOf([.string("x")]),
            .greaterThan(0), .greaterOrEqual(0), .lessThan(0), .lessOrEqual(0), .present,
        ]
        for test in tests {
            #expect(!keyTest("absent", test).evaluate(config), "\(test)")
        }
        #expect(keyTest("absent", .missing).evaluate(config))
        #expect(!keyTest("port", .missing).evaluate(config))
        #expect(keyTest("port", .present).evaluate(config))
    }

    @Test func combinators() {
        let yes = keyTest("port", .present)
        let no = keyTest("absent", .present)
        #expect(Condition.all([yes, yes]).evaluate(config))
        #expect(!Condition.all([yes, no]).evaluate(config))
        #expect(Condition.any([no, yes]).evaluate(config))
        #expect(!Condition.any([no, no]).evaluate(config))
        #expect(Condition.not(no).evaluate(config))
        #expect(!Condition.not(yes).evaluate(config))
        #expect(Condition.not(keyTest("absent", .equals(.bool(true)))).evaluate(config))
        #expect(Condition.all([.any([no, yes]), .not(no)]).evaluate(config))
    }

    @Test func keysMentionedAreDeduplicatedInOrder() {
        let condition = Condition.all([
            keyTest("b", .present), .any([keyTest("a", .present), .not(keyTest("b", .missing))]),
            keyTest("c", .present),
        ])
        #expect(condition.keysMentioned() == ["b", "a", "c"])
    }

    @Test func compiledConditionsEvaluateLikeWritten() throws {
        let compilation = compileText(
            """
            - rule: x
              config: /etc/a
              when: { all: [{ key: Verify_SSL, is: false }, { not: { key: Limits.Max, gt: 20 } }] }
            """
        )
        let rule = try #require(compilation.ruleSet?.rules.first)
        guard case .config(let subject) = rule.subject, case .when(let condition) = subject.trigger else {
            Issue.record("unexpected subject")
            return
        }
        #expect(condition.evaluate(config))
        #expect(!condition.evaluate(snapshot(["verify_ssl": "yes", "limits.max": "1"])))
        #expect(!condition.evaluate(snapshot(["verify_ssl": "0", "limits.max": "21"])))
        #expect(condition.evaluate(snapshot(["verify_ssl": "0"])))
    }
}

@Suite struct ChangedKeyMatchingTests {
    @Test func globsMatchCaseInsensitively() {
        let trigger = ConfigTrigger.changes(["api_*", "metrics_url", "db.[hp]*"])
        #expect(trigger.matchesChangedKey("api_url"))
        #expect(trigger.matchesChangedKey("API_KEY"))
        #expect(trigger.matchesChangedKey("Metrics_URL"))
        #expect(trigger.matchesChangedKey("db.host"))
        #expect(trigger.matchesChangedKey("db.port"))
        #expect(!trigger.matchesChangedKey("db.user"))
        #expect(!trigger.matchesChangedKey("metrics_url2"))
        #expect(!trigger.matchesChangedKey("xapi_url"))
    }

    @Test func starMatchesEveryKey() {
        let trigger = ConfigTrigger.changes(["*"])
        #expect(trigger.matchesChangedKey("anything"))
        #expect(trigger.matchesChangedKey("section.key"))
        #expect(trigger.matchesChangedKey(""))
    }

    @Test func questionMarkAndNegatedSets() {
        let trigger = ConfigTrigger.changes(["key?", "v[!0-9]"])
        #expect(trigger.matchesChangedKey("key1"))
        #expect(!trigger.matchesChangedKey("key12"))
        #expect(trigger.matchesChangedKey("vx"))
        #expect(!trigger.matchesChangedKey("v1"))
    }

    @Test func stateRulesMatchTheKeysTheyRead() {
        let trigger = ConfigTrigger.when(keyTest("verify_ssl", .present))
        #expect(trigger.matchesChangedKey("VERIFY_SSL"))
        #expect(!trigger.matchesChangedKey("port"))
    }

    @Test func namePatternsFollowFnmatchWithLeadingPeriod() {
        #expect(NamePattern.glob("*.conf").matches("upload.conf"))
        #expect(!NamePattern.glob("*.conf").matches(".upload.conf"))
        #expect(NamePattern.glob(".*.conf").matches(".upload.conf"))
        #expect(!NamePattern.glob("*.conf").matches("upload.conf~"))
        #expect(NamePattern.exact("a.conf").matches("a.conf"))
        #expect(!NamePattern.exact("a.conf").matches("A.conf"))
        #expect(NamePattern.glob("app[0-9].conf").matches("app7.conf"))
        #expect(NamePattern.glob("a\\*b").matches("a*b"))
        #expect(!NamePattern.glob("a\\*b").matches("axb"))
    }
}
