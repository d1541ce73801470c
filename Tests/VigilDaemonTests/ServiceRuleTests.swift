import Foundation
import Testing
import VigilDaemon
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Where cgroup v2 is mounted: `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on a hybrid one.
let cgroup2Mount: String? = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].first {
    access($0 + "/cgroup.procs", W_OK) == 0 && access($0 + "/cgroup.subtree_control", F_OK) == 0
}

/// `service:` rules: the seed's `systemctl is-active` loop made continuous. Off systemd they match the
/// service's processes by name; with systemd they match the unit named in each process's cgroup, which the
/// second test creates for real in cgroup v2.
@Suite(
    .serialized,
    .enabled(if: procConnectorAvailable, "needs the netlink proc connector (root, or CAP_NET_ADMIN before Linux 6.6)")
)
struct ServiceRuleTests {
    @Test func offSystemdAServiceIsItsProcessesByName() throws {
        let name = uniqueName("vsv")
        let fixture = try DaemonFixture(
            rules: """
                - rule: service-active
                  severity: critical
                  service: \(name).service
                """,
            label: "service-name"
        ) { tree in
            try? StandIn.install("/bin/sleep", at: tree.path("usr/local/bin/\(name)"))
        } configure: { options in
            options.systemdRunning = false
        }
        let missing = fixture.expect(rule: "service-active", state: "firing")
        #expect(missing?.message == "service \(name).service is not active: none of its processes runs")
        #expect(missing?.severity == "critical")

        let service = try ChildProcess(executable: fixture.tree.path("usr/local/bin/\(name)"), arguments: ["30"])
        let back = fixture.expect(rule: "service-active", state: "resolved")
        #expect(back?.message == "service \(name).service is active again: \(name) runs (pid \(service.pid))")
        #expect(back?.fingerprint == missing?.fingerprint)

        service.signal(SIGKILL)
        let down = fixture.expect(rule: "service-active", state: "firing")
        #expect(down?.message == "service \(name).service is not active: none of its processes runs")
        _ = service.wait(timeoutMilliseconds: 5000)
    }

    @Test(.enabled(if: cgroup2Mount != nil, "needs a writable cgroup v2 hierarchy"))
    func withSystemdAServiceIsTheUnitInTheCgroup() throws {
        let name = uniqueName("vsu")
        let unit = "\(name).service"
        let cgroup = "\(cgroup2Mount ?? "/sys/fs/cgroup")/\(unit)"
        #expect(mkdir(cgroup, 0o755) == 0, "mkdir \(cgroup): \(String(cString: strerror(errno)))")
        defer { rmdir(cgroup) }
        let fixture = try DaemonFixture(
            rules: """
                - rule: unit-active
                  service: \(name)
                """,
            label: "service-unit"
        ) { _ in
        } configure: { options in
            options.systemdRunning = true
        }
        #expect(fixture.expect(rule: "unit-active", state: "firing") != nil)

        // A process named like the service but outside its cgroup is not the service.
        let impostor = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "exec -a \(name) /bin/sleep 30"])
        // The unit's process: moves itself into the unit's cgroup, then runs the program (whose exec is when
        // Vigil reads its cgroup).
        let member = try ChildProcess(
            executable: "/bin/sh",
            arguments: ["-c", "echo $$ > \(cgroup)/cgroup.procs && exec /bin/sleep 30"]
        )
        let back = fixture.expect(rule: "unit-active", state: "resolved")
        #expect(back?.message == "service \(name) is active again: sleep runs (pid \(member.pid))")
        member.signal(SIGKILL)
        _ = member.wait(timeoutMilliseconds: 5000)
        #expect(fixture.expect(rule: "unit-active", state: "firing") != nil)
        impostor.signal(SIGKILL)
        _ = impostor.wait(timeoutMilliseconds: 5000)
    }
}
