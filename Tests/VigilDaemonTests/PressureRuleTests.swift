import Logging
import Testing
import VigilDaemon
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A small cgroup for a memory hog: a cgroup v2 directory (where PSI accounts its tasks, whatever the
/// controllers) limited to a few MiB without swap, either by the v2 memory controller or, on a hybrid
/// v1/v2 host (`/sys/fs/cgroup/unified`), by a v1 memory cgroup of the same name. Removed by `remove()`,
/// which kills what still runs in it first.
final class HogCgroup {
    /// The v2 hierarchy's mount point.
    let v2Root: String
    /// The cgroup's path from the v2 root, as `cgroup:` names it.
    let name: String
    /// The v1 memory cgroup (hybrid hosts only).
    let v1Memory: String?

    var v2Directory: String { v2Root + name }

    /// Why no cgroup could be made here, or nil when `make` will work.
    static func unavailableReason() -> String? {
        guard Pressure.support().triggersAllowed else {
            return Pressure.support().reason ?? "this kernel accepts no PSI triggers here"
        }
        if let controllers = ProcFile.readText("/sys/fs/cgroup/cgroup.controllers") {
            return controllers.split(separator: " ").contains(where: { $0.hasPrefix("memory") })
                ? nil : "the cgroup v2 root has no memory controller (cgroup.controllers: \(controllers))"
        }
        if access("/sys/fs/cgroup/unified/cgroup.procs", W_OK) == 0,
            access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0
        {
            return nil
        }
        return
            "neither a cgroup v2 root with the memory controller nor a hybrid v1 memory + v2 hierarchy is writable here"
    }

    /// Makes the cgroup with `limit` bytes of memory and no swap.
    init(limit: Int) throws {
        name = "/vigil-psi-test-\(getpid())"
        if access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0 {
            v2Root = "/sys/fs/cgroup"
            v1Memory = nil
            let subtree = ProcFile.readText(v2Root + "/cgroup.subtree_control") ?? ""
            if !subtree.contains("memory") { try Self.write(v2Root + "/cgroup.subtree_control", "+memory") }
            try Self.makeDirectory(v2Root + name)
            try Self.write(v2Root + name + "/memory.max", String(limit))
            // Absent without swap accounting; no swap is no swap either way.
            try? Self.write(v2Root + name + "/memory.swap.max", "0")
        } else {
            v2Root = "/sys/fs/cgroup/unified"
            v1Memory = "/sys/fs/cgroup/memory" + name
            try Self.makeDirectory(v2Root + name)
            try Self.makeDirectory("/sys/fs/cgroup/memory" + name)
            try Self.write("/sys/fs/cgroup/memory" + name + "/memory.limit_in_bytes", String(limit))
            try? Self.write("/sys/fs/cgroup/memory" + name + "/memory.memsw.limit_in_bytes", String(limit))
        }
    }

    /// The shell commands that move the shell running them into the cgroup.
    var joinCommands: String {
        var commands = "echo $$ > '\(v2Directory)/cgroup.procs'"
        if let v1Memory { commands += " && echo $$ > '\(v1Memory)/cgroup.procs'" }
        return commands
    }

    /// Kills everything in the cgroup (`cgroup.kill`, Linux 5.14) and removes it, waiting up to 10 s for the
    /// killed tasks to go: `cgroup.events` says `populated 0` then, and the kernel flags the file (POLLPRI)
    /// each time that line changes.
    func remove() {
        try? Self.write(v2Directory + "/cgroup.kill", "1")
        let deadline = Clock.monotonicNanoseconds() + 10_000_000_000
        let events = open(v2Directory + "/cgroup.events", O_RDONLY | O_CLOEXEC)
        if events >= 0 {
            defer { close(events) }
            var buffer = [UInt8](repeating: 0, count: 256)
            while Clock.monotonicNanoseconds() < deadline {
                let n = buffer.withUnsafeMutableBytes { pread(events, $0.baseAddress, $0.count, 0) }
                if n > 0 && String(decoding: buffer[0..<n], as: UTF8.self).contains("populated 0") { break }
                var pfd = pollfd(fd: events, events: Int16(POLLPRI), revents: 0)
                _ = poll(&pfd, 1, CInt((deadline &- min(deadline, Clock.monotonicNanoseconds())) / 1_000_000) + 1)
            }
        }
        for directory in [v1Memory, v2Directory].compactMap({ $0 }) where rmdir(directory) != 0 {
            Issue.record("rmdir \(directory): \(String(cString: strerror(errno))); remove it by hand")
        }
    }

    static func write(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HarnessError("open '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let n = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        guard n >= 0 else { throw HarnessError("write '\(text)' to '\(path)': \(String(cString: strerror(errno)))") }
    }

    static func makeDirectory(_ path: String) throws {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw HarnessError("mkdir '\(path)': \(String(cString: strerror(errno)))")
        }
    }
}

/// `pressure:` rules against real memory pressure: a hog re-reading a 128 MiB file in a 16 MiB cgroup
/// without swap stalls on reclaim; the host-wide rule and the rule on the hog's cgroup fire, and resolve
/// once the hog is killed. A window the kernel refuses without CAP_SYS_RESOURCE, and a cgroup that does not
/// exist, are reported at start-up and not loaded, and the other rules run.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct PressureRuleTests {
    static let unavailable = HogCgroup.unavailableReason()

    /// Waits (up to `seconds`) for an alert of `rule` in `state`; other alerts are collected in `seen`.
    static func await(
        _ fixture: DaemonFixture,
        rule: String,
        state: String,
        seconds: Int,
        seen: inout [SeenAlert]
    ) -> SeenAlert? {
        if let index = seen.firstIndex(where: { $0.rule == rule && $0.state == state }) {
            return seen.remove(at: index)
        }
        let deadline = Clock.monotonicNanoseconds() + UInt64(seconds) * 1_000_000_000
        while Clock.monotonicNanoseconds() < deadline {
            guard let alert = fixture.next(timeoutMilliseconds: 500) else { continue }
            if alert.rule == rule && alert.state == state { return alert }
            if alert.rule != "cookie" { seen.append(alert) }
        }
        return nil
    }

    @Test(.enabled(if: unavailable == nil, "\(unavailable ?? "")"))
    func aMemoryHogInASmallCgroupFiresTheHostAndTheCgroupRulesAndStoppingItResolvesThem() throws {
        let cgroup = try HogCgroup(limit: 16 << 20)
        defer { cgroup.remove() }
        let fixture = try DaemonFixture(
            rules: """
                - rule: host-memory-pressure
                  severity: warning
                  pressure: memory
                  stall: 50ms
                  within: 2s
                - rule: hog-memory-pressure
                  severity: warning
                  pressure: memory
                  stall: 5%
                  cgroup: \(cgroup.name)
                - rule: odd-window
                  pressure: memory
                  stall: 10%
                  within: 3s
                - rule: no-such-cgroup
                  pressure: io
                  stall: 10%
                  cgroup: /vigil-no-such-cgroup-\(getpid())
                """,
            label: "psi"
        )
        let warnings = fixture.logs.messages(atLeast: .warning)
        #expect(
            warnings.contains {
                $0.hasPrefix(
                    "test.yaml:20:3: warning: rule 'no-such-cgroup' is not loaded: cgroup '/vigil-no-such-cgroup-"
                )
            },
            "\(warnings)"
        )
        if !Capabilities.has(.sysResource) {
            #expect(
                warnings.contains(
                    "test.yaml:16:3: warning: rule 'odd-window' is not loaded: within: must be a multiple of 2s without CAP_SYS_RESOURCE (add it to CapabilityBoundingSet= / AmbientCapabilities= in vigil.service) or use within: 2s"
                ),
                "\(warnings)"
            )
            #expect(fixture.daemon.systemRuleCount == 2)
        }
        #expect(fixture.sync().allSatisfy { !$0.rule.hasPrefix("hog-") }, "the hog's cgroup is calm before the hog")

        let file = fixture.tree.path("hog-data")
        // The shell joins the cgroup before it starts anything, so every reader it forks is in it too.
        let reader = "(while :; do cat '\(file)' > /dev/null; done)"
        let script =
            "{ \(cgroup.joinCommands); } || exit 1; dd if=/dev/zero of='\(file)' bs=1M count=128 2>/dev/null;"
            + " \(reader) & \(reader) & wait"
        let hog = try ChildProcess(executable: "/bin/sh", arguments: ["-c", script])
        defer { _ = hog.terminate(graceMilliseconds: 100) }
        let started = Clock.monotonicNanoseconds()

        var seen: [SeenAlert] = []
        let cgroupAlert = Self.await(fixture, rule: "hog-memory-pressure", state: "firing", seconds: 60, seen: &seen)
        let hostAlert = Self.await(fixture, rule: "host-memory-pressure", state: "firing", seconds: 60, seen: &seen)
        let firedAfter = Double(Clock.monotonicNanoseconds() - started) / 1e9
        print("pressure: both rules fired \(firedAfter) s after the hog started")
        let alert = try #require(cgroupAlert, "no firing alert of the cgroup rule; log: \(fixture.logs.messages)")
        #expect(alert.path == cgroup.v2Directory + "/memory.pressure")
        #expect(
            alert.message.hasPrefix(
                "memory pressure on \(cgroup.name): tasks stalled (some) more than 100ms within 2s; avg10 "
            ),
            "\(alert.message)"
        )
        let host = try #require(hostAlert, "no firing alert of the host rule; log: \(fixture.logs.messages)")
        #expect(host.path == "/proc/pressure/memory")
        #expect(host.message.hasPrefix("memory pressure on host: tasks stalled (some) more than 50ms within 2s"))

        // The cgroup stays (its trigger too): the rule resolves because the stall stopped, not because the
        // file went away.
        try HogCgroup.write(cgroup.v2Directory + "/cgroup.kill", "1")
        _ = hog.wait(timeoutMilliseconds: 10_000)
        let hostResolved = Self.await(
            fixture,
            rule: "host-memory-pressure",
            state: "resolved",
            seconds: 60,
            seen: &seen
        )
        #expect(hostResolved?.fingerprint == host.fingerprint, "log: \(fixture.logs.messages)")
        let cgroupResolved = Self.await(
            fixture,
            rule: "hog-memory-pressure",
            state: "resolved",
            seconds: 60,
            seen: &seen
        )
        #expect(cgroupResolved?.fingerprint == alert.fingerprint, "log: \(fixture.logs.messages)")
        #expect(
            seen.filter { $0.state == "firing" && $0.rule == "hog-memory-pressure" }.isEmpty,
            "one firing per episode: \(seen)"
        )
    }
}
