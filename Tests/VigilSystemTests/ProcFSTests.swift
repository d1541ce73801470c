import Testing
import VigilCore
import VigilTestSupport

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// /proc readers against the real /proc (this process, real children, a zombie, a deleted executable) and
/// against a hand-made proc root for the shapes the kernel rarely produces.
@Suite struct ProcFSTests {
    let proc = ProcFS()

    @Test func ownProcess() throws {
        let me = getpid()
        let stat = try #require(proc.stat(me))
        #expect(stat.pid == me && stat.ppid == getppid())
        #expect(stat.state == UInt8(ascii: "R") || stat.state == UInt8(ascii: "S"))
        #expect(!stat.comm.isEmpty && stat.comm.utf8.count <= 15)
        // The session id is whatever started the test run (0 under a runner that never called setsid).
        #expect(stat.threads >= 1 && stat.session == getsid(0))
        // Started after boot and not in the future: compare with the uptime in clock ticks.
        let uptime = ProcFile.readText("/proc/uptime")?.split(separator: " ").first.flatMap { Double($0) } ?? 0
        #expect(stat.startTime > 0)
        #expect(Double(stat.startTime) <= uptime * Double(ProcFS.clockTicksPerSecond) + 1)

        let status = try #require(proc.status(me))
        #expect(status.tgid == me && status.ppid == getppid())
        #expect(status.ruid == getuid() && status.euid == geteuid())
        #expect(status.rgid == getgid() && status.egid == getegid())

        let exe = try #require(proc.executable(me))
        #expect(exe.path == readLink("/proc/self/exe") && !exe.deleted)

        #expect(proc.commandLine(me) == CommandLine.arguments)
        let cgroup = try #require(proc.cgroup(me))
        #expect(cgroup.hasPrefix("/"))

        let threads = try #require(proc.threadIds(me))
        #expect(threads.contains(me) && threads.contains(ProcFS.currentThreadID()))
        #expect(proc.pids().contains(me) && proc.pids().contains(1))
    }

    @Test(
        .enabled(
            if: ProcConnectorTests.available,
            "needs the proc connector's exec event to know the child's argv is in place"
        )
    )
    func aChildProcess() throws {
        // posix_spawn returns as soon as the child's execve has replaced its memory (glibc clones with
        // CLONE_VFORK), but before the kernel has copied argv: /proc/PID/cmdline can still read empty then.
        // The exec event is sent once exec is complete, which is when the daemon reads /proc too.
        let session = try ProcEventSession()
        let child = try Spawn.start("/bin/sleep", arguments: ["30", "1.5"])
        defer {
            kill(child, SIGKILL)
            _ = try? Spawn.wait(child)
        }
        let exec = try session.first(within: 5000) { $0.kind == .exec && $0.tgid == child }
        try #require(exec != nil, "no exec event for pid \(child)\(ProcEventSession.silentHint)")
        let stat = try #require(proc.stat(child))
        #expect(stat.comm == "sleep" && stat.ppid == getpid())
        #expect(proc.commandLine(child) == ["/bin/sleep", "30", "1.5"])
        #expect(proc.commandLine(child, limit: 12) == ["/bin/sleep", "3"], "a limit cuts the last argument")
        let exe = try #require(proc.executable(child))
        #expect(exe.path.hasSuffix("/sleep") && !exe.deleted)
        #expect(proc.status(child)?.tgid == child)
        #expect(proc.cgroup(child) == proc.cgroup(getpid()))
        #expect(proc.threadIds(child) == [child])
    }

    @Test func aVanishedProcessReadsAsNil() throws {
        let child = try Spawn.start("/bin/true")
        _ = try Spawn.wait(child)
        #expect(proc.stat(child) == nil)
        #expect(proc.status(child) == nil)
        #expect(proc.executable(child) == nil)
        #expect(proc.commandLine(child) == nil)
        #expect(proc.cgroup(child) == nil)
        #expect(proc.threadIds(child) == nil)
    }

    @Test func aZombieHasStateZAndNoCommandLine() throws {
        let child = try Spawn.start("/bin/true")
        // waitid(WNOWAIT) returns once the child has exited but leaves it unreaped: a zombie.
        var info = siginfo_t()
        #expect(waitid(P_PID, id_t(child), &info, WEXITED | WNOWAIT) == 0)
        let stat = try #require(proc.stat(child))
        #expect(stat.isZombie)
        #expect(proc.commandLine(child) == [])
        #expect(proc.executable(child) == nil)
        _ = try Spawn.wait(child)
    }

    @Test func aDeletedExecutableIsReportedAsDeleted() throws {
        let tree = TempTree("exe")
        defer { tree.remove() }
        let copy = tree.path("vigil sleep")
        let cp = try Spawn.start("/bin/cp", arguments: ["/bin/sleep", copy])
        #expect(try Spawn.wait(cp) == 0)
        let child = try Spawn.start(copy, arguments: ["30"])
        defer {
            kill(child, SIGKILL)
            _ = try? Spawn.wait(child)
        }
        #expect(unlink(copy) == 0)
        let exe = try #require(proc.executable(child))
        #expect(exe.path == copy && exe.deleted)
    }

    @Test func kernelThreadHasNoExecutableAndNoCommandLine() throws {
        // kthreadd is pid 2 in the initial pid namespace; elsewhere there is no kernel thread to look at.
        guard proc.stat(2)?.comm == "kthreadd" else { return }
        #expect(proc.commandLine(2) == [])
        #expect(proc.executable(2) == nil)
    }

    @Test func handMadeProcRoot() throws {
        let tree = TempTree("proc")
        defer { tree.remove() }
        tree.makeDirectory("4242/task/4242")
        tree.makeDirectory("4242/task/4243")
        tree.makeDirectory("self")
        tree.makeDirectory("not-a-pid")
        // A comm holding ") (" and spaces: only the last ')' ends it.
        tree.write(
            "4242/stat",
            "4242 (evil) S 1 (x) Z) S 77 4242 4242 0 -1 4194560 100 0 0 0 12 34 0 0 20 0 2 0 123456 0 0\n"
        )
        tree.write(
            "4242/status",
            "Name:\tevil\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t77\n"
                + "Uid:\t1000\t0\t0\t0\nGid:\t100\t101\t101\t101\n"
        )
        tree.write("4242/cmdline", "a\u{0}b\u{0}\u{0}c\u{0}")
        tree.write("4242/cgroup", "2:cpu:/\n1:name=systemd:/system.slice/upload-service.service\n")
        #expect(symlink("/usr/bin/upload-service (deleted)", tree.path("4242/exe")) == 0)
        tree.write("stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n")

        let fake = ProcFS(root: tree.root + "/")
        let stat = try #require(fake.stat(4242))
        #expect(stat.comm == "evil) S 1 (x) Z")
        #expect(stat.state == UInt8(ascii: "S") && stat.ppid == 77 && stat.processGroup == 4242)
        #expect(stat.userTicks == 12 && stat.systemTicks == 34 && stat.threads == 2 && stat.startTime == 123_456)
        #expect(fake.status(4242) == .init(tgid: 4242, ppid: 77, ruid: 1000, euid: 0, rgid: 100, egid: 101))
        #expect(fake.commandLine(4242) == ["a", "b", "", "c"])
        #expect(fake.cgroup(4242) == "/system.slice/upload-service.service", "v1 only: the name=systemd line")
        #expect(fake.executable(4242) == .init(path: "/usr/bin/upload-service", deleted: true))
        #expect(fake.pids() == [4242])
        #expect(fake.threadIds(4242) == [4242, 4243])
        #expect(fake.bootTime() == 1_700_000_000)

        tree.write("4242/cgroup", "1:name=systemd:/old\n0::/system.slice/postgres.service\n")
        #expect(fake.cgroup(4242) == "/system.slice/postgres.service", "the unified line wins")
        tree.write("4242/stat", "4242 (truncated")
        #expect(fake.stat(4242) == nil)
        tree.write("4242/cmdline", "")
        #expect(fake.commandLine(4242) == [])
    }

    @Test(
        arguments: [
            ("/system.slice/upload-service.service", "upload-service.service"),
            ("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", "foo.service"),
            ("/user.slice/user-1000.slice/session-3.scope", "session-3.scope"),
            ("/system.slice/postgresql@15-main.service/init", "postgresql@15-main.service"),
            ("/system.slice", nil),
            ("/", nil),
            ("", nil),
        ] as [(String, String?)]
    )
    func unitFromCgroup(path: String, unit: String?) {
        #expect(ProcFS.unit(fromCgroup: path) == unit)
    }

    @Test func clockTicksAndBootTime() {
        #expect(ProcFS.clockTicksPerSecond == 100)
        #expect(ProcFS.nanosecondsSinceBoot(ticks: 250) == 2_500_000_000)
        let boot = ProcFS().bootTime() ?? 0
        #expect(boot > 1_000_000_000 && boot <= Int64(Clock.realtime().seconds))
    }

    private func readLink(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(path, &buffer, 4096)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }
}
