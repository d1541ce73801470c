import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// Scenario "start-up scan at scale" (issue 5): a ruled tree of 100,000 files in 10,000 directories, 1 % of
// the files and directories drifted, then `vigil run`: time to READY=1 (vigil has walked and judged every
// entry, put the drifts right and watched every directory before it says READY), its memory, its watches,
// and every drift put right. Against what the seed does by hand on the same tree, `chown -R 1001:1002 DIR
// && chmod -R u=rwX,g=rX,o= DIR` (once, watching nothing afterwards). Both warm: the tree was just made.

/// One start of vigil on the tree.
struct StartupScanTrial {
    /// Spawn → READY=1 on the notify socket.
    var readyNanoseconds: UInt64 = 0
    /// vigil's own "ready in X ms" (daemon start: the walk and the watches, not the process start-up).
    var loggedMilliseconds: Double?
    /// "… over N watched directories" in the same line.
    var watches: Int?
    /// VmRSS and VmHWM (peak) right after READY.
    var rssKiB = 0
    var hwmKiB = 0
    /// Restored alerts written by READY and after.
    var restoredAlerts = 0
    /// Entries not right by stat right after READY, and after waiting for more alerts (10 s at most).
    var wrongAtReady = 0
    var wrongAfterWait = 0
    var wrongExample: String?
}

struct StartupScanResult {
    var files = 0
    var directories = 0
    var leafDirectories = 0
    var driftedFiles = 0
    var driftedDirectories = 0
    /// Harness time to make the tree.
    var createNanoseconds: UInt64 = 0
    /// fs.inotify.max_user_watches as found, the watches every process holds then, and the value used.
    var watchLimitFound: Int?
    var watchesInUse = 0
    var watchLimitUsed: Int?
    var trials: [StartupScanTrial] = []
    /// `chown -R … && chmod -R …`: wall time, and entries still wrong after it.
    var peerNanoseconds: [UInt64] = []
    var peerWrong: [Int] = []
    var failures: [String] = []

    var detectedEverything: Bool {
        failures.isEmpty && !trials.isEmpty && trials.allSatisfy { $0.wrongAfterWait == 0 }
    }
}

enum StartupScan {
    static let filesPerDirectory = 10

    /// Drifts 1 % of the files (half to mode 0666, half to root:root) and 1 % of the directories (0755).
    static func drift(_ tree: PermissionTree) -> (files: Int, directories: Int) {
        var files = 0
        var directories = 0
        tree.files.withEachPath { index, path in
            switch index % 200 {
            case 50:
                chmod(path, 0o666)
                files += 1
            case 150:
                chown(path, 0, 0)
                files += 1
            default: break
            }
        }
        tree.directories.withEachPath { index, path in
            if index % 100 == 50 {
                chmod(path, 0o755)
                directories += 1
            }
        }
        return (files, directories)
    }

    /// Inotify watches every process holds now (`inotify wd:` lines of /proc/*/fdinfo/*).
    static func watchesInUse() -> Int {
        var count = 0
        guard let proc = opendir("/proc") else { return 0 }
        defer { closedir(proc) }
        while let entry = readdir(proc) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard Int(pid) != nil, let fds = opendir("/proc/\(pid)/fdinfo") else { continue }
            while let fd = readdir(fds) {
                let name = withUnsafeBytes(of: fd.pointee.d_name) {
                    String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                guard Int(name) != nil, let text = ProcFile.readText("/proc/\(pid)/fdinfo/\(name)")
                else { continue }
                count += text.split(separator: "\n").filter { $0.hasPrefix("inotify wd:") }.count
            }
            closedir(fds)
        }
        return count
    }

    static let watchLimitPath = "/proc/sys/fs/inotify/max_user_watches"

    /// Writes fs.inotify.max_user_watches (what `sysctl -w` does); true when it took.
    static func setWatchLimit(_ value: Int) -> Bool {
        (try? FileSaves.inPlace(watchLimitPath, "\(value)\n")) != nil && ProcFile.readInteger(watchLimitPath) == value
    }

    /// The number just before `suffix` in `line` ("… over 10105 watched directories").
    static func number(before suffix: String, in line: Substring) -> Int? {
        guard let range = line.firstRange(of: suffix) else { return nil }
        let head = line[..<range.lowerBound]
        return Int(head.split(separator: " ").last ?? "")
    }

    /// vigil's "ready in X ms" line: X, and the watched directories it names.
    static func parseReadyLine(_ log: String) -> (milliseconds: Double?, watches: Int?) {
        // The last: each start appends its log to the same file.
        guard let line = log.split(separator: "\n").last(where: { $0.contains(" ready in ") }),
            let range = line.firstRange(of: " ready in ")
        else { return (nil, nil) }
        let value = line[range.upperBound...].prefix(while: { $0.isNumber || $0 == "." })
        return (Double(value), number(before: " watched directories", in: line))
    }

    static func run(vigil: String, files: Int, leaves: Int, trials: Int) -> StartupScanResult {
        var result = StartupScanResult()
        guard let sandbox = freshSandbox("bench-scan", failures: &result.failures) else { return result }
        defer { sandbox.remove() }
        do {
            let createStart = Clock.monotonicNanoseconds()
            let tree = try PermissionTree(
                sandbox: sandbox,
                top: ruledTree + "/scan",
                leaves: leaves,
                filesPerDirectory: max(1, files / leaves)
            )
            result.createNanoseconds = Clock.monotonicNanoseconds() - createStart
            result.files = tree.files.count
            result.directories = tree.directories.count
            result.leafDirectories = leaves

            // vigil needs a watch per directory of the ruled tree (the seed's four, and this tree's).
            let found = ProcFile.readInteger(watchLimitPath)
            result.watchLimitFound = found
            result.watchesInUse = watchesInUse()
            let needed = result.watchesInUse + tree.directories.count + 8 + 8_192
            if let found, found < needed {
                guard setWatchLimit(needed) else {
                    throw HarnessError(
                        "fs.inotify.max_user_watches is \(found) and \(needed) are needed, and raising it failed (run as root, or sysctl -w fs.inotify.max_user_watches=\(needed))"
                    )
                }
                result.watchLimitUsed = needed
            } else {
                result.watchLimitUsed = found
            }
            defer { if let found, result.watchLimitUsed != found { _ = setWatchLimit(found) } }

            let hostTree = sandbox.hostPath(ruledTree)
            let peerCommand =
                "chown -R \(SeedSandbox.analyticsUser):\(SeedSandbox.logReadersGroup) '\(hostTree)' && chmod -R u=rwX,g=rX,o= '\(hostTree)'"
            for trial in 0..<trials {
                let drifted = drift(tree)
                result.driftedFiles = drifted.files
                result.driftedDirectories = drifted.directories
                var measured = StartupScanTrial()
                let (daemon, follower, start) = try startPermissionVigil(
                    vigil,
                    sandbox: sandbox,
                    alerts: "alerts-\(trial).jsonl",
                    readyTimeoutMilliseconds: 300_000
                )
                measured.readyNanoseconds = Clock.monotonicNanoseconds() - start
                let usage = ProcessUsage.read(daemon.process.pid)
                measured.rssKiB = usage?.rssKiB ?? 0
                measured.hwmKiB = usage?.hwmKiB ?? 0
                let wrong = tree.wrong()
                measured.wrongAtReady = wrong.files + wrong.directories
                measured.wrongAfterWait = measured.wrongAtReady
                measured.wrongExample = wrong.example
                func count(_ lines: [String]) {
                    measured.restoredAlerts +=
                        lines.filter { JSONField.string($0, "kind") == permissionsRestoredKind }.count
                }
                count(follower.drain())
                if measured.wrongAtReady > 0 {
                    // READY came before every drift was put right: wait for more alerts (10 s at most) and look again.
                    let deadline = Clock.monotonicNanoseconds() + 10_000_000_000
                    while Clock.monotonicNanoseconds() < deadline {
                        guard let (line, _) = follower.next(timeoutMilliseconds: 500) else { break }
                        count([line])
                    }
                    let again = tree.wrong()
                    measured.wrongAfterWait = again.files + again.directories
                    measured.wrongExample = again.example
                }
                let (milliseconds, watches) = parseReadyLine(daemon.log())
                measured.loggedMilliseconds = milliseconds
                measured.watches = watches
                daemon.stop(timeoutMilliseconds: 30_000)
                if measured.wrongAfterWait > 0 {
                    result.failures.append(
                        "vigil, start \(trial + 1): \(measured.wrongAfterWait) entries still wrong after READY and 10 s more, such as '\(measured.wrongExample ?? "?")'"
                    )
                }
                result.trials.append(measured)

                // The seed's way, on the same tree drifted the same way.
                _ = drift(tree)
                let peerStart = Clock.monotonicNanoseconds()
                let peer = try ChildProcess(
                    executable: "/bin/sh",
                    arguments: ["-c", peerCommand],
                    standardError: sandbox.hostPath("/bench/peer.err")
                )
                guard let status = peer.wait(timeoutMilliseconds: 600_000), ChildProcess.exitCode(status) == 0 else {
                    throw HarnessError(
                        "'\(peerCommand)' failed: \(ProcFile.readText(sandbox.hostPath("/bench/peer.err")) ?? "")"
                    )
                }
                result.peerNanoseconds.append(Clock.monotonicNanoseconds() - peerStart)
                let peerWrong = tree.wrong()
                result.peerWrong.append(peerWrong.files + peerWrong.directories)
            }
        } catch {
            result.failures.append("start-up scan: \(error)")
        }
        return result
    }
}
