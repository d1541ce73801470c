import Testing
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `vigil run` with a rotate rule, from outside: the daemon keeps only the capabilities its rules need,
/// and those must be enough to rotate and compress a log another user owns (a rule without `create:`
/// still gives the `.gz` the log's owner, which needs CAP_CHOWN).
@Suite(
    .enabled(if: VigilBinary.exists && getuid() == 0, "needs root and the built binary"),
    .timeLimit(.minutes(1))
)
struct RotationCommandLineTests {
    @Test func aLogOfAnotherUserIsRotatedAndCompressedWithTheCapabilitiesVigilKeeps() throws {
        let tree = TempTree("rotcaps")
        defer { tree.remove() }
        tree.makeDirectory("etc")
        tree.write("etc/passwd", "root:x:0:0::/root:/bin/sh\nanalytics:x:1001:1001::/:/bin/sh\n")
        tree.write("etc/group", "root:x:0:\nanalytics:x:1001:\nlog-readers:x:1002:\n")
        tree.makeDirectory("var/log/archive")
        tree.makeDirectory("var/log/analytics/unified")
        let line = "2025-04-13 07:20:00 UPLOAD INFO [Uploader] batch uploaded 512 records in 143 ms\n"
        tree.write("var/log/analytics/unified/big.log", String(repeating: line, count: 30_000), mode: 0o640)
        chown(tree.path("var/log/analytics/unified/big.log"), 1001, 1002)
        tree.write(
            "rules.yaml",
            """
            - rule: big-log-rotation
              rotate: /var/log/analytics/unified/big.log
              size: 1M
              keep: 2
              compress: true
              olddir: /var/log/archive

            """
        )
        tree.makeDirectory("run")
        let alerts = tree.path("alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules.yaml"), "--root", tree.root, "--alerts", alerts],
            workDirectory: tree.path("run")
        )
        defer { daemon.stop() }
        var rotated: String?
        while rotated == nil, let next = follower.next(timeoutMilliseconds: 10_000)?.line {
            #expect(JSONField.string(next, "kind") != "log.rotation_failed", "\(next)\n\(daemon.log())")
            if JSONField.string(next, "kind") == "log.rotated" { rotated = next }
        }
        let alert = try #require(rotated, "\(daemon.log())")
        #expect(!alert.contains("compression failed"), "\(alert)")
        #expect(daemon.log().contains("Capabilities kept:"), "\(daemon.log())")
        let gz = tree.path("var/log/archive/big.log-" + Self.today() + ".gz")
        var info = stat()
        #expect(stat(gz, &info) == 0 && info.st_uid == 1001 && info.st_gid == 1002, "\(gz)")
    }

    static func today() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return String(format4: parts.tm_year + 1900) + String(format2d: parts.tm_mon + 1)
            + String(format2d: parts.tm_mday)
    }
}

extension String {
    fileprivate init(format4 value: Int32) { self = String(value) }
    fileprivate init(format2d value: Int32) { self = value < 10 ? "0\(value)" : String(value) }
}
