import Testing
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The `sd_notify` protocol as systemd sees it: the real `vigil run` binary reporting to a `$NOTIFY_SOCKET`
/// the test binds (`NotifyListener`). READY=1 only once the sources are watching, none when start-up fails,
/// STOPPING=1 on SIGTERM, RELOADING=1 then READY=1 on SIGHUP, and WATCHDOG=1 pings that stop while the
/// pipeline is blocked (an alert file that is a FIFO nobody reads) and come back once it drains.
@Suite(
    .enabled(if: VigilBinary.exists && getuid() == 0, "needs root (process rules) and the built binary"),
    .timeLimit(.minutes(2))
)
struct ServiceNotifyTests {
    /// A config rule and a process rule (the probe is a copy of sleep under a name no other process has).
    static let rules = """
        - rule: notify-config-changed
          config: /etc/app.conf
          changes: ["*"]

        - rule: notify-probe-started
          process: { name: vq-notify-probe }
          on: [exec]

        """

    /// A tree with `rules.yaml`, `/etc/app.conf` and the probe binary; `run/` for the notify socket and log.
    static func makeTree(_ label: String, rules: String = Self.rules) -> TempTree {
        let tree = TempTree(label)
        tree.makeDirectory("etc")
        tree.makeDirectory("run")
        tree.write("rules.yaml", rules)
        tree.write("etc/app.conf", "mode = a\n")
        return tree
    }

    /// The capability wrapper of `$VIGIL_UNIT_CAPABILITIES` (empty when unset), for children spawned here.
    static func unitLauncher() throws -> [String] {
        try UnitCapabilities.fromEnvironment()?.launcher ?? []
    }

    @Test func readyComesOnlyOnceTheSourcesWatch() throws {
        let tree = Self.makeTree("notify-ready")
        defer { tree.remove() }
        let probe = tree.path("vq-notify-probe")
        #expect(try Command.run("/bin/cp", ["/bin/sleep", probe]).code == 0)
        let alerts = tree.path("alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        // DaemonProcess returns the moment READY=1 arrives: act at once, with no settling time.
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules.yaml"), "--root", tree.root, "--alerts", alerts],
            workDirectory: tree.path("run")
        )
        defer { daemon.stop() }
        tree.writeReplacing("etc/app.conf", "mode = b\n")
        // Kept alive until its exec is alerted: a process killed before vigil reads its /proc entry keeps no
        // name to match (a documented limit of the proc connector, not what this test is about).
        let child = try ChildProcess(executable: probe, arguments: ["30"])
        defer {
            child.signal(SIGKILL)
            _ = child.wait(timeoutMilliseconds: 5000)
        }

        var seen: Set<String> = []
        let deadline = Clock.monotonicNanoseconds() + 20_000_000_000
        while seen.count < 2, Clock.monotonicNanoseconds() < deadline {
            guard let line = follower.next(timeoutMilliseconds: 1000)?.line else { continue }
            if let rule = JSONField.string(line, "rule") { seen.insert(rule) }
        }
        #expect(seen.contains("notify-config-changed"), "\(daemon.log())")
        #expect(seen.contains("notify-probe-started"), "\(daemon.log())")
        // READY=1 was the first message, sent once.
        #expect(daemon.notifications.received.first?.contains("READY=1") == true)
        #expect(daemon.notifications.received.filter { $0.contains("READY=1") }.count == 1)
        if let unit = try UnitCapabilities.fromEnvironment() {
            // Under the unit's capability set, the daemon's bounding set is exactly the unit's.
            #expect(Self.boundingSet(of: daemon.process.pid) == unit.boundingSet)
        }
    }

    @Test func noReadyWhenStartUpFails() throws {
        let tree = Self.makeTree("notify-fail")
        defer { tree.remove() }
        guard let listener = NotifyListener(path: tree.path("run/notify.sock")) else {
            Issue.record("Failed to bind a notify socket in \(tree.path("run"))")
            return
        }
        let command =
            try Self.unitLauncher() + [
                VigilBinary.path, "run", "--rules", tree.path("rules.yaml"), "--root", tree.path("no-such-root"),
            ]
        let child = try ChildProcess(
            executable: command[0],
            arguments: Array(command.dropFirst()),
            environment: ["NOTIFY_SOCKET": listener.path],
            standardError: tree.path("run/vigil.log")
        )
        let status = child.wait(timeoutMilliseconds: 20_000)
        #expect(status.map(ChildProcess.exitCode) == 1)
        // Everything it sent is queued by now: drain it.
        while listener.next(timeoutMilliseconds: 0) != nil {}
        #expect(!listener.received.contains { $0.contains("READY=1") }, "\(listener.received)")
    }

    @Test func stoppingOnSIGTERMAndReloadingThenReadyOnSIGHUP() throws {
        let tree = Self.makeTree("notify-signals")
        defer { tree.remove() }
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules.yaml"), "--root", tree.root, "--no-process-rules"],
            workDirectory: tree.path("run")
        )
        defer { daemon.stop() }
        let listener = daemon.notifications

        let before = Clock.monotonicNanoseconds() / 1000
        daemon.process.signal(SIGHUP)
        let reloading = Self.next(from: listener) { $0.contains("RELOADING=1") }
        let after = Clock.monotonicNanoseconds() / 1000
        #expect(reloading != nil, "\(listener.received); \(daemon.log())")
        // MONOTONIC_USEC is CLOCK_MONOTONIC in microseconds, taken between the signal and its receipt.
        let stamp = reloading?.value(of: "MONOTONIC_USEC").flatMap { UInt64($0) } ?? 0
        #expect(stamp >= before && stamp <= after, "\(stamp) not in \(before)...\(after)")
        #expect(Self.next(from: listener) { $0.contains("READY=1") } != nil, "\(listener.received)")

        daemon.process.signal(SIGTERM)
        #expect(Self.next(from: listener) { $0.contains("STOPPING=1") } != nil, "\(listener.received)")
        let status = daemon.process.wait(timeoutMilliseconds: 10_000)
        #expect(status.map(ChildProcess.exitCode) == 0, "\(daemon.log())")
        // Without $WATCHDOG_USEC there is no watchdog: not one ping.
        while listener.next(timeoutMilliseconds: 0) != nil {}
        #expect(!listener.received.contains { $0.contains("WATCHDOG=1") }, "\(listener.received)")
    }

    /// A rule that fires on every chmod of /etc/target, with a long message: a 64 KiB pipe fills with a few
    /// dozen alerts.
    static let chmodRules = """
        - rule: target-attributes
          file: /etc/target
          on: [attributes]
          message: "\(String(repeating: "attributes of {path} changed; ", count: 40))"

        """

    @Test func watchdogPingsStopWhileThePipelineIsBlockedAndComeBack() throws {
        let tree = Self.makeTree("notify-watchdog", rules: Self.chmodRules)
        defer { tree.remove() }
        tree.write("etc/target", "x\n")
        let fifo = tree.path("alerts.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        // Our reading end, opened first and never read until the drain (vigil opens the FIFO O_RDWR, which
        // does not wait for a reader; ours is non-blocking so the drain never hangs).
        let reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        #expect(reader >= 0)
        defer { close(reader) }
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: [
                "--rules", tree.path("rules.yaml"), "--root", tree.root, "--alerts", fifo, "--no-process-rules",
            ],
            workDirectory: tree.path("run"),
            environment: ["WATCHDOG_USEC": "400000"]
        )
        defer { daemon.stop() }
        let listener = daemon.notifications

        // Healthy: pings about every 200 ms (half of WATCHDOG_USEC).
        var pings: [UInt64] = []
        let healthyUntil = Clock.monotonicNanoseconds() + 2_000_000_000
        while Clock.monotonicNanoseconds() < healthyUntil {
            if let datagram = listener.next(timeoutMilliseconds: 100), datagram.contains("WATCHDOG=1") {
                pings.append(datagram.receivedNanoseconds)
            }
        }
        #expect(pings.count >= 4, "\(pings.count) pings in 2 s; \(daemon.log())")
        let gaps = zip(pings.dropFirst(), pings).map { ($0 - $1) / 1_000_000 }.sorted()
        let median = gaps.isEmpty ? 0 : gaps[gaps.count / 2]
        #expect(median >= 100 && median <= 400, "gaps \(gaps) ms")

        // Block: chmod until the FIFO is full and the matcher hangs in its write; the pings stop.
        var lastPing = Clock.monotonicNanoseconds()
        var changes = 0
        var stalled = false
        let blockDeadline = Clock.monotonicNanoseconds() + 60_000_000_000
        while !stalled, Clock.monotonicNanoseconds() < blockDeadline {
            tree.chmodFile("etc/target", changes % 2 == 0 ? 0o600 : 0o644)
            changes += 1
            if let datagram = listener.next(timeoutMilliseconds: 20), datagram.contains("WATCHDOG=1") {
                lastPing = datagram.receivedNanoseconds
            }
            // Five intervals without a ping: blocked.
            stalled = Clock.monotonicNanoseconds() - lastPing > 1_000_000_000
        }
        #expect(stalled, "pings kept coming after \(changes) alerts; \(daemon.log())")

        // Drain the FIFO: the matcher writes the rest and the pings come back.
        var resumed = 0
        var drained = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        let drainDeadline = Clock.monotonicNanoseconds() + 30_000_000_000
        while resumed < 3, Clock.monotonicNanoseconds() < drainDeadline {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                drained += n
            }
            if let datagram = listener.next(timeoutMilliseconds: 50), datagram.contains("WATCHDOG=1") { resumed += 1 }
        }
        #expect(resumed >= 3, "\(resumed) pings after draining \(drained) bytes; \(daemon.log())")
        #expect(drained > 65536 / 2)
        #expect(daemon.log().contains("Watchdog: the file matcher's loop did not run"), "\(daemon.log())")
    }

    /// The other stage: alerts to stdout go through the action worker, and stdout is a FIFO nobody reads.
    /// The matcher's loop keeps running (its ring to the worker has room), but the worker hangs in its
    /// write: the pings stop, the log names the worker, and they come back once the FIFO drains.
    @Test func watchdogPingsStopWhileTheActionWorkerIsBlockedAndComeBack() throws {
        let tree = Self.makeTree("notify-worker", rules: Self.chmodRules)
        defer { tree.remove() }
        tree.write("etc/target", "x\n")
        let fifo = tree.path("stdout.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        // Opened first, so the daemon's O_WRONLY open of its stdout does not wait for a reader.
        let reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        #expect(reader >= 0)
        defer { close(reader) }
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: [
                "--rules", tree.path("rules.yaml"), "--root", tree.root, "--alerts", "-", "--no-process-rules",
            ],
            workDirectory: tree.path("run"),
            environment: ["WATCHDOG_USEC": "400000"],
            standardOutput: fifo
        )
        defer { daemon.stop() }
        let listener = daemon.notifications
        #expect(Self.next(from: listener) { $0.contains("WATCHDOG=1") } != nil, "\(daemon.log())")

        var lastPing = Clock.monotonicNanoseconds()
        var changes = 0
        var stalled = false
        let blockDeadline = Clock.monotonicNanoseconds() + 60_000_000_000
        while !stalled, Clock.monotonicNanoseconds() < blockDeadline {
            tree.chmodFile("etc/target", changes % 2 == 0 ? 0o600 : 0o644)
            changes += 1
            if let datagram = listener.next(timeoutMilliseconds: 20), datagram.contains("WATCHDOG=1") {
                lastPing = datagram.receivedNanoseconds
            }
            stalled = Clock.monotonicNanoseconds() - lastPing > 1_000_000_000
        }
        #expect(stalled, "pings kept coming after \(changes) alerts; \(daemon.log())")
        #expect(daemon.log().contains("Watchdog: the action worker made no progress"), "\(daemon.log())")

        var resumed = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        let drainDeadline = Clock.monotonicNanoseconds() + 30_000_000_000
        while resumed < 3, Clock.monotonicNanoseconds() < drainDeadline {
            while buffer.withUnsafeMutableBytes({ read(reader, $0.baseAddress, $0.count) }) > 0 {}
            if let datagram = listener.next(timeoutMilliseconds: 50), datagram.contains("WATCHDOG=1") { resumed += 1 }
        }
        #expect(resumed >= 3, "\(resumed) pings after the drain; \(daemon.log())")
        #expect(daemon.log().contains("Watchdog: the action worker makes progress again"), "\(daemon.log())")
    }

    @Test func watchdogIsOffWhenWATCHDOG_PIDNamesAnotherProcess() throws {
        // sd_watchdog_enabled(3): the variables were meant for another process (a parent).
        #expect(ServiceNotify.watchdogMicroseconds(usec: "400000", pid: "1", myPID: 42) == nil)
        #expect(ServiceNotify.watchdogMicroseconds(usec: "400000", pid: "42", myPID: 42) == 400_000)
        #expect(ServiceNotify.watchdogMicroseconds(usec: "400000", pid: nil, myPID: 42) == 400_000)
        #expect(ServiceNotify.watchdogMicroseconds(usec: "0", pid: nil, myPID: 42) == nil)
        #expect(ServiceNotify.watchdogMicroseconds(usec: "soon", pid: nil, myPID: 42) == nil)
        #expect(ServiceNotify.watchdogMicroseconds(usec: nil, pid: nil, myPID: 42) == nil)

        let tree = Self.makeTree("notify-wdpid")
        defer { tree.remove() }
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules.yaml"), "--root", tree.root, "--no-process-rules"],
            workDirectory: tree.path("run"),
            environment: ["WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"]
        )
        defer { daemon.stop() }
        // Ten intervals: not one ping.
        let until = Clock.monotonicNanoseconds() + 1_000_000_000
        while Clock.monotonicNanoseconds() < until { _ = daemon.notifications.next(timeoutMilliseconds: 100) }
        #expect(!daemon.notifications.received.contains { $0.contains("WATCHDOG=1") })
    }

    /// The next datagram matching `predicate` within 10 s.
    static func next(
        from listener: NotifyListener,
        _ predicate: (NotifyListener.Datagram) -> Bool
    ) -> NotifyListener.Datagram? {
        let deadline = Clock.monotonicNanoseconds() + 10_000_000_000
        while Clock.monotonicNanoseconds() < deadline {
            if let datagram = listener.next(timeoutMilliseconds: 500), predicate(datagram) { return datagram }
        }
        return nil
    }

    /// `CapBnd` of a process, from /proc/PID/status.
    static func boundingSet(of pid: Int32) -> CapabilitySet? {
        let status = ProcFile.readText("/proc/\(pid)/status") ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapBnd:") }),
            let value = UInt64(line.dropFirst("CapBnd:".count).trimmingCharacters(), radix: 16)
        else { return nil }
        return CapabilitySet(rawValue: value)
    }
}

extension Substring {
    /// Without the tabs and spaces around it.
    func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
