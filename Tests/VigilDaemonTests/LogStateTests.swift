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

/// A daemon over a tree that outlives it, so a test can stop it, change the logs and start another one
/// on the same state file and alert file (a restart, or a crash replayed from an older state file).
final class RestartableDaemon {
    let tree: TempTree
    let rules: String
    let alertsPath: String
    private var daemon: Daemon?
    /// What the last started daemon logged.
    private(set) var logs = InMemoryLogHandler.Store()

    init(tree: TempTree, rules: String) {
        self.tree = tree
        self.rules = rules
        alertsPath = tree.path("vigil-alerts.jsonl")
    }

    deinit { stop() }

    func start(configure: (inout Daemon.Options) -> Void = { _ in }) throws {
        let compilation = RuleCompiler.compile(sources: [(file: "test.yaml", text: rules)])
        guard let ruleSet = compilation.ruleSet else {
            throw HarnessError("rules did not compile: \(compilation.diagnostics.map(\.description))")
        }
        let (logger, logs) = InMemoryLogHandler.logger()
        self.logs = logs
        var options = Daemon.Options(ruleSet: ruleSet, root: tree.root, extraAlertFiles: [alertsPath])
        options.processRules = false
        configure(&options)
        let daemon = try Daemon(options: options, logger: logger)
        try daemon.start()
        self.daemon = daemon
    }

    func stop() {
        daemon?.stop()
        daemon = nil
    }

    var statePath: String { tree.path("var/lib/vigil/logs.state") }

    /// Every alert line in the alert file.
    func alertLines() -> [String] {
        (tree.read("vigil-alerts.jsonl") ?? "").split(separator: "\n").map(String.init)
    }
}

/// Offsets that survive restarts and crashes: no line lost, none alerted twice.
@Suite(.serialized) struct LogStateTests {
    static let everyLine = """
        - rule: every-line
          severity: info
          log: /var/log/app.log
          from: start
          message: "{line}"

        """

    /// Waits until the alert file holds `count` log alerts; returns their messages in file order.
    func messages(_ daemon: RestartableDaemon, count: Int) throws -> [String] {
        let follower = try LineFollower(path: daemon.alertsPath, fromStart: true)
        var seen: [String] = []
        while let line = follower.next(timeoutMilliseconds: 5000)?.line {
            if JSONField.string(line, "kind") == "log.matched" { seen.append(JSONField.string(line, "message") ?? "") }
            if seen.count == count { break }
        }
        return seen
    }

    @Test func aRestartContinuesWhereItStoppedAndFinishesAFileRotatedWhileDown() throws {
        let tree = TempTree("log-restart")
        defer { tree.remove() }
        tree.makeDirectory("var/log")
        let daemon = RestartableDaemon(tree: tree, rules: Self.everyLine)
        try daemon.start()
        let path = tree.path("var/log/app.log")
        let writer = AppendingWriter(path)
        writer.write("one\ntwo\n")
        #expect(try messages(daemon, count: 2) == ["one", "two"])
        daemon.stop()

        // While vigil is down: more lines, a rename rotation, a new file.
        writer.write("three\n")
        #expect(rename(path, path + ".1") == 0)
        writer.reopen()
        writer.write("four\n")
        try daemon.start()
        writer.write("five\n")
        let all = try messages(daemon, count: 5)
        #expect(all == ["one", "two", "three", "four", "five"], "\(all)")
    }

    @Test func aCrashReplaysLinesButEachAlertIsWrittenOnce() throws {
        let tree = TempTree("log-crash")
        defer { tree.remove() }
        tree.makeDirectory("var/log")
        tree.write("var/log/app.log", "")
        let daemon = RestartableDaemon(tree: tree, rules: Self.everyLine)
        try daemon.start()
        // The state as saved at start-up: offset 0. A crash now would leave exactly this file.
        let early = try #require(tree.read("var/lib/vigil/logs.state"))
        let writer = AppendingWriter(tree.path("var/log/app.log"))
        for i in 1...50 { writer.write("line \(i)\n") }
        #expect(try messages(daemon, count: 50).count == 50)
        daemon.stop()

        // Replay from the early state, as after a SIGKILL before the next save.
        tree.write("var/lib/vigil/logs.state", early)
        try daemon.start()
        writer.write("line 51\n")
        let all = try messages(daemon, count: 51)
        #expect(all == (1...51).map { "line \($0)" }, "\(all)")
        daemon.stop()
        let ids = daemon.alertLines().compactMap { JSONField.string($0, "id") }
        #expect(Set(ids).count == ids.count, "an alert id was written twice")
    }

    @Test func theCompiledPatternsAreCachedNextToTheStateFile() throws {
        let tree = TempTree("log-pattern-cache")
        defer { tree.remove() }
        tree.makeDirectory("var/log")
        let rules = """
            - rule: failed
              log: /var/log/app.log
              match: 'Failed password for \\S+'

            """
        let daemon = RestartableDaemon(tree: tree, rules: rules)
        try daemon.start()
        daemon.stop()
        #expect(daemon.logs.messages.contains { $0.message.hasPrefix("Compiled the log patterns in ") })
        let directory = tree.path("var/lib/vigil/patterns")
        var info = stat()
        #expect(stat(directory, &info) == 0 && info.st_mode & 0o777 == 0o700)

        try daemon.start()
        AppendingWriter(tree.path("var/log/app.log")).write("sshd: Failed password for root\n")
        let follower = try LineFollower(path: daemon.alertsPath, fromStart: true)
        var matched = false
        while let line = follower.next(timeoutMilliseconds: 5000)?.line {
            if JSONField.string(line, "kind") == "log.matched" {
                matched = true
                break
            }
        }
        daemon.stop()
        #expect(matched)
        let loaded = daemon.logs.messages.map(\.message).filter { $0.hasPrefix("Loaded the log patterns from ") }
        #expect(loaded.count == 1 && loaded[0].contains("'\(directory)/patterns-"), "\(daemon.logs.messages)")
        #expect(daemon.logs.messages(atLeast: .warning).isEmpty, "\(daemon.logs.messages(atLeast: .warning))")
    }

    @Test func aStateFileThatIsNotOneIsReportedAndReplaced() throws {
        let tree = TempTree("log-bad-state")
        defer { tree.remove() }
        tree.makeDirectory("var/log")
        tree.makeDirectory("var/lib/vigil")
        tree.write("var/lib/vigil/logs.state", "garbage\n")
        let daemon = RestartableDaemon(tree: tree, rules: Self.everyLine)
        try daemon.start()
        AppendingWriter(tree.path("var/log/app.log")).write("hello\n")
        #expect(try messages(daemon, count: 1) == ["hello"])
        daemon.stop()
        #expect(tree.read("var/lib/vigil/logs.state")?.hasPrefix("vigil-log-state 1 ") == true)
    }
}
