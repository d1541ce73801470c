import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Hot reload under load (issue 8): `ReloadStorm` on the release build at 9,000 log lines and 1,000 new
/// files a second (10,000 events) through 100 saves of a rule file, every other one broken. What counts:
/// every line's and every file's alert exactly once, the config rule that fired before the storm never
/// fired again, one `vigil.reload_failed` per failed reload; and how long a reload takes, from the save to
/// its outcome in vigil's log (the 250 ms debounce included) and the swap alone (what vigil logs).
struct ReloadResult {
    var settings = ReloadStorm.Settings(linesPerSecond: 0, reloads: 0)
    var storm = ReloadStorm.Result()
    var failures: [String] = []

    var detectedEverything: Bool { failures.isEmpty && storm.exact }

    func lines() -> [String] {
        func summary(_ samples: [Double]) -> String {
            guard let s = LatencySummary(samples.map { UInt64(max(0, $0 * 1e6)) }) else { return "none" }
            return
                "p50 \(milliseconds(s.p50)) ms, p99 \(milliseconds(s.p99)) ms, max \(milliseconds(s.max)) ms (\(s.count))"
        }
        return [
            "reload: \(settings.reloads) saves of a rule file (every other one broken) under \(settings.linesPerSecond) log lines and \(settings.linesPerSecond / 10) new files a second: \(storm)",
            "reload: save → outcome in vigil's log (debounce of 250 ms included): \(summary(storm.outcomeMilliseconds))",
            "reload: the swap itself, as vigil logs it (compile, diff, the log watcher rebuilt, the matcher swapped in place): \(summary(storm.swapMilliseconds))",
        ] + failures.map { "reload: problem: \($0)" }
    }
}

enum ReloadBench {
    static func run(vigil: String, settings: ReloadStorm.Settings) -> ReloadResult {
        var result = ReloadResult()
        result.settings = settings
        var template = Array("/tmp/vigil-bench-reload-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            result.failures.append("mkdtemp failed: errno \(errno)")
            return result
        }
        let root = String(cString: made)
        defer {
            _ = try? ChildProcess(executable: "/bin/rm", arguments: ["-rf", root]).wait(timeoutMilliseconds: 60_000)
        }
        ReloadStorm.prepare(root: root)
        do {
            let daemon = try DaemonProcess(
                executable: vigil,
                arguments: ReloadStorm.arguments(root: root),
                workDirectory: root + "/run"
            )
            defer { daemon.stop() }
            result.storm = try ReloadStorm.run(settings, root: root, daemon: daemon)
            if result.storm.reloaded + result.storm.failed != settings.reloads {
                result.failures.append(
                    "\(result.storm.reloaded + result.storm.failed) reload outcomes for \(settings.reloads) saves; vigil's log ends: \(daemon.log().suffix(1500))"
                )
            }
        } catch {
            result.failures.append("\(error)")
        }
        return result
    }
}

extension ReloadResult {
    /// Both reload latencies, for `benchmarks/plot` (`reload.csv`).
    @MainActor
    func recordSamples() {
        for (subject, samples) in [
            ("save → outcome in vigil's log (250 ms debounce included)", storm.outcomeMilliseconds),
            ("the swap itself, as vigil logs it", storm.swapMilliseconds),
        ] {
            Samples.record(scenario: "reload", subject: subject, nanoseconds: samples.map { UInt64(max(0, $0 * 1e6)) })
        }
    }
}
