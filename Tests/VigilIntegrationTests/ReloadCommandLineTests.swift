import Testing
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Hot reload and state across restarts, against the built binary as systemd runs it: rule files in a
/// directory, changes picked up by the daemon's own watch of that directory (no signal), SIGHUP, restarts.
@Suite(.enabled(if: VigilBinary.exists, "needs the built binary"), .serialized, .timeLimit(.minutes(5)))
struct ReloadCommandLineTests {
    /// The Done-when of hot reload, scaled for the debug build on a shared 2-core CI machine: 2,000 log lines
    /// and 200 new files a second through 40 saves of a rule file, every other one broken. The full 10,000
    /// events a second and 100 reloads run on the release build in `benchmarks/run` (scenario "reload").
    @Test func reloadsUnderASteadyStreamOfEventsChangeNothingCounted() throws {
        let tree = TempTree("reload-storm")
        defer { tree.remove() }
        ReloadStorm.prepare(root: tree.root)
        let vigil = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ReloadStorm.arguments(root: tree.root),
            workDirectory: tree.path("run")
        )
        defer { vigil.stop() }
        let result = try ReloadStorm.run(.init(linesPerSecond: 2000, reloads: 40), root: tree.root, daemon: vigil)
        print("ReloadCommandLineTests: \(result)")
        #expect(result.reloaded == 20 && result.failed == 20, "\(result); log:\n\(vigil.log().suffix(3000))")
        #expect(result.markersSeen == 2, "\(result)")
        #expect(result.missingLines.isEmpty, "missing lines, e.g. \(result.missingLines.prefix(10))")
        #expect(result.doubledLines.isEmpty, "doubled lines, e.g. \(result.doubledLines.prefix(10))")
        #expect(result.missingFiles == 0 && result.doubledFiles == 0, "\(result)")
        // The config rule kept firing through every reload and was sent once; each broken save raised one alert.
        #expect(result.sslFiring == 1 && result.sslResolved == 0, "\(result)")
        #expect(result.reloadFailedAlerts == result.failed, "\(result)")
    }

    /// The rule files are watched before READY=1: a save the moment READY arrives (before vigil's main
    /// thread ran again) is picked up. Watched only after READY, such a save was lost on a busy machine.
    @Test func aRuleSavedTheMomentReadyArrivesIsLoaded() throws {
        let tree = TempTree("reload-at-ready")
        defer { tree.remove() }
        ReloadStorm.prepare(root: tree.root)
        unlink(tree.path("rules/extra.yaml"))
        let alerts = tree.path("alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        let vigil = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules"), "--root", tree.root, "--alerts", alerts, "--no-process-rules"],
            workDirectory: tree.path("run")
        )
        defer { vigil.stop() }
        tree.write(
            "rules/debug.yaml",
            "- rule: debug-on\n  severity: warning\n  config: /etc/app/app.conf\n  when: { key: debug, is: true }\n  message: debug on\n"
        )
        var seen: String?
        while seen == nil, let (line, _) = follower.next(timeoutMilliseconds: 10_000) {
            if JSONField.string(line, "rule") == "debug-on" { seen = line }
        }
        #expect(seen.flatMap { JSONField.string($0, "state") } == "firing", "log:\n\(vigil.log().suffix(2000))")
    }

    @Test func sighupReloadsAndAConditionSurvivesARestartWithoutFiringAgain() throws {
        let tree = TempTree("reload-restart")
        defer { tree.remove() }
        ReloadStorm.prepare(root: tree.root)
        unlink(tree.path("rules/extra.yaml"))
        let alerts = tree.path("alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        let arguments = [
            "--rules", tree.path("rules"), "--root", tree.root, "--alerts", alerts, "--no-process-rules",
        ]
        func next(_ rule: String) -> String? {
            while let (line, _) = follower.next(timeoutMilliseconds: 10_000) {
                if JSONField.string(line, "rule") == rule { return line }
            }
            return nil
        }
        var vigil = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: arguments,
            workDirectory: tree.path("run")
        )
        let firing = next("ssl-off")
        #expect(firing.flatMap { JSONField.string($0, "state") } == "firing")

        // A rule written into the directory and a SIGHUP at once: one of the two reloads adds it.
        tree.write(
            "rules/debug.yaml",
            "- rule: debug-on\n  severity: warning\n  config: /etc/app/app.conf\n  when: { key: debug, is: true }\n  message: debug on\n"
        )
        vigil.process.signal(SIGHUP)
        #expect(next("debug-on").flatMap { JSONField.string($0, "state") } == "firing")

        // Restarted with both conditions still true: nothing is sent again.
        #expect(vigil.stop() == 0)
        vigil = try DaemonProcess(executable: VigilBinary.path, arguments: arguments, workDirectory: tree.path("run"))
        tree.write("var/spool/in/cookie-1", "")
        let afterRestart = next("counted-file")
        #expect(afterRestart != nil)
        #expect(
            follower.drain().allSatisfy {
                !$0.contains("\"rule\":\"ssl-off\"") && !$0.contains("\"rule\":\"debug-on\"")
            }
        )

        // Cleared while vigil was down: resolved at the next start, with the same fingerprint; and the key
        // changed meanwhile is reported against the version vigil saw last (config snapshots persist).
        #expect(vigil.stop() == 0)
        tree.write(
            "rules/changes.yaml",
            "- rule: ssl-changed\n  severity: warning\n  config: /etc/app/app.conf\n  changes: [verify_ssl]\n  message: \"changed: {changes}\"\n"
        )
        tree.writeReplacing("etc/app/app.conf", "verify_ssl = true\ndebug = true\n")
        vigil = try DaemonProcess(executable: VigilBinary.path, arguments: arguments, workDirectory: tree.path("run"))
        defer { vigil.stop() }
        // The change is reported at start-up, the resolution right after READY=1: take both, in any order.
        var resolved: String?
        var changed: String?
        while resolved == nil || changed == nil, let (line, _) = follower.next(timeoutMilliseconds: 10_000) {
            switch JSONField.string(line, "rule") {
            case "ssl-off": resolved = line
            case "ssl-changed": changed = line
            default: break
            }
        }
        #expect(resolved.flatMap { JSONField.string($0, "state") } == "resolved")
        #expect(
            resolved.flatMap { JSONField.string($0, "fingerprint") }
                == firing.flatMap { JSONField.string($0, "fingerprint") }
        )
        #expect(resolved?.contains("no longer true when vigil started") == true)
        #expect(
            changed.flatMap { JSONField.string($0, "message") } == "changed: verify_ssl: false → true",
            "\(String(describing: changed))"
        )
    }
}
