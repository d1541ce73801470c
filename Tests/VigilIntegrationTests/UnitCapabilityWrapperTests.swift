import Testing
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The wrapper `$VIGIL_UNIT_CAPABILITIES` puts in front of every daemon the tests start (`UnitCapabilities`):
/// it reads the unit's `CapabilityBoundingSet=` the way systemd combines it, and a child started through it
/// holds exactly that bounding set, no inheritable capabilities and `NoNewPrivs`. Plus one capability test
/// of the unit: masking secrets in place in a log another user owns.
@Suite(
    .enabled(
        if: VigilBinary.exists && UnitCapabilities.setprivAvailable && getuid() == 0,
        "needs root, setpriv (Debian util-linux) and the built binary"
    ),
    .timeLimit(.minutes(1))
)
struct UnitCapabilityWrapperTests {
    static let unitPath = VigilBinary.repositoryRoot + "/systemd/vigil.service"

    @Test func aChildGetsExactlyTheUnitsBoundingSet() throws {
        let unit = try UnitCapabilities(unitPath: Self.unitPath)
        #expect(unit.noNewPrivileges)
        #expect(unit.boundingSet.contains([.netAdmin, .sysPtrace, .dacReadSearch, .chown]), "\(unit.boundingSet)")
        #expect(!unit.boundingSet.contains(.sysAdmin))
        let result = try Command.run(
            unit.launcher[0],
            Array(unit.launcher.dropFirst()) + ["/bin/cat", "/proc/self/status"]
        )
        #expect(result.code == 0, "\(result.err)")
        let fields = Self.statusFields(result.out)
        #expect(fields["CapBnd"].flatMap { UInt64($0, radix: 16) } == unit.boundingSet.rawValue, "\(fields)")
        #expect(fields["CapInh"].flatMap { UInt64($0, radix: 16) } == 0)
        #expect(fields["CapAmb"].flatMap { UInt64($0, radix: 16) } == 0)
        #expect(fields["NoNewPrivs"] == "1")
    }

    @Test func boundingSetLinesCombineAsSystemdCombinesThem() throws {
        let tree = TempTree("unitcaps-parse")
        defer { tree.remove() }
        tree.write(
            "a.service",
            "[Service]\nCapabilityBoundingSet=CAP_CHOWN\nCapabilityBoundingSet=CAP_KILL cap_lease\nNoNewPrivileges=no\n"
        )
        let a = try UnitCapabilities(unitPath: tree.path("a.service"))
        #expect(a.boundingSet == [.chown, .kill, .lease])
        #expect(!a.noNewPrivileges)
        tree.write("b.service", "[Service]\nCapabilityBoundingSet=CAP_CHOWN\nCapabilityBoundingSet=\n")
        #expect(try UnitCapabilities(unitPath: tree.path("b.service")).boundingSet.isEmpty)
        tree.write("c.service", "[Service]\nCapabilityBoundingSet=~CAP_SYS_ADMIN\n")
        let c = try UnitCapabilities(unitPath: tree.path("c.service"))
        #expect(c.boundingSet == UnitCapabilities.all.subtracting(.sysAdmin))
        tree.write("d.service", "[Service]\nUser=nobody\n")
        #expect(try UnitCapabilities(unitPath: tree.path("d.service")).boundingSet == UnitCapabilities.all)
        tree.write("e.service", "[Service]\nCapabilityBoundingSet=CAP_NOT_A_THING\n")
        #expect(throws: HarnessError.self) { try UnitCapabilities(unitPath: tree.path("e.service")) }
        #expect(throws: HarnessError.self) { try UnitCapabilities(unitPath: tree.path("missing.service")) }
    }

    /// CAP_DAC_READ_SEARCH to read a 0640 log of another user in a 0750 directory of theirs, and
    /// CAP_DAC_OVERRIDE to mask a secret in it in place: with the unit's set (whether or not
    /// `$VIGIL_UNIT_CAPABILITIES` is set, this test applies it).
    @Test func aSecretIsMaskedInPlaceInALogOfAnotherUserWithTheUnitsCapabilities() throws {
        let unit = try UnitCapabilities(unitPath: Self.unitPath)
        let tree = TempTree("unitcaps-sanitize")
        defer { tree.remove() }
        tree.makeDirectory("etc")
        tree.makeDirectory("run")
        tree.makeDirectory("var/log/app", mode: 0o750)
        tree.write("var/log/app/app.log", "start\n", mode: 0o640)
        chown(tree.path("var/log/app"), 1001, 1002)
        chown(tree.path("var/log/app/app.log"), 1001, 1002)
        tree.write(
            "rules.yaml",
            """
            - rule: mask-app-secrets
              log: /var/log/app/app.log
              match: 'password='
              then: [alert, sanitize]

            """
        )
        let alerts = tree.path("alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules.yaml"), "--root", tree.root, "--alerts", alerts],
            workDirectory: tree.path("run"),
            launcher: unit.launcher
        )
        defer { daemon.stop() }
        let log = tree.path("var/log/app/app.log")
        let fd = open(log, O_WRONLY | O_APPEND)
        let line = Array("login ok password=hunter2 user=ops\n".utf8)
        #expect(line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == line.count)
        close(fd)
        var masked = false
        let deadline = Clock.monotonicNanoseconds() + 20_000_000_000
        while !masked, Clock.monotonicNanoseconds() < deadline {
            _ = follower.next(timeoutMilliseconds: 500)
            let text = ProcFile.readText(log) ?? ""
            masked = text.contains("user=ops") && !text.contains("hunter2")
        }
        #expect(masked, "\(ProcFile.readText(log) ?? ""); \(daemon.log())")
        #expect(!daemon.log().contains("cannot mask in place"), "\(daemon.log())")
    }

    /// `Key:\tvalue` lines of /proc/PID/status.
    static func statusFields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...].drop { $0 == "\t" || $0 == " " })
        }
        return fields
    }
}
