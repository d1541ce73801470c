import Testing
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Processes that are gone, reaped, before Vigil reads `/proc` at their exec: the kernel's exec event has
/// no name, so their exit is judged by the name in the kernel's exit record (taskstats). Made certain, not
/// left to timing: the daemon is stopped with SIGSTOP while the programs run and are reaped, so every exec
/// event is read after its process is gone.
@Suite(
    .serialized,
    .enabled(if: VigilBinary.exists && getuid() == 0, "needs root and the built binary"),
    .timeLimit(.minutes(1))
)
struct ShortLivedProcessTests {
    static func rules(_ name: String) -> String {
        """
        - sink: alerts-file
          type: jsonl
          path: /alerts.jsonl
        - rule: short-lived-exited
          process: { name: \(name) }
          on: [exit]
          message: "{name} (pid {pid}) {status} as {user}"
        - rule: short-lived-exe-exited
          process: { exe: /usr/local/bin/\(name) }
          on: [exit]
          message: "{name} (pid {pid}) {status}"

        """
    }

    /// `vigil run` on the rules, following SANDBOX/alerts.jsonl.
    static func start(
        _ tree: TempTree,
        name: String,
        launcher: [String] = []
    ) throws -> (DaemonProcess, LineFollower) {
        tree.write("rules.yaml", rules(name))
        tree.makeDirectory("run")
        try StandIn.install("/bin/true", at: tree.path("usr/local/bin/\(name)"))
        let follower = try LineFollower(path: tree.path("alerts.jsonl"))
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules.yaml"), "--root", tree.root],
            workDirectory: tree.path("run"),
            launcher: launcher
        )
        return (daemon, follower)
    }

    @Test func processesReapedBeforeTheirExecIsReadAreStillMatchedByName() throws {
        let tree = TempTree("shortlived")
        defer { tree.remove() }
        let name = "vq-short" + String(UInt16.random(in: 0..<UInt16.max), radix: 36)
        let (daemon, follower) = try Self.start(tree, name: name)
        var stopped = false
        defer { if !stopped { _ = daemon.stop() } }
        #expect(kill(daemon.process.pid, SIGSTOP) == 0)
        var pids: Set<Int32> = []
        for _ in 0..<20 {
            let child = try ChildProcess(executable: tree.path("usr/local/bin/\(name)"), arguments: [])
            #expect(child.wait(timeoutMilliseconds: 5000) == 0)
            #expect(access("/proc/\(child.pid)/stat", F_OK) != 0, "pid \(child.pid) is reaped and gone from /proc")
            pids.insert(child.pid)
        }
        #expect(kill(daemon.process.pid, SIGCONT) == 0)
        // By name (the record's comm) and by executable (the record's device and inode, the rule's file).
        var alerted: Set<Int32> = []
        var alertedByExecutable: Set<Int32> = []
        while alerted.count < pids.count || alertedByExecutable.count < pids.count,
            let (line, _) = follower.next(timeoutMilliseconds: 10_000)
        {
            let pid = JSONField.label(line, "pid").flatMap { Int32($0) } ?? 0
            #expect(pids.contains(pid), "an alert for a pid this test did not run: \(line)")
            switch JSONField.string(line, "rule") {
            case "short-lived-exited":
                #expect(
                    JSONField.string(line, "message") == "\(name) (pid \(pid)) exited with code 0 as root",
                    "\(line)"
                )
                alerted.insert(pid)
            case "short-lived-exe-exited":
                #expect(JSONField.string(line, "path") == "/usr/local/bin/\(name)", "\(line)")
                alertedByExecutable.insert(pid)
            default:
                Issue.record("an alert of another rule: \(line)")
            }
        }
        #expect(alerted == pids, "alerted by name \(alerted.count) of \(pids.count)")
        #expect(alertedByExecutable == pids, "alerted by executable \(alertedByExecutable.count) of \(pids.count)")
        stopped = true
        #expect(daemon.stop() == 0)
        let stopLine = daemon.log().split(separator: "\n").last { $0.contains("Stopped:") }.map(String.init) ?? ""
        // "…, N processes gone before /proc could be read at exec, M of them named by their exit record)"
        let named = stopLine.split(separator: ",").last { $0.contains("named by their exit record") }
            .flatMap { $0.split(separator: " ").first }.flatMap { Int($0) }
        #expect((named ?? 0) >= pids.count, "\(stopLine)")
    }

    @Test(
        .enabled(if: access("/usr/sbin/capsh", X_OK) == 0, "needs capsh (Debian libcap2-bin)")
    )
    func withoutNetAdminTheLossOfNamesIsSaid() throws {
        let tree = TempTree("shortlived-nocap")
        defer { tree.remove() }
        let daemon: DaemonProcess
        do {
            (daemon, _) = try Self.start(
                tree,
                name: "vq-short-nocap",
                launcher: ["/usr/sbin/capsh", "--drop=cap_net_admin", "--", "-c", "exec \"$@\"", "vigil"]
            )
        } catch {
            // Before Linux 6.6 binding the proc connector itself needs CAP_NET_ADMIN: the daemon refuses to
            // start, and says so.
            #expect("\(error)".contains("CAP_NET_ADMIN"), "\(error)")
            return
        }
        defer { _ = daemon.stop() }
        let log = daemon.log()
        #expect(log.contains("No taskstats exit records"), "\(log)")
        #expect(log.contains("CAP_NET_ADMIN") && log.contains("docs/operations.md#taskstats"), "\(log)")
    }
}
