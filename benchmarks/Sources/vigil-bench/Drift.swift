import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// How a flip saves the config.
enum WriteMethod: String, CaseIterable {
    /// open(O_TRUNC), write, close, as `echo … >` does (`SeedSandbox.write`).
    case inPlace = "in place"
    /// A temporary file renamed over the config, as `sed -i`, `install` and many editors do.
    case replacing = "temp + rename"
    /// vim's default: rename the original to `file~`, write a new file, delete the backup.
    case vim = "vim-style"
}

/// One change of `verify_ssl`: to false (`insecure`) or back to true.
struct Flip {
    let index: Int
    let insecure: Bool
    let method: WriteMethod

    /// Flips alternate false/true; each false/true pair uses one method: of every 8 pairs, 4 in place,
    /// 3 temp + rename, 1 vim-style (half in place, half editor-style), so every method flips both ways.
    static func plan(count: Int) -> [Flip] {
        (0..<count).map { index in
            let method: WriteMethod
            switch (index / 2) % 8 {
            case 0...3: method = .inPlace
            case 4...6: method = .replacing
            default: method = .vim
            }
            return Flip(index: index, insecure: index % 2 == 0, method: method)
        }
    }

    /// Saves the config this flip's way.
    func apply(to sandbox: SeedSandbox) throws(HarnessError) {
        let content = insecure ? SeedSandbox.insecureConfig : SeedSandbox.fixedConfig
        switch method {
        case .inPlace: try sandbox.write(SeedSandbox.configPath, content)
        case .replacing: try sandbox.writeReplacing(SeedSandbox.configPath, content)
        case .vim: try sandbox.writeLikeVim(SeedSandbox.configPath, content)
        }
    }
}

/// What one subject (Vigil or a peer) did over the flips.
struct DriftResult {
    let subject: String
    /// One latency (write → line seen, ns) per flip that was expected to produce a line and did.
    var latencies: [(flip: Flip, nanoseconds: UInt64)] = []
    /// Flips that were expected to produce a line.
    var expected = 0
    /// Expected lines that did not come within the timeout.
    var missed = 0
    /// Matching lines beyond one per flip (or with the wrong state), including any before the final cookie.
    var doubled = 0
    /// Lines about something else (another rule, the temporary file of a rename, a probe).
    var otherLines = 0
    /// Fatal problems (no READY, the cookie never came, a write failed).
    var failures: [String] = []

    var detectedEverything: Bool { missed == 0 && doubled == 0 && failures.isEmpty }

    /// Adds another round's figures of the same subject.
    mutating func merge(_ other: DriftResult) {
        latencies += other.latencies
        expected += other.expected
        missed += other.missed
        doubled += other.doubled
        otherLines += other.otherLines
        failures += other.failures
    }

    func samples(_ include: (Flip) -> Bool = { _ in true }) -> [UInt64] {
        latencies.filter { include($0.flip) }.map(\.nanoseconds)
    }
}

/// Milliseconds a flip's line may take before it counts as missed.
let missTimeoutMilliseconds = 2_000

/// The rule the flips exercise.
let sslRule = "upload-ssl-verification-disabled"

/// Runs the flips against the release `vigil run` on a fresh seed sandbox: write → alert line in `--alerts FILE`.
func runVigilDrift(vigil: String, rules: String, flips: [Flip]) -> DriftResult {
    var result = DriftResult(subject: "vigil")
    guard let sandbox = freshSandbox("bench-vigil", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    do {
        // The harness's own files live in the sandbox, in a directory no rule watches.
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
        let alerts = work + "/alerts.jsonl"
        let follower = try LineFollower(path: alerts)
        let daemon = try DaemonProcess(
            executable: vigil,
            arguments: ["--rules", rules, "--root", sandbox.root, "--alerts", alerts],
            workDirectory: work
        )
        defer { daemon.stop() }
        result.otherLines += follower.drain().count

        /// Classifies a line: true when it is the flip's alert.
        func judge(_ line: String, expectFiring: Bool) -> Bool {
            guard JSONField.string(line, "rule") == sslRule else {
                result.otherLines += 1
                return false
            }
            if JSONField.string(line, "state") == (expectFiring ? "firing" : "resolved") { return true }
            result.doubled += 1
            return false
        }

        for flip in flips {
            for line in follower.drain() { _ = judge(line, expectFiring: !flip.insecure) }
            result.expected += 1
            let start = Clock.monotonicNanoseconds()
            try flip.apply(to: sandbox)
            var seen: UInt64?
            while let (line, at) = follower.next(timeoutMilliseconds: missTimeoutMilliseconds) {
                if judge(line, expectFiring: flip.insecure) {
                    seen = at
                    break
                }
            }
            if let seen { result.latencies.append((flip, seen - start)) } else { result.missed += 1 }
        }

        // Cookie: one more flip, in place. Vigil handles events in order, so once its alert is in the file
        // every earlier alert is too; a matching line before it is an extra.
        let cookie = Flip(index: flips.count, insecure: !(flips.last?.insecure ?? false), method: .inPlace)
        try cookie.apply(to: sandbox)
        var cookieSeen = false
        while let (line, _) = follower.next(timeoutMilliseconds: 5_000) {
            if judge(line, expectFiring: cookie.insecure) {
                cookieSeen = true
                break
            }
        }
        if !cookieSeen { result.failures.append("vigil: the cookie flip's alert never came") }
        for line in follower.drain() { _ = judge(line, expectFiring: !cookie.insecure) }
    } catch {
        result.failures.append("vigil: \(error.description)")
    }
    return result
}

/// A shell pipeline doing (part of) Vigil's job, for comparison.
enum Peer: CaseIterable {
    /// (a) inotifywait | grep on the name: notices the write, never reads the file. The shell's floor.
    case notice
    /// (b) inotifywait | while read; grep -Eq on the content && echo: the same job as Vigil's rule.
    case contentCheck

    var name: String {
        switch self {
        case .notice: "peer (a) inotifywait + grep on the name"
        case .contentCheck: "peer (b) inotifywait + grep -Eq on the content"
        }
    }

    func command(directory: String, output: String) -> String {
        let watch = "inotifywait -m -q -e close_write,moved_to --format '%w%f' '\(directory)'"
        switch self {
        case .notice:
            return "\(watch) | grep --line-buffered upload-service.conf >> '\(output)'"
        case .contentCheck:
            return
                "\(watch) | while read -r f; do grep -Eq '^[[:space:]]*verify_ssl[[:space:]]*=[[:space:]]*(false|no|off|0)' \"$f\" && echo \"verify_ssl false in $f\" >> '\(output)'; done"
        }
    }

    /// Whether this peer writes a line for the flip: (a) for every save, (b) only when the file says false.
    func reports(_ flip: Flip) -> Bool { self == .notice || flip.insecure }

    /// The line this peer writes for the config itself.
    func targetLine(directory: String) -> String {
        self == .notice ? "\(directory)/upload-service.conf" : "verify_ssl false in \(directory)/upload-service.conf"
    }

    /// What every probe line starts with.
    func probeLinePrefix(directory: String) -> String {
        self == .notice ? "\(directory)/upload-service.conf.probe-" : "verify_ssl false in \(directory)/probe-"
    }

    /// A probe file's name and content, and the line the peer writes for it.
    func probe(_ k: Int, directory: String) -> (name: String, content: String, line: String) {
        switch self {
        case .notice:
            let name = "upload-service.conf.probe-\(k)"
            return (name, "probe\n", "\(directory)/\(name)")
        case .contentCheck:
            let name = "probe-\(k).conf"
            return (name, "verify_ssl = false\n", "verify_ssl false in \(directory)/\(name)")
        }
    }
}

/// Runs the flips against a shell peer on its own fresh sandbox.
func runPeerDrift(_ peer: Peer, flips: [Flip]) -> DriftResult {
    var result = DriftResult(subject: peer.name)
    guard let sandbox = freshSandbox("bench-peer", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    var process: ChildProcess?
    defer { stopProcessGroup(process) }
    do {
        try sandbox.makeDirectories("/bench")
        let work = sandbox.hostPath("/bench")
        let directory = sandbox.hostPath("/etc/analytics")
        let output = work + "/peer.out"
        let follower = try LineFollower(path: output)
        process = try ChildProcess(
            executable: "/usr/bin/setsid",
            arguments: ["/bin/sh", "-c", peer.command(directory: directory, output: output)],
            standardError: work + "/peer.err"
        )
        let target = peer.targetLine(directory: directory)
        var probes = 0

        func isProbe(_ line: String) -> Bool { line.hasPrefix(peer.probeLinePrefix(directory: directory)) }
        /// Classifies a line: true when it is the config's line.
        func judge(_ line: String) -> Bool {
            if line == target { return true }
            if !isProbe(line) { result.otherLines += 1 }
            return false
        }
        /// Writes a probe file and waits for its line; lines for the config seen meanwhile are extras.
        func barrier(timeoutMilliseconds: Int) throws(HarnessError) -> Bool {
            let probe = peer.probe(probes, directory: directory)
            probes += 1
            try sandbox.write("/etc/analytics/" + probe.name, probe.content)
            while let (line, _) = follower.next(timeoutMilliseconds: timeoutMilliseconds) {
                if line == probe.line { return true }
                if judge(line) { result.doubled += 1 }
            }
            return false
        }

        // Ready when a probe's line comes back: inotifywait has placed its watch. No sleeping.
        var ready = false
        for _ in 0..<80 where !ready {
            ready = try barrier(timeoutMilliseconds: 250)
        }
        guard ready else {
            result.failures.append(
                "\(peer.name): no probe line within 20 s; its stderr: \(ProcFile.readText(work + "/peer.err") ?? "")"
            )
            return result
        }
        result.doubled = 0
        result.otherLines = 0

        for flip in flips {
            for line in follower.drain() where judge(line) { result.doubled += 1 }
            let start = Clock.monotonicNanoseconds()
            try flip.apply(to: sandbox)
            if peer.reports(flip) {
                result.expected += 1
                var seen: UInt64?
                while let (line, at) = follower.next(timeoutMilliseconds: missTimeoutMilliseconds) {
                    if judge(line) {
                        seen = at
                        break
                    }
                }
                if let seen { result.latencies.append((flip, seen - start)) } else { result.missed += 1 }
            } else if !(try barrier(timeoutMilliseconds: 5_000)) {
                // The peer handles events one at a time, in order: once the probe's line is out, its verdict
                // on this flip is too (nothing, for a flip back to true).
                result.failures.append("\(peer.name): a probe after flip \(flip.index) never came back")
                break
            }
        }
        if !(try barrier(timeoutMilliseconds: 5_000)) {
            result.failures.append("\(peer.name): the final probe never came back")
        }
    } catch {
        result.failures.append("\(peer.name): \(error.description)")
    }
    return result
}
