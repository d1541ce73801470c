import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// Monit at its shortest cycle (`set daemon 1`) as a peer of config drift and process death: `monit -I -c
// CONTROL` in the foreground with its own pid, id, state and log files in the sandbox. Monit looks once per
// cycle, so its latency is wherever the event falls in that second: each trial waits a uniformly random
// 0–1 s (a fixed seed) before its event, so that the event falls anywhere in the cycle, as a real one does.
// About a second per trial: fewer trials than the other subjects (`PeerTrials.monitPerRound`).

/// Milliseconds a Monit trial may take: a cycle, the check and the exec, with room for a slow cycle.
let monitMissTimeoutMilliseconds = 3_000

/// Monit's exec action splits its string into argv itself (single quotes group, nothing is unescaped), so its
/// one-shot is the same `/bin/sh -c 'echo DATA >> OUT'` without inner quotes (sandbox paths have no spaces).
func monitOneShot(data: String, output: String) -> String { "/bin/sh -c 'echo \(data) >> \(output)'" }

/// Starts Monit on `checks` in `work`; ready once `ready` (a line its first cycle writes) is seen in
/// `follower`, within 15 s.
private func startMonit(
    _ monit: String,
    work: String,
    checks: String,
    follower: LineFollower,
    ready: String
) throws(HarnessError) -> PeerDaemon {
    let control = try writeMonitControl(work: work, checks: checks)
    let daemon = try PeerDaemon(
        arguments: [monit, "-I", "-c", control],
        output: work + "/monit.stdout",
        error: work + "/monit.err"
    )
    while let (line, _) = follower.next(timeoutMilliseconds: 15_000) {
        if line == ready { return daemon }
    }
    daemon.stop()
    throw HarnessError(
        "monit: no '\(ready)' line within 15 s; its log: \((ProcFile.readText(work + "/monit.log") ?? "").replacingNewlines())"
    )
}

/// Config drift against Monit: `check file … if changed checksum then exec` the one-shot. Every save changes
/// the checksum, so every flip is expected to produce a line (like peer (a)); extra lines count as doubled.
func runMonitDrift(flips: [Flip]) -> DriftResult {
    var result = DriftResult(subject: Peer.monit.name)
    guard let monit = requireTool("monit", package: "monit", failures: &result.failures) else { return result }
    guard let sandbox = freshSandbox("bench-monit", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    var daemon: PeerDaemon?
    defer { daemon?.stop() }
    do {
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
        let output = work + "/monit.out"
        let follower = try LineFollower(path: output)
        let config = sandbox.hostPath(SeedSandbox.configPath)
        // Ready at the first cycle's end: a second check, listed after the config's, on a file that does not
        // exist, runs the one-shot with `ready`; by then Monit has the config's first checksum. No sleeping.
        daemon = try startMonit(
            monit,
            work: work,
            checks: """
                check file upload-service-conf with path \(config)
                  if changed checksum then exec "\(monitOneShot(data: "$MONIT_SERVICE", output: output))"
                check file first-cycle with path \(work)/first-cycle
                  if does not exist then exec "\(monitOneShot(data: "ready", output: output))"
                """,
            follower: follower,
            ready: "ready"
        )
        var random = SplitMix64(seed: 0x6d6f_6e69_74)
        for flip in flips {
            pause(milliseconds: Int(random.next(below: 1_000)))
            result.doubled += follower.drain().count
            result.expected += 1
            let start = Clock.monotonicNanoseconds()
            try flip.apply(to: sandbox)
            if let (_, at) = follower.next(timeoutMilliseconds: monitMissTimeoutMilliseconds) {
                result.latencies.append((flip, at - start))
            } else {
                result.missed += 1
            }
        }
        result.doubled += follower.drain().count
    } catch {
        result.failures.append("monit: \(error.description)")
    }
    return result
}

/// Process death against Monit: `check process upload-service matching "^SANDBOX/usr/local/bin/upload-service"`
/// (anchored on the sandbox's stand-in, so that nothing else on the machine matches), `if does not exist then
/// exec` the one-shot (`down`), `else if succeeded then exec` it too (`up`: Monit has seen the new stand-in,
/// so the next check can find it gone). Per trial: a fresh stand-in, its `up` line, a random 0–1 s pause,
/// SIGKILL, reaped at once (Monit reads /proc, where a zombie still exists; a service's parent reaps at once),
/// and its `down` line.
func runMonitDeath(trials: Int, seed: UInt64) -> DeathResult {
    var result = DeathResult(subject: DeathSubject.monit.name)
    guard let monit = requireTool("monit", package: "monit", failures: &result.failures) else { return result }
    guard let sandbox = freshSandbox("bench-death-monit", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    var daemon: PeerDaemon?
    defer { daemon?.stop() }
    do {
        try sandbox.makeDirectories("/bench")
        try sandbox.makeDirectories("/usr/local/bin")
        let work = sandbox.hostPath("/bench")
        let standIn = sandbox.hostPath(uploadServicePath)
        try StandIn.install("/bin/sleep", at: standIn)
        let output = work + "/monit.out"
        let follower = try LineFollower(path: output)
        // Ready at the first cycle's `down`: no stand-in runs yet.
        daemon = try startMonit(
            monit,
            work: work,
            checks: """
                check process upload-service matching "^\(standIn)"
                  if does not exist then exec "\(monitOneShot(data: "down", output: output))"
                  else if succeeded then exec "\(monitOneShot(data: "up", output: output))"
                """,
            follower: follower,
            ready: "down"
        )
        var random = SplitMix64(seed: seed)
        for _ in 0..<trials {
            result.doubled += follower.drain().count
            result.expected += 1
            let child = try ChildProcess(executable: standIn, arguments: ["600"])
            var up = false
            while let (line, _) = follower.next(timeoutMilliseconds: monitMissTimeoutMilliseconds) {
                if line == "up" {
                    up = true
                    break
                }
                result.otherLines += 1
            }
            if !up {
                result.failures.append("monit: never saw stand-in \(child.pid) running")
                child.signal(SIGKILL)
                _ = child.wait(timeoutMilliseconds: 2_000)
                break
            }
            pause(milliseconds: Int(random.next(below: 1_000)))
            let start = Clock.monotonicNanoseconds()
            kill(child.pid, SIGKILL)
            _ = child.wait(timeoutMilliseconds: 5_000)
            var seen: UInt64?
            while let (line, at) = follower.next(timeoutMilliseconds: monitMissTimeoutMilliseconds) {
                if line == "down" {
                    seen = at
                    break
                }
                result.otherLines += 1
            }
            if let seen { result.latencies.append(seen - start) } else { result.missed += 1 }
        }
    } catch {
        result.failures.append("monit: \(error.description)")
    }
    return result
}
