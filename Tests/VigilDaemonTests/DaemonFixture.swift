import Logging
import Testing
import VigilDaemon
import VigilHarness
import VigilRules
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// One alert line, with the fields tests look at.
struct SeenAlert: CustomStringConvertible {
    let line: String
    var rule: String { JSONField.string(line, "rule") ?? "" }
    var state: String { JSONField.string(line, "state") ?? "" }
    var kind: String { JSONField.string(line, "kind") ?? "" }
    var severity: String { JSONField.string(line, "severity") ?? "" }
    var path: String { JSONField.string(line, "path") ?? "" }
    var message: String { JSONField.string(line, "message") ?? "" }
    var id: String { JSONField.string(line, "id") ?? "" }
    var fingerprint: String { JSONField.string(line, "fingerprint") ?? "" }
    var description: String { line }
}

/// A real daemon (real inotify, real threads) running in-process against a temporary tree used as `--root`,
/// writing alerts to a JSON Lines file that the test follows. Synchronisation is by cookie: a file created
/// under `/cookies/` fires the `cookie` rule, and since the matcher handles events in order, every event
/// before the cookie has been judged when the cookie's alert arrives (Watchman's technique, A7).
final class DaemonFixture {
    let tree: TempTree
    let daemon: Daemon
    let follower: LineFollower
    let logs: InMemoryLogHandler.Store
    private var cookieCount = 0

    static let cookieRule = """
        - rule: cookie
          severity: info
          file: /cookies/*
          on: [created]
          message: "cookie {file}"

        """

    /// Every in-process daemon starts under this lock, so a test that changes a global kernel setting read at
    /// start-up (the inotify queue length) affects only its own daemon.
    static let startLock = Locked<Int>(0)

    /// Writes `rules` (YAML, the cookie rule is added), lets `prepare` populate the tree, starts the daemon.
    convenience init(
        rules: String,
        label: String = "daemon",
        settleMilliseconds: Int = 100,
        prepare: (TempTree) -> Void = { _ in },
        configure: (inout Daemon.Options) -> Void = { _ in }
    )
        throws
    {
        try self.init(
            rules: rules,
            label: label,
            settleMilliseconds: settleMilliseconds,
            lock: true,
            prepare: prepare,
            configure: configure
        )
    }

    /// As above; `lock: false` when the caller already holds `startLock`.
    init(
        rules: String,
        label: String,
        settleMilliseconds: Int = 100,
        lock: Bool,
        prepare: (TempTree) -> Void = { _ in },
        configure: (inout Daemon.Options) -> Void = { _ in }
    )
        throws
    {
        tree = TempTree(label)
        tree.makeDirectory("cookies")
        prepare(tree)
        let compilation = RuleCompiler.compile(sources: [(file: "test.yaml", text: Self.cookieRule + rules)])
        guard let ruleSet = compilation.ruleSet else {
            throw HarnessError("rules did not compile: \(compilation.diagnostics.map(\.description))")
        }
        let alerts = tree.path("vigil-alerts.jsonl")
        follower = try LineFollower(path: alerts)
        let (logger, store) = InMemoryLogHandler.logger()
        logs = store
        var options = Daemon.Options(
            ruleSet: ruleSet,
            root: tree.root,
            extraAlertFiles: [alerts],
            deletionSettleMilliseconds: settleMilliseconds
        )
        configure(&options)
        let make = { () throws -> Daemon in
            let daemon = try Daemon(options: options, logger: logger)
            try daemon.start()
            return daemon
        }
        // The count is state for the lock to guard: an empty `Locked<Void>` let the optimizer move its
        // zero-size access outside the lock, which ThreadSanitizer reported as a race.
        daemon =
            lock
            ? try Self.startLock.withLock { started in
                started += 1
                return try make()
            } : try make()
    }

    deinit {
        daemon.stop()
        tree.remove()
    }

    /// The next alert, or nil after `timeoutMilliseconds`.
    func next(timeoutMilliseconds: Int = 5000) -> SeenAlert? {
        follower.next(timeoutMilliseconds: timeoutMilliseconds).map { SeenAlert(line: $0.line) }
    }

    /// Creates a new cookie file and returns every other alert that arrived before the cookie's alert.
    func sync(sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [SeenAlert] {
        cookieCount += 1
        let name = "c\(cookieCount)"
        tree.write("cookies/\(name)", "x")
        var others: [SeenAlert] = []
        while let alert = next() {
            if alert.rule == "cookie" && alert.message == "cookie \(name)" { return others }
            if alert.rule != "cookie" { others.append(alert) }
        }
        Issue.record(
            "cookie \(name) never arrived; alerts seen: \(others); log: \(logs.messages)",
            sourceLocation: sourceLocation
        )
        return others
    }

    /// Waits for the next non-cookie alert and checks its rule and state.
    @discardableResult
    func expect(rule: String, state: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> SeenAlert? {
        while let alert = next() {
            if alert.rule == "cookie" { continue }
            #expect(
                alert.rule == rule && alert.state == state,
                "expected \(rule)/\(state), got \(alert)",
                sourceLocation: sourceLocation
            )
            return alert
        }
        Issue.record("no \(rule)/\(state) alert within 5 s; log: \(logs.messages)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The seed's rule on the upload service's config.
let sslRule = """
    - rule: ssl-off
      severity: critical
      config: /etc/analytics/upload-service.conf
      when: { key: verify_ssl, is: false }
      message: "verify_ssl is {value} in {path}"

    """

/// Config text with the given verify_ssl value (and a varying filler key when asked).
func uploadConfig(_ value: String, extra: String = "") -> String {
    """
    # API Connection Settings
    api_url = https://api.analytics-partner.com
    metrics_url = https://metrics.analytics-partner.com
    verify_ssl = \(value)  # TODO: Enable for production
    \(extra)
    """
}
