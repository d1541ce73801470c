import Foundation
import Testing
import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil status` against the built daemon: the socket's mode and group, hit counts going up as events
/// arrive (JSON and tables), and the errors when no daemon answers.
@Suite(
    .enabled(if: VigilBinary.exists, "build the vigil binary first (swift build), or set VIGIL_BINARY"),
    .timeLimit(.minutes(2))
)
struct StatusCommandTests {
    /// A group other than root's, so the chown is seen to happen.
    static let group: (name: String, gid: gid_t)? = {
        for name in ["adm", "daemon", "nogroup"] {
            if let entry = getgrnam(name) { return (name, entry.pointee.gr_gid) }
        }
        return nil
    }()

    /// The `hits` of `rule` in a `vigil status --json` answer.
    static func hits(_ json: String, rule: String) throws -> Int? {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        let rules = object?["rules"] as? [[String: Any]] ?? []
        return rules.first { $0["id"] as? String == rule }?["hits"] as? Int
    }

    @Test(.enabled(if: StatusCommandTests.group != nil, "no group adm, daemon or nogroup on this host"))
    func socketHasMode0660AndTheGroupAsked() throws {
        let group = try #require(Self.group)
        // The daemon has dropped CAP_CHOWN when it listens: the run directory is the group's, setgid, as the
        // unit's ExecStartPre makes /run/vigil (docs/metrics.md#status-socket).
        let observed = try ObservedDaemon(
            label: "status-socket",
            extraArguments: ["--status-group", group.name],
            prepare: { run in
                #expect(chown(run, uid_t.max, group.gid) == 0)
                #expect(chmod(run, 0o2750) == 0)
            }
        )
        defer { observed.stop() }
        var info = stat()
        #expect(lstat(observed.socket, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o7777 == 0o660, "mode \(String(info.st_mode & 0o7777, radix: 8))")
        #expect(info.st_gid == group.gid)
    }

    @Test func hitCountGoesUpAsEventsArrive() throws {
        let observed = try ObservedDaemon(label: "status-hits")
        defer { observed.stop() }
        let first = try VigilBinary.run(["status", "--socket", observed.socket, "--json"])
        #expect(first.code == 0, "\(first)")
        #expect(try Self.hits(first.out, rule: "failed-login") == 0)

        var seen = 0
        for round in 1...3 {
            observed.appendFailedLogins(2, from: round * 10)
            // A hit is counted before its alert line is written: once the lines are in, so is the count.
            #expect(observed.waitForAlerts(round * 2), "\(observed.daemon.log())")
            let result = try VigilBinary.run(["status", "--socket", observed.socket, "--json"])
            seen = try Self.hits(result.out, rule: "failed-login") ?? -1
            #expect(seen == round * 2, "hits are \(seen) after round \(round)")
        }

        let table = try VigilBinary.run(["status", "--socket", observed.socket])
        #expect(table.code == 0, "\(table)")
        let row = table.out.split(separator: "\n").first { $0.contains("failed-login") && $0.contains(" log ") }
        #expect(row?.contains(" 6  ") == true, "\(table.out)")
        for heading in ["SOURCES", "RULES (most recent first)", "FIRING (0)", "RECENT ALERTS (6", "LOSSES"] {
            #expect(table.out.contains(heading), "no \(heading) in:\n\(table.out)")
        }
        #expect(table.out.contains("Failed password for user31"), "the last alert is listed:\n\(table.out)")

        // The daemon's JSON is whole: every part there, parsed by Foundation.
        let json = try VigilBinary.run(["status", "--socket", observed.socket, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        for key in [
            "version", "uptime_seconds", "sources", "watches", "rules", "firing", "recent_alerts", "losses", "sinks",
        ] {
            #expect(object[key] != nil, "no \(key)")
        }
        #expect((object["recent_alerts"] as? [Any])?.count == 6)
    }

    /// A socket file left by a daemon killed with SIGKILL (nobody accepts on it) is replaced; the endpoints
    /// run on their own named thread.
    @Test func staleSocketIsReplacedAndTheThreadIsNamed() throws {
        let observed = try ObservedDaemon(label: "status-stale") { run in
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let path = Array((run + "/status.sock").utf8)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            #expect(bound == 0)
            close(fd)  // the file stays, with no one behind it
        }
        defer { observed.stop() }
        let result = try VigilBinary.run(["status", "--socket", observed.socket, "--json"])
        #expect(result.code == 0, "\(result)\n\(observed.daemon.log())")
        let tasks = "/proc/\(observed.daemon.process.pid)/task"
        let names = try #require(try? FileManager.default.contentsOfDirectory(atPath: tasks)).compactMap {
            ProcFile.readText("\(tasks)/\($0)/comm")
        }
        #expect(names.contains("vigil-observe\n"), "\(names)")
    }

    @Test func noDaemonIsAClearErrorAndExitOne() throws {
        let dir = TempDirectory("status-none")
        defer { dir.remove() }
        let result = try VigilBinary.run(["status", "--socket", dir.path + "/status.sock"])
        #expect(result.code == 1)
        #expect(
            result.err.contains(
                "vigil status: no daemon is listening on \(dir.path)/status.sock (is vigil running? is --status-socket set differently?)"
            ),
            "\(result.err)"
        )
    }
}
