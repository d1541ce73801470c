import Testing
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The rotation torture against the real binary, killed with SIGKILL and started again while a writer
/// appends and the log is rotated. Scaled down for the debug build CI runs (the full 50,000 lines/s for a
/// minute with three kills is `benchmarks/run`'s log-torture scenario, on the release build).
@Suite(.enabled(if: VigilBinary.exists, "needs the built binary"), .serialized, .timeLimit(.minutes(3)))
struct LogTortureTests {
    func torture(_ rotation: RotationTorture.Rotation) throws -> RotationTorture.Result {
        let tree = TempTree("torture-\(rotation.rawValue)")
        defer { tree.remove() }
        tree.write("rules.yaml", RotationTorture.rules)
        tree.makeDirectory("var/log/torture")
        tree.makeDirectory("run")
        let alerts = tree.path("alerts.jsonl")
        let settings = RotationTorture.Settings(
            linesPerSecond: 4000,
            seconds: 6,
            rotateEveryMilliseconds: 500,
            kills: 3,
            rotation: rotation
        )
        let result = try RotationTorture.run(
            settings,
            logPath: tree.path("var/log/torture/app.log"),
            alertsPath: alerts
        ) {
            try DaemonProcess(
                executable: VigilBinary.path,
                arguments: [
                    "--rules", tree.path("rules.yaml"), "--root", tree.root, "--alerts", alerts, "--no-process-rules",
                ],
                workDirectory: tree.path("run")
            )
        }
        print("LogTortureTests \(rotation.rawValue): \(result)")
        return result
    }

    @Test func renameRotationWithSIGKILLsAlertsEveryLineExactlyOnce() throws {
        let result = try torture(.rename)
        #expect(result.restarts == 3 && result.rotations >= 10)
        #expect(result.missing.isEmpty, "missing: \(result.missing.prefix(20))")
        #expect(result.duplicated.isEmpty, "duplicated: \(result.duplicated.prefix(20))")
        #expect(result.once == result.written)
    }

    @Test func copyAndTruncateLossIsAlwaysReported() throws {
        let result = try torture(.copyTruncate)
        #expect(result.restarts == 3 && result.rotations >= 10)
        #expect(result.duplicated.isEmpty, "duplicated: \(result.duplicated.prefix(20))")
        // Every truncation is noticed (while running, or at the restart after it).
        #expect(result.truncationAlerts >= result.rotations, "\(result)")
        #expect(result.missing.isEmpty || result.truncationAlerts > 0)
    }
}
