import SystemPackage
import Testing
import VigilTestSupport

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `FileSystemUsage` on a 1 MiB tmpfs mounted for the test (under a directory whose name has a space, as
/// mountinfo escapes it), checked against `df`, and the mountinfo parsing on hand-made lines.
@Suite struct FileSystemUsageTests {
    @Test(.timeLimit(.minutes(1)))
    func aSmallTmpfsFillsAndEmptiesAsDfSays() throws {
        let tree = TempTree("fs usage")
        defer { tree.remove() }
        tree.makeDirectory("mount point")
        let point = try #require(realPath(tree.path("mount point")))
        guard mount("tmpfs", point, "tmpfs", 0, "size=1m") == 0 else {
            let code = errno
            if code == EPERM {
                try Test.cancel("mounting a 1 MiB tmpfs returned EPERM: this test needs root (CAP_SYS_ADMIN)")
            }
            Issue.record("mounting a 1 MiB tmpfs on '\(point)' failed: \(String(cString: strerror(code)))")
            return
        }
        defer { umount2(point, Int32(MNT_DETACH)) }

        let empty = try FileSystemUsage.of(point).get()
        #expect(empty.mountPoint == point, "a mount point with a space, written \\040 in mountinfo")
        #expect(empty.totalBytes == 1024 * 1024)
        #expect(empty.usedPercent < 5)
        #expect(empty.availableBytes == empty.freeBytes, "tmpfs reserves nothing for root")
        var info = stat()
        #expect(stat(point, &info) == 0 && empty.device == UInt64(info.st_dev))
        #expect(try FileSystemUsage.of(tree.root).get().device != empty.device)

        tree.write("mount point/fill", String(repeating: "x", count: 900 * 1024))
        let full = try FileSystemUsage.of(tree.path("mount point/fill")).get()
        #expect(full.usedPercent > 85, "\(full)")
        #expect(full.mountPoint == point && full.device == empty.device)
        #expect(full.totalBytes - full.freeBytes >= 900 * 1024)
        let output = try Self.df(point, scratch: tree.path("df.out"))
        let df = try #require(output)
        #expect(df.size == full.totalBytes && df.used == full.totalBytes - full.freeBytes)
        #expect(df.available == full.availableBytes)

        tree.unlinkFile("mount point/fill")
        let emptied = try FileSystemUsage.of(point).get()
        #expect(emptied.usedPercent < 5 && emptied == empty)
    }

    @Test func theRootAndMissingPaths() throws {
        let root = try FileSystemUsage.of("/").get()
        #expect(root.mountPoint == "/" && root.totalBytes > 0 && root.totalBytes >= root.freeBytes)
        #expect(root.freeBytes >= root.availableBytes && (0...100).contains(root.usedPercent))
        // /proc is its own mount with no blocks: no percentage from a division by zero.
        let proc = try FileSystemUsage.of("/proc/self/status").get()
        #expect(proc.mountPoint == "/proc" && proc.totalBytes == 0 && proc.usedPercent == 0)
        #expect(FileSystemUsage.of("/nonexistent/vigil") == .failure(.noSuchFileOrDirectory))
    }

    @Test func mountInfoLines() {
        let lines = """
            22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
            30 22 0:26 / /proc rw,nosuid shared:5 - proc proc rw
            40 22 0:30 / /mnt/a\\040b rw shared:9 - tmpfs tmpfs rw
            41 22 0:31 / /mnt/a rw shared:10 - tmpfs tmpfs rw
            42 22 0:32 / /mnt/back\\134slash\\011tab rw - tmpfs tmpfs rw
            43 41 0:33 / /mnt/a rw - tmpfs tmpfs rw

            """
        let info = Array(lines.utf8)
        #expect(FileSystemUsage.mountPoint(of: "/mnt/a b/file", mountInfo: info) == "/mnt/a b")
        #expect(FileSystemUsage.mountPoint(of: "/mnt/a", mountInfo: info) == "/mnt/a")
        #expect(FileSystemUsage.mountPoint(of: "/mnt/ab", mountInfo: info) == "/", "a prefix of a name is no mount")
        #expect(FileSystemUsage.mountPoint(of: "/proc/1/stat", mountInfo: info) == "/proc")
        #expect(FileSystemUsage.mountPoint(of: "/mnt/back\\slash\ttab/x", mountInfo: info) == "/mnt/back\\slash\ttab")
        #expect(FileSystemUsage.mountPoint(of: "/etc", mountInfo: []) == nil)
        // Not an octal escape: kept as written.
        #expect(FileSystemUsage.unescape(Array("a\\9z\\04".utf8)[...]) == Array("a\\9z\\04".utf8))
    }

    private func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// `df -B1 --output=size,used,avail` of `path`, its output written to `scratch` and read back.
    private static func df(_ path: String, scratch: String) throws -> (size: UInt64, used: UInt64, available: UInt64)? {
        let child = try Spawn.start(
            "/bin/df",
            arguments: ["-B1", "--output=size,used,avail", path],
            streams: .separate(output: scratch, error: nil)
        )
        let status = try Spawn.wait(child)
        guard status == 0, let text = ProcFile.readText(scratch) else { return nil }
        let lines = text.split(separator: "\n")
        guard lines.count == 2 else { return nil }
        let numbers = lines[1].split(separator: " ").compactMap { UInt64($0) }
        guard numbers.count == 3 else { return nil }
        return (numbers[0], numbers[1], numbers[2])
    }
}
