import Testing
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `vigil run` with process rules, from outside: start-up reports about capabilities and the
/// `--no-process-rules` escape hatch.
@Suite(
    .enabled(
        if: VigilBinary.exists && access("/usr/sbin/capsh", X_OK) == 0 && getuid() == 0,
        "needs root, capsh (Debian libcap2-bin) and the built binary"
    ),
    .timeLimit(.minutes(1))
)
struct ProcessCommandLineTests {
    static let rules = """
        - rule: reload-on-exec
          process: { name: vq-nothing-runs-this }
          on: [exec]
          then:
            - alert
            - reload: { signal: HUP }

        """

    @Test func aRuleNeedingAMissingCapabilityIsReportedWithItsPosition() throws {
        let tree = TempTree("capwarn")
        defer { tree.remove() }
        tree.write("rules.yaml", Self.rules)
        tree.makeDirectory("run")
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules.yaml"), "--root", tree.root],
            workDirectory: tree.path("run"),
            launcher: ["/usr/sbin/capsh", "--drop=cap_kill", "--", "-c", "exec \"$@\"", "vigil"]
        )
        defer { daemon.stop() }
        let log = daemon.log()
        #expect(
            log.contains("\(tree.path("rules.yaml")):1:3: warning: rule 'reload-on-exec' needs CAP_KILL"),
            "\(log)"
        )
        #expect(log.contains("Capabilities kept:"), "\(log)")
    }

    @Test func processRulesCanBeSwitchedOff() throws {
        let tree = TempTree("noproc")
        defer { tree.remove() }
        tree.write("rules.yaml", Self.rules)
        tree.makeDirectory("run")
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules.yaml"), "--root", tree.root, "--no-process-rules"],
            workDirectory: tree.path("run")
        )
        let log = daemon.log()
        #expect(log.contains("1 process rule(s) not loaded (--no-process-rules)"), "\(log)")
        #expect(log.contains("(0 on processes, 0 on logs)"), "\(log)")
        #expect(daemon.stop() == 0)
    }
}
