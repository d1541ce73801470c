import VigilCore
import VigilHarness
import VigilRules

/// The seed's config file, alternately fixed and insecure, parsed and judged against the seed's
/// `verify_ssl` rule 1,000 times: what the matcher does each time a watched config is saved (rare work; the
/// parser builds `String`s for keys and values, so it allocates, and its count is pinned, not zero).
public final class ConfigFixture: @unchecked Sendable {
    // @unchecked Sendable: used by the benchmark thread only, between setup and teardown.
    nonisolated(unsafe) public static var shared: ConfigFixture?
    // nonisolated(unsafe): set in setup, read by the benchmark body, cleared in teardown; never concurrently.

    let fixed: UnsafeMutableRawBufferPointer
    let insecure: UnsafeMutableRawBufferPointer
    let condition: Condition

    public init() throws {
        let rules = """
            - rule: bench-ssl-verification-disabled
              severity: critical
              config: /etc/analytics/upload-service.conf
              when: { key: verify_ssl, is: false }
              then: [alert]

            """
        let compilation = RuleCompiler.compile(sources: [(file: "config-fixture.yaml", text: rules)])
        guard let rule = compilation.ruleSet?.rules.first, case .config(let subject) = rule.subject,
            case .when(let condition) = subject.trigger
        else {
            throw BenchError(
                "Failed to compile the config benchmark rule: \(compilation.diagnostics.map(\.description).joined(separator: "; "))"
            )
        }
        self.condition = condition
        fixed = Self.bytes(SeedSandbox.fixedConfig)
        insecure = Self.bytes(SeedSandbox.insecureConfig)
    }

    deinit {
        fixed.deallocate()
        insecure.deallocate()
    }

    /// Parses and judges the config 1,000 times (fixed and insecure in turn); returns how often the rule
    /// held, which must be half.
    @inline(never)
    public func runOnce() -> Int {
        var holds = 0
        for i in 0..<eventsPerIteration {
            let result = ConfigParser.parse(UnsafeRawBufferPointer(i & 1 == 0 ? fixed : insecure))
            guard case .snapshot(let snapshot) = result else { fatalError("config-parse-and-judge: rejected") }
            if condition.evaluate(snapshot) { holds += 1 }
        }
        precondition(holds == eventsPerIteration / 2, "config-parse-and-judge: the rule held \(holds) times")
        return holds
    }

    private static func bytes(_ text: String) -> UnsafeMutableRawBufferPointer {
        let utf8 = Array(text.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: utf8.count, alignment: 1)
        buffer.copyBytes(from: utf8)
        return buffer
    }
}

/// 1,000 alert records shaped like the seed's (a config alert with changes, a process exit with labels, a
/// log line with a capture), encoded as JSON lines into one reused buffer, as the alert sinks do.
public final class AlertFixture: @unchecked Sendable {
    // @unchecked Sendable: used by the benchmark thread only, between setup and teardown.
    nonisolated(unsafe) public static var shared: AlertFixture?
    // nonisolated(unsafe): set in setup, read by the benchmark body, cleared in teardown; never concurrently.

    let records: [AlertRecord]
    var buffer: [UInt8] = []

    public init() {
        let shapes: [AlertRecord] = [
            AlertRecord(
                id: "6f1c2e3d4b5a69788796a5b4c3d2e1f0",
                timeSeconds: 1_744_528_510,
                timeNanoseconds: 123_456_789,
                host: "analytics-01",
                rule: "upload-ssl-verification-disabled",
                severity: "critical",
                state: .firing,
                kind: "config.changed",
                path: "/etc/analytics/upload-service.conf",
                message: "SSL verification disabled in /etc/analytics/upload-service.conf (verify_ssl = false)",
                changes: [ConfigChange(key: "verify_ssl", old: "true", new: "false")],
                fingerprint: "0123456789abcdef"
            ),
            AlertRecord(
                id: "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                timeSeconds: 1_744_528_511,
                timeNanoseconds: 5_000,
                host: "analytics-01",
                rule: "postgres-died",
                severity: "critical",
                state: .event,
                kind: "process.exited",
                message: "postgres (pid 4242) was killed by SIGKILL",
                fingerprint: "fedcba9876543210",
                labels: ["pid": "4242", "exe": "/usr/lib/postgresql/15/bin/postgres", "signal": "SIGKILL"]
            ),
            AlertRecord(
                id: "a0b1c2d3e4f5061728394a5b6c7d8e9f",
                timeSeconds: 1_744_528_512,
                timeNanoseconds: 999_999_999,
                host: "analytics-01",
                rule: "analytics-insecure-endpoint",
                severity: "warning",
                state: .event,
                kind: "log.matched",
                path: "/var/log/analytics/app.log",
                message: "SSL certificate verification disabled for endpoint: \"https://api.analytics-partner.com\"",
                fingerprint: "00112233445566ff",
                labels: ["endpoint": "https://api.analytics-partner.com"]
            ),
        ]
        records = (0..<eventsPerIteration).map { shapes[$0 % shapes.count] }
        buffer.reserveCapacity(1 << 16)
    }

    /// Encodes the 1,000 records, the buffer emptied (capacity kept) before each; returns the bytes written.
    @inline(never)
    public func runOnce() -> Int {
        var total = 0
        for record in records {
            buffer.removeAll(keepingCapacity: true)
            record.encodeJSONLine(into: &buffer)
            total += buffer.count
        }
        return total
    }
}
