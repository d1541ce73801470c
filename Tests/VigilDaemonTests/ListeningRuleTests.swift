import Foundation
import Testing
import VigilDaemon
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The host's python3 binary (resolved, so that a copy in the test tree is a real interpreter), or nil.
let listenerPython: String? = {
    guard let resolved = realpath("/usr/bin/python3", nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}()

/// Whether this host has IPv6 on loopback (the kernel lists it in /proc/net/if_inet6).
let ipv6Available: Bool = FileManager.default.contents(atPath: "/proc/net/if_inet6").map { !$0.isEmpty } ?? false

/// A child that listens on `proto` `address`:`port` and prints CLOCK_MONOTONIC (ns) right after
/// `listen(2)` (TCP) or `bind(2)` (UDP), then waits until killed. With a fourth argument it first prints
/// `ready` and waits for SIGUSR1 before it binds: a running program that opens a socket later.
private let listenerScript = """
    import signal, socket, sys, time
    if len(sys.argv) > 4:
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
        print('ready', flush=True)
        signal.sigwait([signal.SIGUSR1])
    family = socket.AF_INET6 if ':' in sys.argv[2] else socket.AF_INET
    kind = socket.SOCK_STREAM if sys.argv[1] == 'tcp' else socket.SOCK_DGRAM
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((sys.argv[2], int(sys.argv[3])))
    if kind == socket.SOCK_STREAM:
        s.listen()
    print(time.clock_gettime_ns(time.CLOCK_MONOTONIC), flush=True)
    while True:
        signal.pause()
    """

/// A port nothing uses now for `proto` on IPv4 and IPv6 (the kernel picks one, we release it).
private func freePort(_ proto: String = "tcp") -> Int {
    let kind = proto == "tcp" ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
    let fd = socket(AF_INET6, kind, 0)
    defer { close(fd) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin6_port))
}

/// A listening child under a unique name inside the tree, and the file its listen time goes to.
private struct Listener {
    let child: ChildProcess
    let output: String

    /// `onSignal`: the child binds only when it gets SIGUSR1 (`listenNow()`), once `ready()`.
    init(
        _ tree: TempTree,
        exe: String,
        proto: String,
        address: String,
        port: Int,
        onSignal: Bool = false
    )
        throws
    {
        output = tree.path("listener-\(port)-\(proto).out")
        child = try ChildProcess(
            executable: tree.path(String(exe.dropFirst())),
            arguments: ["-c", listenerScript, proto, address, String(port)] + (onSignal ? ["on-signal"] : []),
            standardOutput: output
        )
    }

    /// The first line the child printed that `accept`s, within 10 s (nil when it died first).
    private func line(where accept: (Substring) -> Bool) -> Substring? {
        let deadline = Clock.monotonicNanoseconds() + 10_000_000_000
        while Clock.monotonicNanoseconds() < deadline {
            if let text = try? String(contentsOfFile: output, encoding: .utf8),
                let found = text.split(separator: "\n").first(where: accept)
            {
                return found
            }
            if child.wait(timeoutMilliseconds: 10) != nil { return nil }  // it died (port taken?)
        }
        return nil
    }

    /// Whether an `onSignal` child is waiting for its signal.
    func ready() -> Bool { line { $0 == "ready" } != nil }

    /// Tells an `onSignal` child to bind and listen now.
    func listenNow() { child.signal(SIGUSR1) }

    /// CLOCK_MONOTONIC just after the child listened, once it has said so (nil after 10 s).
    func listenedAt() -> UInt64? {
        line { UInt64($0) != nil }.flatMap { UInt64($0) }
    }

    func stop() {
        child.signal(SIGKILL)
        _ = child.wait(timeoutMilliseconds: 5000)
    }
}

extension DaemonFixture {
    /// The next alert of `rule` about `port` (other listeners on this busy host are skipped), or nil after
    /// `seconds`.
    fileprivate func listenerAlert(rule: String, port: Int?, seconds: Int = 10) -> (SeenAlert, UInt64)? {
        let deadline = Clock.monotonicNanoseconds() + UInt64(seconds) * 1_000_000_000
        while Clock.monotonicNanoseconds() < deadline {
            let left = Int((deadline - Clock.monotonicNanoseconds()) / 1_000_000) + 1
            guard let alert = next(timeoutMilliseconds: left) else { return nil }
            let arrived = Clock.monotonicNanoseconds()
            guard alert.rule == rule else { continue }
            if let port, !alert.line.contains("\"port\":\"\(port)\"") { continue }
            return (alert, arrived)
        }
        return nil
    }
}

/// `listening:` rules against the kernel's real socket table (netlink sock_diag) and real listening
/// children (copies of python3 under unique names inside the test's `--root`).
@Suite(
    .serialized,
    .enabled(if: procConnectorAvailable, "needs the netlink proc connector (root, or CAP_NET_ADMIN before Linux 6.6)"),
    .enabled(if: listenerPython != nil, "needs /usr/bin/python3 to make listening children")
)
struct ListeningRuleDaemonTests {
    /// Rules and tree with a python3 stand-in at /usr/local/bin/NAME.
    private func fixture(_ rules: String, name: String, label: String) throws -> DaemonFixture {
        try DaemonFixture(rules: rules, label: label) { tree in
            if let python = listenerPython { try? StandIn.install(python, at: tree.path("usr/local/bin/\(name)")) }
        }
    }

    @Test func newListenerOnTheWildcardIsAlertedWithItsOwnerAndResolvedWhenItCloses() throws {
        let name = uniqueName("vls")
        let port = freePort()
        let fixture = try fixture(
            """
            - rule: unexpected-listener
              severity: error
              listening: any
              allow:
                - { port: 22, exe: /usr/sbin/sshd }
              message: "{status} [{proto} {address} {port} {endpoint} {pid} {name} {exe} {user} {inode}]"

            """,
            name: name,
            label: "listen-new"
        )
        let listener = try Listener(
            fixture.tree,
            exe: "/usr/local/bin/\(name)",
            proto: "tcp",
            address: "0.0.0.0",
            port: port
        )
        defer { listener.stop() }
        let found = fixture.listenerAlert(rule: "unexpected-listener", port: port)
        let alert = try #require(found?.0, "no alert for 0.0.0.0:\(port); log: \(fixture.logs.messages)")
        #expect(alert.state == "firing")
        #expect(alert.kind == "listening.unexpected")
        #expect(
            alert.message.hasPrefix(
                "\(name) (pid \(listener.child.pid), /usr/local/bin/\(name)) listens on tcp 0.0.0.0:\(port), which the allow list does not cover [tcp 0.0.0.0 \(port) 0.0.0.0:\(port) \(listener.child.pid) \(name) /usr/local/bin/\(name) root "
            ),
            "\(alert)"
        )
        #expect(alert.line.contains("\"exe\":\"/usr/local/bin/\(name)\""))
        if let listened = listener.listenedAt(), let arrived = found?.1 {
            print("listening: 0.0.0.0:\(port) listen → alert \(Double(arrived &- listened) / 1e6) ms")
        }

        listener.stop()
        let closed = fixture.listenerAlert(rule: "unexpected-listener", port: port)
        #expect(closed?.0.state == "resolved")
        #expect(closed?.0.fingerprint == alert.fingerprint)
        #expect(
            closed?.0.message.hasPrefix(
                "Resolved: tcp 0.0.0.0:\(port) of \(name) (pid \(listener.child.pid)) is closed"
            ) == true
        )
    }

    @Test func aRunningProgramThatListensLaterIsFoundByTheTimerWithItsOwner() throws {
        let name = uniqueName("vll")
        let port = freePort()
        // The program runs before Vigil starts (no exec of it is ever seen, so it is never a recent pid) and
        // binds only when told: only the timer finds the socket, and its owner only by the search of every
        // process.
        var started: Listener?
        let fixture = try DaemonFixture(
            rules: "- rule: unexpected-listener\n  listening: { port: \(port) }\n  allow: [\":22\"]\n",
            label: "listen-late"
        ) { tree in
            guard let python = listenerPython,
                (try? StandIn.install(python, at: tree.path("usr/local/bin/\(name)"))) != nil
            else { return }
            started = try? Listener(
                tree,
                exe: "/usr/local/bin/\(name)",
                proto: "tcp",
                address: "0.0.0.0",
                port: port,
                onSignal: true
            )
            _ = started?.ready()
        }
        let listener = try #require(started, "the listening child did not start")
        defer { listener.stop() }
        #expect(fixture.sync().isEmpty, "nothing listens on \(port) yet")
        listener.listenNow()
        let found = fixture.listenerAlert(rule: "unexpected-listener", port: port)
        let alert = try #require(found?.0, "no alert for 0.0.0.0:\(port); log: \(fixture.logs.messages)")
        #expect(alert.line.contains("\"pid\":\"\(listener.child.pid)\""), "\(alert)")
        if let listened = listener.listenedAt(), let arrived = found?.1 {
            print("listening: 0.0.0.0:\(port) (no exec) listen → alert \(Double(arrived &- listened) / 1e6) ms")
        }
    }

    @Test func allowedListenerIsNotAlertedButTheSameProgramOnAnotherPortIs() throws {
        let name = uniqueName("vla")
        let allowedPort = freePort()
        var otherPort = freePort()
        while otherPort == allowedPort { otherPort = freePort() }
        let fixture = try fixture(
            """
            - rule: unexpected-listener
              listening: { address: 0.0.0.0 }
              allow:
                - { port: \(allowedPort), exe: /usr/local/bin/\(name) }
                - "127.0.0.1:\(otherPort)"

            """,
            name: name,
            label: "listen-allowed"
        )
        let allowed = try Listener(
            fixture.tree,
            exe: "/usr/local/bin/\(name)",
            proto: "tcp",
            address: "0.0.0.0",
            port: allowedPort
        )
        defer { allowed.stop() }
        #expect(allowed.listenedAt() != nil)
        // The allowed one listens; the other starts after it, so the read that finds the other has seen it.
        let other = try Listener(
            fixture.tree,
            exe: "/usr/local/bin/\(name)",
            proto: "tcp",
            address: "0.0.0.0",
            port: otherPort
        )
        defer { other.stop() }
        var seen: [SeenAlert] = []
        let deadline = Clock.monotonicNanoseconds() + 10_000_000_000
        var otherAlert: SeenAlert?
        while otherAlert == nil, Clock.monotonicNanoseconds() < deadline, let alert = fixture.next() {
            guard alert.rule == "unexpected-listener" else { continue }
            seen.append(alert)
            if alert.line.contains("\"port\":\"\(otherPort)\"") { otherAlert = alert }
        }
        #expect(otherAlert?.state == "firing", "\(seen)")
        // Then a bounded wait (two timer periods and more) in which the allowed one must stay quiet.
        let quietUntil = Clock.monotonicNanoseconds() + 1_500_000_000
        while Clock.monotonicNanoseconds() < quietUntil,
            let alert = fixture.next(
                timeoutMilliseconds: Int((quietUntil &- Clock.monotonicNanoseconds()) / 1_000_000) + 1
            )
        {
            if alert.rule == "unexpected-listener" { seen.append(alert) }
        }
        #expect(!seen.contains { $0.line.contains("\"port\":\"\(allowedPort)\"") }, "\(seen)")
    }

    @Test(.enabled(if: ipv6Available, "needs IPv6 on this host"))
    func ipv6WildcardAndUDPAreDetected() throws {
        let name = uniqueName("vl6")
        let tcpPort = freePort()
        let udpPort = freePort("udp")
        let fixture = try fixture(
            """
            - rule: unexpected-listener
              listening: any
              allow: [":22"]

            """,
            name: name,
            label: "listen-v6"
        )
        let v6 = try Listener(fixture.tree, exe: "/usr/local/bin/\(name)", proto: "tcp", address: "::", port: tcpPort)
        defer { v6.stop() }
        let tcp = try #require(fixture.listenerAlert(rule: "unexpected-listener", port: tcpPort)?.0)
        #expect(tcp.message.contains("listens on tcp [::]:\(tcpPort),"), "\(tcp)")
        #expect(tcp.line.contains("\"address\":\"::\""))
        #expect(tcp.line.contains("\"pid\":\"\(v6.child.pid)\""))

        let udp = try Listener(
            fixture.tree,
            exe: "/usr/local/bin/\(name)",
            proto: "udp",
            address: "0.0.0.0",
            port: udpPort
        )
        defer { udp.stop() }
        let udpAlert = try #require(fixture.listenerAlert(rule: "unexpected-listener", port: udpPort)?.0)
        #expect(udpAlert.message.contains("listens on udp 0.0.0.0:\(udpPort),"), "\(udpAlert)")
        #expect(udpAlert.line.contains("\"pid\":\"\(udp.child.pid)\""))
    }

    @Test func expectedListenerFiresAtStartUpResolvesWhenItListensAndFiresWhenItCloses() throws {
        let name = uniqueName("vle")
        let port = freePort()
        let fixture = try fixture(
            """
            - rule: postgres-listening
              severity: critical
              listening: { proto: tcp, address: 127.0.0.1, port: \(port) }
              expect: listening

            """,
            name: name,
            label: "listen-expect"
        )
        let missing = try #require(fixture.listenerAlert(rule: "postgres-listening", port: nil)?.0)
        #expect(missing.state == "firing")
        #expect(missing.kind == "listening.missing")
        #expect(missing.message == "nothing listens on tcp 127.0.0.1:\(port)")

        let service = try Listener(
            fixture.tree,
            exe: "/usr/local/bin/\(name)",
            proto: "tcp",
            address: "127.0.0.1",
            port: port
        )
        defer { service.stop() }
        let back = try #require(fixture.listenerAlert(rule: "postgres-listening", port: nil)?.0)
        #expect(back.state == "resolved")
        #expect(back.fingerprint == missing.fingerprint)
        #expect(back.message == "Resolved: \(name) (pid \(service.child.pid)) listens on tcp 127.0.0.1:\(port)")

        service.stop()
        let gone = try #require(fixture.listenerAlert(rule: "postgres-listening", port: nil)?.0)
        #expect(gone.state == "firing")
        #expect(gone.fingerprint == missing.fingerprint)
        #expect(
            gone.message
                == "nothing listens on tcp 127.0.0.1:\(port) (the last one, of \(name) (pid \(service.child.pid)), closed)"
        )
    }
}

/// The cost of one re-read with about 1,000 processes: the sock_diag dump (four requests), the owner
/// search among recent pids (the usual case), and the fall-back search of every process's descriptors.
/// Run with `VIGIL_MEASURE_LISTENERS=1` (it starts 1,000 processes).
@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["VIGIL_MEASURE_LISTENERS"] == "1" && listenerPython != nil,
        "a measurement: set VIGIL_MEASURE_LISTENERS=1 to run it"
    )
)
struct ListeningRereadCost {
    @Test func rereadCostWithAThousandProcesses() throws {
        let tree = TempTree("listen-cost")
        defer { tree.remove() }
        var sleepers: [ChildProcess] = []
        defer {
            for sleeper in sleepers { sleeper.signal(SIGKILL) }
            for sleeper in sleepers { _ = sleeper.wait(timeoutMilliseconds: 5000) }
        }
        for _ in 0..<1000 { sleepers.append(try ChildProcess(executable: "/bin/sleep", arguments: ["600"])) }
        let port = freePort()
        let output = tree.path("cost.out")
        let python = try #require(listenerPython)
        let child = try ChildProcess(
            executable: python,
            arguments: ["-c", listenerScript, "tcp", "0.0.0.0", String(port)],
            standardOutput: output
        )
        defer {
            child.signal(SIGKILL)
            _ = child.wait(timeoutMilliseconds: 5000)
        }
        let diag = try SocketDiag()
        var socket: ListeningSocket?
        let deadline = Clock.monotonicNanoseconds() + 10_000_000_000
        while socket == nil, Clock.monotonicNanoseconds() < deadline {
            socket = try diag.listeners().first { $0.port == UInt16(port) }
            if socket == nil { _ = child.wait(timeoutMilliseconds: 10) }
        }
        let inode = try #require(socket?.inode)
        let processes = ProcFS().pids().count
        let sleeperDescriptors =
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(sleepers[0].pid)/fd"))?.count ?? 0

        let dumps = 200
        var start = Clock.monotonicNanoseconds()
        var listeners = 0
        for _ in 0..<dumps { listeners = try diag.listeners().count }
        let dump = Double(Clock.monotonicNanoseconds() - start) / Double(dumps) / 1000

        start = Clock.monotonicNanoseconds()
        var recent: [UInt64: [Int32]] = [:]
        let recentPids = [child.pid] + sleepers.suffix(31).map(\.pid)
        for _ in 0..<dumps { recent = SocketOwners.owners(of: [inode], among: recentPids) }
        let recentSearch = Double(Clock.monotonicNanoseconds() - start) / Double(dumps) / 1000

        let scans = 10
        start = Clock.monotonicNanoseconds()
        let cpuStart = threadCPUNanoseconds()
        var full: [UInt64: [Int32]] = [:]
        for _ in 0..<scans { full = SocketOwners.owners(of: [inode]) }
        let fullSearch = Double(Clock.monotonicNanoseconds() - start) / Double(scans) / 1000
        let fullSearchCPU = Double(threadCPUNanoseconds() - cpuStart) / Double(scans) / 1000

        #expect(recent[inode] == [child.pid])
        #expect(full[inode] == [child.pid])
        print(
            "listening re-read with \(processes) processes, \(listeners) listeners (a sleeper holds \(sleeperDescriptors) descriptors): sock_diag dump \(String(format: "%.0f", dump)) µs; owner among 32 recent pids \(String(format: "%.0f", recentSearch)) µs; owner over all of /proc \(String(format: "%.1f", fullSearch / 1000)) ms (\(String(format: "%.1f", fullSearchCPU / 1000)) ms CPU); load \((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "")"
        )
    }
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`), in nanoseconds.
private func threadCPUNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
