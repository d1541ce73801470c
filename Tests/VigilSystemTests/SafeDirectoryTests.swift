import SystemPackage
import Testing
import VigilTestSupport

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `SafeDirectory` on real trees: directories opened and created without following a planted symlink or
/// leaving the base, renames that never replace, files created only where nothing is.
@Suite struct SafeDirectoryTests {
    func expectErrno(
        _ expected: Errno,
        _ body: () throws -> Void,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            try body()
            Issue.record("expected \(expected), got success", sourceLocation: sourceLocation)
        } catch {
            #expect(error as? Errno == expected, sourceLocation: sourceLocation)
        }
    }

    @Test func directoriesAreOpenedWithoutFollowingSymlinksOrLeavingTheBase() throws {
        let tree = TempTree("safedir-open")
        defer { tree.remove() }
        let decoy = TempTree("safedir-decoy")
        defer { decoy.remove() }
        tree.makeDirectory("var/log/app")
        tree.symlink("var/log/archive", to: decoy.root)
        tree.symlink("var/linked", to: tree.path("var/log"))
        let root = try SafeDirectory.openTrusted(tree.root)
        defer { close(root) }
        let app = try SafeDirectory.open("var/log/app", beneath: root)
        close(app)
        // A symlink as the last component, or on the way: ELOOP (not ENOTDIR), never followed.
        expectErrno(.tooManySymbolicLinkLevels) { close(try SafeDirectory.open("var/log/archive", beneath: root)) }
        expectErrno(.tooManySymbolicLinkLevels) { close(try SafeDirectory.open("var/linked/app", beneath: root)) }
        // `..` out of the base, and absolute paths: refused.
        let log = try SafeDirectory.open("var/log", beneath: root)
        defer { close(log) }
        expectErrno(.improperLink) { close(try SafeDirectory.open("../../..", beneath: log)) }
        expectErrno(.improperLink) { close(try SafeDirectory.open("/etc", beneath: log)) }
        // make: a symlink in the way is refused and nothing is created behind it.
        expectErrno(.tooManySymbolicLinkLevels) {
            close(try SafeDirectory.make("var/log/archive/new", beneath: root, mode: 0o750, owner: nil, group: nil).0)
        }
        #expect(access(decoy.path("new"), F_OK) != 0)
    }

    @Test func makeCreatesTheLastDirectoryWithItsModeAndOwner() throws {
        let tree = TempTree("safedir-make")
        defer { tree.remove() }
        let root = try SafeDirectory.openTrusted(tree.root)
        defer { close(root) }
        let made = try SafeDirectory.make("var/log/archive", beneath: root, mode: 0o750, owner: 1234, group: 1235)
        close(made.descriptor)
        #expect(made.created)
        var info = stat()
        #expect(lstat(tree.path("var/log/archive"), &info) == 0)
        #expect(info.st_mode & 0o7777 == 0o750 && info.st_uid == 1234 && info.st_gid == 1235)
        #expect(lstat(tree.path("var/log"), &info) == 0 && info.st_uid == 0)
        // Again: opened, not created, its attributes left as they are.
        let again = try SafeDirectory.make("var/log/archive", beneath: root, mode: 0o700, owner: nil, group: nil)
        close(again.descriptor)
        #expect(!again.created)
        #expect(lstat(tree.path("var/log/archive"), &info) == 0 && info.st_mode & 0o7777 == 0o750)
    }

    @Test func renamesNeverReplaceAndCreationNeverFollows() throws {
        let tree = TempTree("safedir-rename")
        defer { tree.remove() }
        tree.makeDirectory("logs")
        tree.write("logs/app.log", "new\n")
        tree.write("logs/app.log-1", "old\n")
        tree.write("outside", "secret\n", mode: 0o600)
        tree.symlink("logs/link", to: tree.path("outside"))
        let logs = try SafeDirectory.openTrusted(tree.path("logs"))
        defer { close(logs) }
        expectErrno(.fileExists) {
            try SafeDirectory.renameWithoutReplacing("app.log", in: logs, to: "app.log-1", in: logs)
        }
        #expect(tree.read("logs/app.log-1") == "old\n" && tree.read("logs/app.log") == "new\n")
        try SafeDirectory.renameWithoutReplacing("app.log", in: logs, to: "app.log-2", in: logs)
        #expect(tree.read("logs/app.log-2") == "new\n" && tree.read("logs/app.log") == nil)
        // O_EXCL | O_NOFOLLOW: a planted link is EEXIST, its target untouched; opening it for reading is ELOOP.
        expectErrno(.fileExists) { close(try SafeDirectory.createFile("link", in: logs)) }
        expectErrno(.tooManySymbolicLinkLevels) { close(try SafeDirectory.openFile("link", in: logs, flags: O_RDONLY)) }
        #expect(tree.read("outside") == "secret\n")
        let status = try SafeDirectory.status("link", in: logs)
        #expect(status.mode & UInt32(S_IFMT) == UInt32(S_IFLNK))
        // copy: the whole file, into a new one.
        let input = try SafeDirectory.openFile("app.log-2", in: logs, flags: O_RDONLY)
        defer { close(input) }
        let output = try SafeDirectory.createFile("copy", in: logs)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { buffer.deallocate() }
        #expect(try SafeDirectory.copy(from: input, to: output, buffer: buffer) == 4)
        close(output)
        #expect(tree.read("logs/copy") == "new\n")
        #expect(try SafeDirectory.names(in: logs).sorted() == ["app.log-1", "app.log-2", "copy", "link"])
    }
}
