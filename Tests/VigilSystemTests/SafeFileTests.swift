import SystemPackage
import Testing
import VigilTestSupport

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `SafeFile` on real trees: a mode and owner change through the descriptor, and planted symlinks, `..`
/// and absolute paths refused, leaving a decoy (standing in for /etc/shadow) untouched.
@Suite struct SafeFileTests {
    func openDirectory(_ path: String) -> CInt {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        precondition(fd >= 0)
        return fd
    }

    func mode(_ path: String) -> UInt32 {
        var info = stat()
        precondition(lstat(path, &info) == 0)
        return UInt32(info.st_mode) & 0o7777
    }

    @Test func modeAndOwnerChangeThroughTheDescriptor() throws {
        let tree = TempTree("safefile")
        defer { tree.remove() }
        tree.makeDirectory("logs/alerts")
        tree.write("logs/alerts/a.log", "x\n", mode: 0o644)
        let root = openDirectory(tree.path("logs"))
        defer { close(root) }
        let handle = try SafeFile.open("alerts/a.log", beneath: root)
        defer { handle.close() }
        #expect(handle.isRegularFile && handle.links == 1)
        try SafeFile.changeMode(handle, to: 0o600)
        #expect(mode(tree.path("logs/alerts/a.log")) == 0o600)
        try SafeFile.changeOwner(handle, owner: 65534, group: 65534)
        var info = stat()
        #expect(stat(tree.path("logs/alerts/a.log"), &info) == 0 && info.st_uid == 65534 && info.st_gid == 65534)
        // The directory itself, too.
        let directory = try SafeFile.open("alerts", beneath: root)
        defer { directory.close() }
        #expect(directory.isDirectory)
        try SafeFile.changeMode(directory, to: 0o700)
        #expect(mode(tree.path("logs/alerts")) == 0o700)
    }

    @Test func plantedSymlinksAndEscapesAreRefusedAndTheDecoyIsUntouched() throws {
        let tree = TempTree("safefile-decoy")
        defer { tree.remove() }
        tree.makeDirectory("logs/sub")
        tree.makeDirectory("etc")
        tree.write("etc/shadow", "root:secret\n", mode: 0o640)
        // A symlink as the last component, one in the middle of the path, and an escape by '..'.
        tree.symlink("logs/evil.log", to: tree.path("etc/shadow"))
        tree.symlink("logs/link-dir", to: tree.path("etc"))
        let root = openDirectory(tree.path("logs"))
        defer { close(root) }
        for path in ["evil.log", "link-dir/shadow", "../etc/shadow", "sub/../../etc/shadow", tree.path("etc/shadow")] {
            #expect(throws: Errno.self, "\(path)") { _ = try SafeFile.open(path, beneath: root) }
        }
        #expect(mode(tree.path("etc/shadow")) == 0o640)
    }
}
