import Testing
import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The daemon with exactly the capabilities `systemd/vigil.service` grants (`CapabilityBoundingSet=`, read
/// from the unit file, applied with `capsh`): the shipped rules must work with them, so a capability the unit
/// forgets fails here, not in production.
@Suite(
    .enabled(
        if: VigilBinary.exists && access("/usr/sbin/capsh", X_OK) == 0 && getuid() == 0,
        "needs root, capsh (Debian libcap2-bin) and the built binary"
    ),
    .timeLimit(.minutes(1))
)
struct UnitCapabilitiesTests {
    /// The capability names of the unit's `CapabilityBoundingSet=`, lowercased for capsh.
    static func unitCapabilities() -> [String] {
        let unit = ProcFile.readText(VigilBinary.repositoryRoot + "/systemd/vigil.service") ?? ""
        let line = unit.split(separator: "\n").first { $0.hasPrefix("CapabilityBoundingSet=") } ?? ""
        return line.dropFirst("CapabilityBoundingSet=".count).split(separator: " ").map { $0.lowercased() }
    }

    @Test func shippedRulesRunWithTheUnitsCapabilities() throws {
        let granted = Set(Self.unitCapabilities())
        #expect(granted.contains("cap_net_admin") && granted.contains("cap_sys_ptrace"), "\(granted)")
        let lastCap = ProcFile.readInteger("/proc/sys/kernel/cap_last_cap") ?? 40
        let drop = (0...lastCap).map { CapabilitySet.name(of: $0).lowercased() }.filter { !granted.contains($0) }

        let sandbox = try SeedSandbox(label: "unitcaps")
        defer {
            sandbox.stopServiceStandIns()
            sandbox.remove()
        }
        try sandbox.installServiceStandIns()
        let upload = try sandbox.startService("upload-service")
        let alerts = sandbox.hostPath("/var/log/vigil/test-alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        let daemon = try VigilBinary.runShippedRules(
            on: sandbox,
            alerts: alerts,
            launcher: ["/usr/sbin/capsh", "--drop=" + drop.joined(separator: ","), "--", "-c", "exec \"$@\"", "vigil"]
        )
        defer { daemon.stop() }
        let log = daemon.log()
        // SO_RCVBUFFORCE needs CAP_NET_ADMIN: without it the log warns that bursts may lose events.
        #expect(!log.contains("Could not force the proc connector's receive buffer"), "\(log)")
        #expect(log.contains("Capabilities kept:"), "\(log)")

        // A process rule works: the upload service killed → its exit alert.
        upload.signal(SIGKILL)
        _ = upload.wait(timeoutMilliseconds: 5000)
        var sawExit = false
        while !sawExit, let line = follower.next(timeoutMilliseconds: 5000)?.line {
            if JSONField.string(line, "rule") == "upload-service-crashed"
                && JSONField.string(line, "kind") == "process.exit"
            {
                sawExit = true
            }
        }
        #expect(sawExit, "\(daemon.log())")
        // And a config rule: the seed's insecure setting.
        try sandbox.writeReplacing(SeedSandbox.configPath, SeedSandbox.insecureConfig)
        var sawConfig = false
        while !sawConfig, let line = follower.nextFileAlert() {
            sawConfig = JSONField.string(line, "rule") == "upload-ssl-verification-disabled"
        }
        #expect(sawConfig, "\(daemon.log())")
        // And a mode and owner rule: CAP_FOWNER and CAP_CHOWN put a log given to root with 0777 right.
        let unified = sandbox.hostPath(SeedSandbox.unifiedLogPath())
        chown(unified, 0, 0)
        chmod(unified, 0o777)
        // The chown and the chmod are two changes: the first restore may come between them, and the second
        // puts the chmod right. Wait (with a deadline) until a restore has left the file as the rule says.
        var restored = false
        var info = stat()
        func right() -> Bool {
            stat(unified, &info) == 0 && info.st_mode & 0o7777 == 0o640 && info.st_uid == SeedSandbox.analyticsUser
        }
        let deadline = Clock.monotonicNanoseconds() + 20_000_000_000
        while !(restored && right()), Clock.monotonicNanoseconds() < deadline {
            guard let line = follower.next(timeoutMilliseconds: 1000)?.line else { continue }
            restored =
                restored
                || (JSONField.string(line, "rule") == "analytics-log-permissions"
                    && JSONField.string(line, "kind") == "file.permissions_restored")
        }
        #expect(restored, "\(daemon.log())")
        #expect(right(), "mode \(String(info.st_mode & 0o7777, radix: 8)) uid \(info.st_uid); \(daemon.log())")
        #expect(!daemon.log().contains("which vigil does not hold"), "\(daemon.log())")
    }
}
