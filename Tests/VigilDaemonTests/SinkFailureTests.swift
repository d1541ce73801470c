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

/// A full disk under the alert file: the error is logged once, every alert is held, and all of them are
/// written, in order, once there is space again.
@Suite(.timeLimit(.minutes(1)))
struct SinkFailureTests {
    @Test func fullDiskHoldsAlertsAndDeliversThemInOrderLater() throws {
        let tree = TempTree("fulldisk")
        defer { tree.remove() }
        tree.makeDirectory("etc/analytics")
        tree.makeDirectory("small")
        tree.write("etc/analytics/upload-service.conf", uploadConfig("true"))
        let small = tree.path("small")
        guard mount("tmpfs", small, "tmpfs", 0, "size=64k") == 0 else {
            Issue.record("cannot mount a small tmpfs (errno \(errno)); this test needs CAP_SYS_ADMIN")
            return
        }
        defer { umount2(small, Int32(MNT_DETACH)) }
        let alerts = small + "/alerts.jsonl"
        let fullSink = try LineFollower(path: alerts)
        // Fill the filesystem, leaving no room for a single alert line.
        let filler = open(small + "/filler", O_WRONLY | O_CREAT, 0o600)
        let block = [UInt8](repeating: 0x78, count: 4096)
        while block.withUnsafeBytes({ write(filler, $0.baseAddress, $0.count) }) > 0 {}
        close(filler)

        let compilation = RuleCompiler.compile(sources: [(file: "t.yaml", text: sslRule)])
        let ruleSet = try #require(compilation.ruleSet)
        let (logger, logs) = InMemoryLogHandler.logger()
        let follower = try LineFollower(path: tree.path("copy.jsonl"))
        let daemon = try Daemon(
            options: .init(ruleSet: ruleSet, root: tree.root, extraAlertFiles: [alerts, tree.path("copy.jsonl")]),
            logger: logger
        )
        try daemon.start()
        defer { daemon.stop() }

        // Ten state changes while the disk is full; the second sink (with space) shows each as it happens.
        for i in 0..<10 {
            tree.write("etc/analytics/upload-service.conf", uploadConfig(i % 2 == 0 ? "false" : "true"))
            #expect(follower.next(timeoutMilliseconds: 5000) != nil, "alert \(i) on the healthy sink")
        }
        let errors = logs.messages(atLeast: .error).filter { $0.contains("'\(alerts)'") }
        #expect(errors.count == 1, "one clear error, not one per alert: \(errors)")
        #expect(errors.first?.contains("No space left on device") == true, "\(errors)")

        // Space again: the next retry (within a second) delivers everything held, in order.
        unlink(small + "/filler")
        var delivered: [String] = []
        while delivered.count < 10, let line = fullSink.next(timeoutMilliseconds: 5000) { delivered.append(line.line) }
        #expect(delivered.count == 10)
        let states = delivered.compactMap { JSONField.string($0, "state") }
        #expect(states == (0..<10).map { $0 % 2 == 0 ? "firing" : "resolved" })
        #expect(logs.messages(atLeast: .notice).contains { $0.contains("writable again") })
    }
}
