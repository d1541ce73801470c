import Testing
import VigilRules

#if canImport(Glibc)
import Glibc
#endif

/// `above:` and `sample:` of process rules: CPU, memory share and resident-set thresholds with a hold.
@Suite struct ProcessThresholdRuleTests {
    /// The threshold of the only rule of `text`.
    private func threshold(
        _ text: String,
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) throws
        -> ProcessThreshold
    {
        let process = try processSubject(try onlyRule(text, sourceLocation: sourceLocation))
        guard case .threshold(let threshold) = process.trigger else {
            Issue.record("not a threshold rule: \(process.trigger)", sourceLocation: sourceLocation)
            throw ProcessRuleTestError.wrongSubject
        }
        return threshold
    }

    @Test func cpuWithAHoldAndASamplePeriod() throws {
        let parsed = try threshold(
            "- rule: cpu-hog\n  process: any\n  above: { cpu: 80%, for: 5s }\n  sample: 500ms\n"
        )
        #expect(parsed == ProcessThreshold(measure: .cpu, limit: 80, holdMilliseconds: 5000, sampleMilliseconds: 500))
    }

    @Test func defaultsAreNoHoldAndOneSecond() throws {
        let parsed = try threshold("- rule: r\n  process: { name: postgres }\n  above: { memory: 12.5% }\n")
        #expect(
            parsed == ProcessThreshold(measure: .memory, limit: 12.5, holdMilliseconds: 0, sampleMilliseconds: 1000)
        )
        let zero = try threshold("- rule: r\n  process: any\n  above: { memory: 50%, for: 0s }\n")
        #expect(zero.holdMilliseconds == 0)
    }

    @Test(
        arguments: [
            ("2GiB", 2_147_483_648), ("512MiB", 536_870_912), ("64M", 67_108_864), ("1.5G", 1_610_612_736),
            ("100KiB", 102_400), ("4096", 4096),
        ] as [(String, Double)]
    )
    func rssTakesSizes(_ written: String, _ bytes: Double) throws {
        let parsed = try threshold("- rule: r\n  process: any\n  above: { rss: \(written), for: 1m }\n")
        #expect(parsed.measure == .rss)
        #expect(parsed.limit == bytes)
        #expect(parsed.holdMilliseconds == 60_000)
    }

    @Test func aThresholdRuleIsAStateRuleWithDefaultMessages() throws {
        let rule = try onlyRule("- rule: r\n  process: any\n  above: { cpu: 80%, for: 5s }\n")
        #expect(rule.isStateRule)
        #expect(rule.message.fieldNames.contains("threshold") && rule.message.fieldNames.contains("held"))
        #expect(rule.resolvedMessage != nil)
        let custom = try onlyRule(
            "- rule: r\n  process: any\n  above: { cpu: 80% }\n  message: \"{name} {pid} {cpu} {memory} {rss} {threshold} {held} {user} {exe}\"\n  resolved_message: \"{name} calm ({cpu})\"\n"
        )
        #expect(custom.resolvedMessage?.fieldNames == ["name", "cpu"])
    }

    @Test func cpuMayExceedOneCoreUpToEveryCore() throws {
        let cores = max(1, sysconf(CInt(_SC_NPROCESSORS_ONLN)))
        let limit = 100 * cores - 1
        let parsed = try threshold("- rule: r\n  process: any\n  above: { cpu: \(limit)% }\n")
        #expect(parsed.limit == Double(limit))
        let compilation = compileText("- rule: r\n  process: any\n  above: { cpu: \(100 * cores)% }\n")
        let plural = cores == 1 ? "" : "s"
        #expect(
            compilation.diagnostics.map(\.description) == [
                "test.yaml:3:17: error: 'cpu' is \(100 * cores)%; expected a percentage above 0% and below \(100 * cores)% (a process on this host's \(cores) core\(plural) uses at most \(100 * cores)%)"
            ]
        )
    }

    @Test(
        arguments: [
            (
                "- rule: r\n  process: any\n  above: { cpu: 80% }\n  on: [exit]\n",
                [
                    "test.yaml:4:3: error: rule 'r' has both above: and on:; use above: for a threshold rule (CPU or memory held above a limit), or on: in a rule of its own, not both"
                ]
            ),
            (
                "- rule: r\n  process: sshd\n  expect: running\n  above: { cpu: 80% }\n",
                [
                    "test.yaml:3:3: error: rule 'r' has both above: and expect:; use above: for a threshold rule (CPU or memory held above a limit), or expect: in a rule of its own, not both"
                ]
            ),
            (
                "- rule: r\n  process: any\n  above: { cpy: 80% }\n",
                [
                    "test.yaml:3:12: error: unknown key 'cpy' in above:; did you mean 'cpu'? (expected one of: cpu, memory, rss, for)"
                ]
            ),
            (
                "- rule: r\n  process: any\n  above: { for: 5s }\n",
                [
                    "test.yaml:3:10: error: 'above' names no measure; give one of cpu:, memory: or rss:, expected a map such as { cpu: 80%, for: 5s }, { memory: 50% } or { rss: 2GiB, for: 1m }"
                ]
            ),
            (
                "- rule: r\n  process: any\n  above: { cpu: 80%, memory: 10% }\n",
                [
                    "test.yaml:3:22: error: 'above' has cpu: and memory:; a rule watches one measure, so write one rule per measure (each fires on its own)"
                ]
            ),
            (
                "- rule: r\n  process: any\n  above: { cpu: 80 }\n",
                ["test.yaml:3:17: error: 'cpu' is '80'; expected a percentage such as 80% (write 80%)"]
            ),
            (
                "- rule: r\n  process: any\n  above: { memory: 100% }\n",
                [
                    "test.yaml:3:20: error: 'memory' is 100%; expected a percentage above 0% and below 100% (memory is a share of MemTotal)"
                ]
            ),
            (
                "- rule: r\n  process: any\n  above: { rss: 2GB }\n",
                [
                    "test.yaml:3:17: error: 'rss' is '2GB'; expected a size such as 512MiB or 2GiB (KiB, MiB, GiB, TiB; K, M, G, T alike), or a number of bytes"
                ]
            ),
            (
                "- rule: r\n  process: any\n  above: 80%\n",
                [
                    "test.yaml:3:10: error: 'above' is a string; expected a map such as { cpu: 80%, for: 5s }, { memory: 50% } or { rss: 2GiB, for: 1m }"
                ]
            ),
            (
                "- rule: r\n  process: any\n  above: { cpu: 80%, for: soon }\n",
                [
                    "test.yaml:3:27: error: 'for' is 'soon'; expected a duration such as 5s, 500ms, 2m, 1h, or a whole number of seconds"
                ]
            ),
            (
                "- rule: r\n  process: any\n  above: { cpu: 80% }\n  sample: 50ms\n",
                [
                    "test.yaml:4:11: error: 'sample' is 50ms, shorter than the minimum of 100ms; expected a duration of at least 100ms"
                ]
            ),
            (
                "- rule: r\n  process: sshd\n  expect: running\n  sample: 1s\n",
                [
                    "test.yaml:4:3: error: 'sample' applies only to above: rules; remove it, or add above: { cpu: 80%, for: 5s }"
                ]
            ),
            (
                "- rule: r\n  process: any\n  above: { cpu: 80% }\n  grace: 5s\n",
                ["test.yaml:4:3: error: 'grace' does not apply to above: rules; remove it"]
            ),
            (
                "- rule: r\n  process: any\n  above: { cpu: 80% }\n  then: [restart]\n",
                [
                    "test.yaml:4:10: error: action 'restart' does not apply to above: rules; a process held above a limit is a finding to look at, not a failure a restart repairs; alert, or write an expect: or on: [exit] rule with restart"
                ]
            ),
            (
                "- rule: r\n  file: /var/log/a\n  above: { cpu: 80% }\n  sample: 1s\n",
                [
                    "test.yaml:3:3: error: 'above' does not apply to file rules; it belongs to process: and disk: rules",
                    "test.yaml:4:3: error: 'sample' does not apply to file rules; it belongs to process: rules",
                ]
            ),
            (
                "- rule: r\n  process: any\n  above: { cpu: 80% }\n  message: \"{name} {grace2}\"\n",
                [
                    "test.yaml:4:20: error: unknown field '{grace2}' in message; did you mean 'grace'? (expected one of: rule, severity, host, pid, ppid, name, exe, argv, user, uid, euid, parent, unit, cgroup, event, code, signal, core, status, count, minimum, grace, restarts, cpu, memory, rss, threshold, held)"
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
