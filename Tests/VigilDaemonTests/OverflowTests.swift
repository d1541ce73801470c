import Logging
import Synchronization
import Testing
import VigilDaemon
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `IN_Q_OVERFLOW` is an event: counted, alerted, and followed by a rescan that finds the final state.
///
/// The kernel's queue length (`fs.inotify.max_queued_events`) is read when an inotify instance is created, so
/// the test lowers it to 16 around the daemon's start-up only, under the lock every in-process daemon of this
/// test run starts under, and restores it at once.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct OverflowTests {
    static let limitPath = "/proc/sys/fs/inotify/max_queued_events"

    static var canLowerQueue: Bool { access(limitPath, W_OK) == 0 }

    /// A rule on a large config, so that rewriting it keeps the matcher parsing for a few milliseconds.
    static let bigRule = """
        - rule: big
          config: /etc/analytics/big.conf
          when: { key: never_set, present: true }

        """

    @Test(
        .enabled(if: OverflowTests.canLowerQueue, "needs write access to /proc/sys/fs/inotify/max_queued_events (root)")
    )
    func overflowIsAlertedAndTheRescanFindsTheFinalState() throws {
        let f: DaemonFixture = try DaemonFixture.startLock.withLock { _ in
            let original = ProcFile.readText(Self.limitPath)?.filter { $0.isNumber } ?? "16384"
            try Self.writeLimit("16")
            defer { try? Self.writeLimit(original) }
            return try DaemonFixture(rules: sslRule + Self.bigRule, label: "overflow", lock: false) { tree in
                tree.makeDirectory("etc/analytics")
                tree.write("etc/analytics/upload-service.conf", uploadConfig("true"))
                for i in 0..<64 { tree.write("etc/analytics/noise-\(i)", "x") }
            }
        }
        // Keep the matcher busy parsing a large config while a burst far beyond 16 queued events arrives;
        // repeat until the kernel reports the overflow (the first round almost always does).
        var seen: [SeenAlert] = []
        let big = (0..<40_000).map { "key\($0) = value\($0)" }.joined(separator: "\n") + "\n"
        for round in 0..<10 where f.daemon.counters.overflows.load(ordering: .relaxed) == 0 {
            f.tree.write("etc/analytics/big.conf", big + "round = \(round)\n")
            for pass in 0..<20 {
                for i in 0..<64 { f.tree.chmodFile("etc/analytics/noise-\(i)", pass % 2 == 0 ? 0o600 : 0o644) }
            }
            seen += f.sync()
        }
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("false"))
        var sawLoss = seen.contains { $0.kind == "vigil.events_lost" }
        var sawFiring = false
        while !(sawLoss && sawFiring), let alert = f.next() {
            if alert.kind == "vigil.events_lost" { sawLoss = true }
            if alert.rule == "ssl-off" && alert.state == "firing" { sawFiring = true }
        }
        #expect(sawLoss, "the overflow must be alerted")
        #expect(sawFiring, "the rescan must find verify_ssl = false")
        #expect(f.daemon.counters.overflows.load(ordering: .relaxed) >= 1)
        #expect(f.logs.messages(atLeast: .warning).contains { $0.contains("overflowed") })
    }

    static func writeLimit(_ value: String) throws {
        let fd = open(limitPath, O_WRONLY)
        guard fd >= 0 else { throw HarnessError("cannot open \(limitPath): errno \(errno)") }
        defer { close(fd) }
        let bytes = Array((value + "\n").utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw HarnessError("cannot write \(limitPath): errno \(errno)")
        }
    }
}
