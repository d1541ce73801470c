import Testing
import VigilTestSupport

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `Gzip.compress` on real files, checked with the real `gzip`: byte-identical round trips, the header gzip
/// would write, the destination's mode, owner and times, and what is left (or not) after each failure: an
/// existing destination, a symlink, a full tmpfs, a source that grows or is replaced meanwhile.
@Suite(.timeLimit(.minutes(1)))
struct GzipTests {
    static let gzipBinary: String? = ["/usr/bin/gzip", "/bin/gzip"].first { access($0, X_OK) == 0 }
    static let mtime = 1_700_000_000
    static let atime = 1_700_000_500

    // MARK: Helpers

    func openDirectory(_ path: String) -> CInt {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        precondition(fd >= 0, "open \(path): errno \(errno)")
        return fd
    }

    func readBytes(_ path: String) -> [UInt8]? { fileBytes(path) }

    /// Writes `bytes` to a new file and sets its atime and mtime to `atime` and `mtime`.
    func writeBytes(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "create \(path): errno \(errno)")
        bytes.withUnsafeBytes { do { try Syscall.writeAll(fd, $0) } catch { preconditionFailure("\(error)") } }
        var times = [timespec(tv_sec: Self.atime, tv_nsec: 0), timespec(tv_sec: Self.mtime, tv_nsec: 0)]
        precondition(futimens(fd, &times) == 0)
        close(fd)
    }

    func info(_ path: String) -> stat? {
        var result = stat()
        return lstat(path, &result) == 0 ? result : nil
    }

    func names(_ directory: String) -> [String] {
        guard let stream = opendir(directory) else { return ["(cannot open \(directory))"] }
        defer { closedir(stream) }
        var out: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    /// Runs gzip with `arguments` in `directory`, standard output to `output` (created anew); the exit code.
    func gzip(_ arguments: [String], in directory: String, output: String? = nil) throws -> Int32 {
        let binary = try #require(Self.gzipBinary, "the gzip binary is needed (apt-get install gzip)")
        if let output { unlink(output) }
        let pid = try Spawn.start(
            binary,
            arguments: arguments,
            workingDirectory: directory,
            streams: .separate(output: output ?? "/dev/null", error: nil)
        )
        let status = try Spawn.wait(pid)
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Deterministic bytes, `count` of them, in blocks: log-like text, every byte value 0x00-0xFF in runs
    /// and counted up, and xorshift noise. Made once (3 MiB) and shared: tests take a prefix.
    static let mixed: [UInt8] = {
        let count = 3 << 20
        var text: [UInt8] = []
        for line in 0..<40 {
            text += Array("Nov 27 12:00:01 host svc[1234]: INFO processed batch \(line) in 143 ms\n".utf8)
        }
        for value in 0...255 { text += [UInt8](repeating: UInt8(value), count: value % 7 + 1) }
        text += (0...255).map { UInt8($0) }
        let block = text + noise.prefix(512)
        var out: [UInt8] = []
        out.reserveCapacity(count + block.count)
        var offset = 0
        while out.count < count {
            out += block
            // Vary the noise from block to block, so the stream is not one repeated block.
            out += noise[offset..<offset + 64]
            offset = (offset + 4099) % (noise.count - 64)
        }
        return Array(out.prefix(count))
    }()

    /// 4 MiB of incompressible bytes (xorshift64, eight bytes per step), made once.
    static let noise: [UInt8] = {
        let count = 4 << 20
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            for offset in stride(from: 0, to: count, by: 8) {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                raw.storeBytes(of: state, toByteOffset: offset, as: UInt64.self)
            }
            initialized = count
        }
    }()

    /// The name and mtime in a gzip header (RFC 1952 section 2.3), read from the file itself.
    func header(_ path: String) -> (name: String, mtime: Int, os: UInt8)? {
        guard let bytes = readBytes(path), bytes.count > 10, bytes[0] == 0x1F, bytes[1] == 0x8B, bytes[2] == 8
        else { return nil }
        let flags = bytes[3]
        let mtime = (0..<4).reduce(0) { $0 | Int(bytes[4 + $1]) << (8 * $1) }
        guard flags & 0x08 != 0, flags & 0x04 == 0 else { return nil }  // FNAME, and no FEXTRA before it
        let name = bytes[10...].prefix { $0 != 0 }
        return (String(decoding: name, as: UTF8.self), mtime, bytes[9])
    }

    // MARK: Round trips

    @Test(arguments: [true, false])
    func mixedFileRoundTripsThroughGzip(unnamedTemporary: Bool) throws {
        let tree = TempTree("gzip")
        defer { tree.remove() }
        tree.makeDirectory("logs")
        tree.makeDirectory("archive")
        let content = Self.mixed
        writeBytes(tree.path("logs/app.log.1"), content)
        let logs = openDirectory(tree.path("logs"))
        defer { close(logs) }
        let archive = openDirectory(tree.path("archive"))
        defer { close(archive) }
        var hooks = Gzip.Hooks()
        hooks.unnamedTemporary = unnamedTemporary
        // chown to another user needs root (CAP_CHOWN); without it the destination stays ours.
        let root = geteuid() == 0
        let result = try Gzip.compress(
            sourceName: "app.log.1",
            in: logs,
            to: "app.log.1.gz",
            in: archive,
            level: 6,
            mode: 0o640,
            owner: root ? 1234 : nil,
            group: root ? 1235 : nil,
            removeSource: true,
            hooks: hooks
        )

        let gz = tree.path("archive/app.log.1.gz")
        let written = try #require(info(gz))
        #expect(result == Gzip.Result(inputBytes: UInt64(content.count), outputBytes: UInt64(written.st_size)))
        #expect(written.st_mode & 0o7777 == 0o640 && written.st_mode & S_IFMT == S_IFREG)
        #expect(root ? written.st_uid == 1234 && written.st_gid == 1235 : written.st_uid == geteuid())
        #expect(written.st_mtim.tv_sec == Self.mtime && written.st_atim.tv_sec == Self.atime)
        #expect(info(tree.path("logs/app.log.1")) == nil, "the source is removed")
        #expect(names(tree.path("archive")) == ["app.log.1.gz"], "no temporary file is left")
        #expect(names(tree.path("logs")).isEmpty)

        #expect(try gzip(["-t", "app.log.1.gz"], in: tree.path("archive")) == 0)
        #expect(try gzip(["-dc", "app.log.1.gz"], in: tree.path("archive"), output: tree.path("out")) == 0)
        #expect(readBytes(tree.path("out")) == content, "gzip -dc gives back the bytes")
        let parsed = try #require(header(gz))
        #expect(parsed.name == "app.log.1" && parsed.mtime == Self.mtime && parsed.os == 3)
        #expect(try gzip(["-lN", "app.log.1.gz"], in: tree.path("archive"), output: tree.path("list")) == 0)
        let listed = try #require(readBytes(tree.path("list"))).split(separator: UInt8(ascii: "\n")).last
        let fields = String(decoding: listed ?? [], as: UTF8.self).split(separator: " ")
        #expect(fields.count == 4 && fields[1] == "\(content.count)" && fields[3].hasSuffix("app.log.1"), "\(fields)")
        // gzip -dN restores the name and mtime from the header, as for a file gzip compressed itself.
        tree.makeDirectory("restore")
        precondition(rename(gz, tree.path("restore/renamed.gz")) == 0)
        #expect(try gzip(["-dN", "renamed.gz"], in: tree.path("restore")) == 0)
        #expect(names(tree.path("restore")) == ["app.log.1"])
        #expect(readBytes(tree.path("restore/app.log.1")) == content)
        #expect(info(tree.path("restore/app.log.1"))?.st_mtim.tv_sec == Self.mtime)
    }

    @Test func anEmptyFileCompressesAndTheSourceCanBeKept() throws {
        let tree = TempTree("gzip-empty")
        defer { tree.remove() }
        writeBytes(tree.path("empty.log"), [])
        let directory = openDirectory(tree.root)
        defer { close(directory) }
        let result = try Gzip.compress(
            sourceName: "empty.log",
            in: directory,
            to: "empty.log.gz",
            in: directory,
            level: 9,
            mode: 0o600,
            removeSource: false
        )
        #expect(result.inputBytes == 0 && result.outputBytes == UInt64(info(tree.path("empty.log.gz"))?.st_size ?? -1))
        #expect(info(tree.path("empty.log.gz")).map { $0.st_mode & 0o7777 == 0o600 && $0.st_uid == geteuid() } == true)
        #expect(try gzip(["-t", "empty.log.gz"], in: tree.root) == 0)
        #expect(try gzip(["-dc", "empty.log.gz"], in: tree.root, output: tree.path("out")) == 0)
        #expect(readBytes(tree.path("out")) == [])
        #expect(readBytes(tree.path("empty.log")) == [], "removeSource: false keeps the source")
    }

    /// Level 0 (stored blocks, output larger than the input and than the buffers), 1 and 9 on text and noise.
    @Test(arguments: [0, 1, 9] as [Int32])
    func everyLevelRoundTrips(level: Int32) throws {
        let tree = TempTree("gzip-level")
        defer { tree.remove() }
        let content = Array(Self.noise.prefix(700_000) + Self.mixed.prefix(300_000))
        writeBytes(tree.path("a.log"), content)
        let directory = openDirectory(tree.root)
        defer { close(directory) }
        let result = try Gzip.compress(sourceName: "a.log", in: directory, to: "a.log.gz", in: directory, level: level)
        #expect(result.inputBytes == UInt64(content.count))
        #expect(level != 0 || result.outputBytes > UInt64(content.count), "stored: \(result)")
        #expect(try gzip(["-dc", "a.log.gz"], in: tree.root, output: tree.path("out")) == 0)
        #expect(readBytes(tree.path("out")) == content)
        // zlib writes the header's extra flags from the level as gzip does: 2 for -9, 4 for -1.
        #expect(readBytes(tree.path("a.log.gz"))?[8] == [0: 4, 1: 4, 9: 2][level])
    }

    @Test func anUnknownLevelOrModeIsRefused() throws {
        let tree = TempTree("gzip-args")
        defer { tree.remove() }
        tree.write("a.log", "a\n")
        let directory = openDirectory(tree.root)
        defer { close(directory) }
        for (level, mode) in [(10, 0o640), (-1, 0o640), (6, 0o10640)] as [(Int32, UInt32)] {
            let error = try #require(throws: GzipError.self) {
                try Gzip.compress(
                    sourceName: "a.log",
                    in: directory,
                    to: "a.log.gz",
                    in: directory,
                    level: level,
                    mode: mode
                )
            }
            #expect(error.errno == 0 && error.message.contains(level == 6 ? "mode" : "level"), "\(error)")
        }
        #expect(names(tree.root) == ["a.log"])
    }

    // MARK: Refusals

    @Test(arguments: [true, false])
    func anExistingDestinationIsNeverReplaced(unnamedTemporary: Bool) throws {
        let tree = TempTree("gzip-exists")
        defer { tree.remove() }
        let content = Array(Self.mixed.prefix(200_000))
        writeBytes(tree.path("app.log.1"), content)
        tree.write("app.log.1.gz", "an older archive\n", mode: 0o600)
        let directory = openDirectory(tree.root)
        defer { close(directory) }
        var hooks = Gzip.Hooks()
        hooks.unnamedTemporary = unnamedTemporary
        let error = try #require(throws: GzipError.self) {
            try Gzip.compress(
                sourceName: "app.log.1",
                in: directory,
                to: "app.log.1.gz",
                in: directory,
                level: 6,
                mode: 0o640,
                owner: nil,
                group: nil,
                removeSource: true,
                hooks: hooks
            )
        }
        #expect(error.errno == EEXIST)
        #expect(error.message.contains("'\(tree.path("app.log.1.gz"))' already exists"), "\(error)")
        #expect(tree.read("app.log.1.gz") == "an older archive\n")
        #expect(info(tree.path("app.log.1.gz")).map { $0.st_mode } == S_IFREG | 0o600)
        #expect(readBytes(tree.path("app.log.1")) == content)
        #expect(names(tree.root) == ["app.log.1", "app.log.1.gz"], "no temporary file is left")
    }

    @Test func aSymlinkIsRefusedAndItsTargetUntouched() throws {
        let tree = TempTree("gzip-symlink")
        defer { tree.remove() }
        tree.makeDirectory("etc")
        tree.makeDirectory("logs")
        tree.write("etc/shadow", "root:secret\n", mode: 0o600)
        tree.symlink("logs/app.log.1", to: tree.path("etc/shadow"))
        let logs = openDirectory(tree.path("logs"))
        defer { close(logs) }
        let error = try #require(throws: GzipError.self) {
            try Gzip.compress(sourceName: "app.log.1", in: logs, to: "app.log.1.gz", in: logs, mode: 0o644)
        }
        #expect(error.errno == ELOOP)
        #expect(error.message.contains("symbolic link"), "\(error)")
        #expect(tree.read("etc/shadow") == "root:secret\n")
        #expect(names(tree.path("logs")) == ["app.log.1"])
        #expect(names(tree.path("etc")) == ["shadow"])
    }

    @Test func namesWithSlashesDirectoriesFIFOsAndHardLinksAreRefused() throws {
        let tree = TempTree("gzip-refuse")
        defer { tree.remove() }
        tree.makeDirectory("sub")
        tree.write("sub/a.log", "a\n")
        tree.write("linked.log", "secret\n")
        precondition(link(tree.path("linked.log"), tree.path("second-name.log")) == 0)
        precondition(mkfifo(tree.path("fifo.log"), 0o644) == 0)
        let directory = openDirectory(tree.root)
        defer { close(directory) }
        for (source, destination, expected) in [
            ("sub/a.log", "a.log.gz", "contains '/'"),
            ("a.log", "../a.log.gz", "contains '/'"),
            ("..", "x.gz", "is not a file name"),
            ("sub", "sub.gz", "a directory, not a regular file"),
            ("fifo.log", "fifo.log.gz", "a FIFO, not a regular file"),
            ("linked.log", "linked.log.gz", "2 hard links"),
        ] {
            let error = try #require(throws: GzipError.self, "\(source)") {
                try Gzip.compress(sourceName: source, in: directory, to: destination, in: directory)
            }
            #expect(error.errno == 0 && error.message.contains(expected), "\(error)")
        }
        #expect(names(tree.root) == ["fifo.log", "linked.log", "second-name.log", "sub"])
        #expect(tree.read("sub/a.log") == "a\n" && tree.read("linked.log") == "secret\n")
    }

    // MARK: A full disk

    @Test(arguments: [true, false])
    func aFullDiskLeavesNothingAndTheSourceIntact(unnamedTemporary: Bool) throws {
        let tree = TempTree("gzip-full")
        defer { tree.remove() }
        tree.makeDirectory("logs")
        tree.makeDirectory("small")
        let small = tree.path("small")
        guard mount("tmpfs", small, "tmpfs", 0, "size=256k") == 0 else {
            let code = errno
            if code == EPERM {
                try Test.cancel("mounting a 256 KiB tmpfs returned EPERM: this test needs root (CAP_SYS_ADMIN)")
            }
            Issue.record("mounting a 256 KiB tmpfs on '\(small)' failed: \(String(cString: strerror(code)))")
            return
        }
        defer { umount2(small, Int32(MNT_DETACH)) }
        let content = Self.noise
        writeBytes(tree.path("logs/app.log.1"), content)
        let logs = openDirectory(tree.path("logs"))
        defer { close(logs) }
        let destination = openDirectory(small)
        defer { close(destination) }
        var hooks = Gzip.Hooks()
        hooks.unnamedTemporary = unnamedTemporary

        let error = try #require(throws: GzipError.self) {
            try Gzip.compress(
                sourceName: "app.log.1",
                in: logs,
                to: "app.log.1.gz",
                in: destination,
                level: 6,
                mode: 0o640,
                owner: nil,
                group: nil,
                removeSource: true,
                hooks: hooks
            )
        }
        #expect(error.errno == ENOSPC)
        for part in [
            "'\(tree.path("logs/app.log.1"))'", "'\(small)/app.log.1.gz'", "No space left on device",
            "free space on the filesystem holding '\(small)/'",
            "the original '\(tree.path("logs/app.log.1"))' is intact",
        ] {
            #expect(error.message.contains(part), "\(part) in: \(error)")
        }
        #expect(names(small).isEmpty, "nothing is left on the full filesystem")
        // The unnamed file's blocks go with its last reference: a child another test forks at that moment
        // holds a copy of the descriptor until its exec closes it (O_CLOEXEC), so wait for it, with a deadline.
        var space = statvfs()
        let deadline = Clock.monotonicNanoseconds() + 2_000_000_000
        while statvfs(small, &space) == 0 && space.f_bfree != space.f_blocks && Clock.monotonicNanoseconds() < deadline
        {
            _ = poll(nil, 0, 1)
        }
        #expect(statvfs(small, &space) == 0 && space.f_bfree == space.f_blocks, "every block is free again")
        #expect(readBytes(tree.path("logs/app.log.1")) == content)
    }

    // MARK: A source that changes

    @Test func aSourceThatGrowsIsLeftAndNothingIsWritten() throws {
        let tree = TempTree("gzip-grow")
        defer { tree.remove() }
        let content = Array(Self.mixed.prefix(300_000))
        writeBytes(tree.path("app.log.1"), content)
        let directory = openDirectory(tree.root)
        defer { close(directory) }
        let path = tree.path("app.log.1")
        var hooks = Gzip.Hooks()
        // A writer that still holds the rotated file appends one more line.
        hooks.afterReading = {
            let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            precondition(fd >= 0 && write(fd, "late line\n", 10) == 10)
            close(fd)
        }
        let error = try #require(throws: GzipError.self) {
            try Gzip.compress(
                sourceName: "app.log.1",
                in: directory,
                to: "app.log.1.gz",
                in: directory,
                level: 6,
                mode: 0o640,
                owner: nil,
                group: nil,
                removeSource: true,
                hooks: hooks
            )
        }
        #expect(error.errno == 0)
        #expect(error.message.contains("it grew from \(content.count) to \(content.count + 10) bytes"), "\(error)")
        #expect(names(tree.root) == ["app.log.1"], "no destination")
        #expect(readBytes(path) == content + Array("late line\n".utf8))

        // The same just before the source would be removed: the destination, already linked, goes again.
        hooks.afterReading = nil
        hooks.beforeRemovingSource = {
            let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            precondition(fd >= 0 && write(fd, "later\n", 6) == 6)
            close(fd)
        }
        let second = try #require(throws: GzipError.self) {
            try Gzip.compress(
                sourceName: "app.log.1",
                in: directory,
                to: "app.log.1.gz",
                in: directory,
                level: 6,
                mode: 0o640,
                owner: nil,
                group: nil,
                removeSource: true,
                hooks: hooks
            )
        }
        #expect(second.message.contains("grew") && second.message.contains("was removed again"), "\(second)")
        #expect(names(tree.root) == ["app.log.1"])
    }

    @Test func aSourceReplacedMeanwhileIsLeftAlone() throws {
        let tree = TempTree("gzip-replaced")
        defer { tree.remove() }
        let content = Array(Self.mixed.prefix(100_000))
        writeBytes(tree.path("app.log.1"), content)
        let directory = openDirectory(tree.root)
        defer { close(directory) }
        let root = tree.root
        var hooks = Gzip.Hooks()
        // Another rotation moves the compressed file on and puts a new one under its name.
        hooks.beforeRemovingSource = {
            precondition(rename(root + "/app.log.1", root + "/app.log.2") == 0)
            tree.write("app.log.1", "newer\n")
        }
        let error = try #require(throws: GzipError.self) {
            try Gzip.compress(
                sourceName: "app.log.1",
                in: directory,
                to: "app.log.1.gz",
                in: directory,
                level: 6,
                mode: 0o640,
                owner: nil,
                group: nil,
                removeSource: true,
                hooks: hooks
            )
        }
        #expect(error.message.contains("now refers to another file"), "\(error)")
        #expect(names(tree.root) == ["app.log.1", "app.log.1.gz", "app.log.2"])
        #expect(tree.read("app.log.1") == "newer\n")
        #expect(try gzip(["-dc", "app.log.1.gz"], in: tree.root, output: tree.path("out")) == 0)
        #expect(readBytes(tree.path("out")) == content, "the destination holds the file that was compressed")
    }
}
