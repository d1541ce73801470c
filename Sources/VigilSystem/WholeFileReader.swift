import CVigilLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Reads a small file (a config) whole, refusing what is not a complete regular text file.
///
/// A file caught while someone writes it must not be evaluated: a key missing only because the writer has
/// not reached it yet is unknown, not a change. Before reading, the reader takes a read lease
/// (`fcntl(F_SETLEASE, F_RDLCK)`, see `man 2 fcntl`): the kernel grants it only when no process has the
/// file open for writing, and while it is held a writer's `open` waits for us to release it, so the bytes
/// read are one complete version. Where leases are unavailable (some filesystems, no CAP_LEASE for a file
/// owned by another user) the read goes ahead unguarded. SIGIO, which a lease break sends, must be ignored
/// by the process (the daemon does so at start-up).
public enum WholeFileReader {
    /// The outcome of one read.
    public enum Outcome: Sendable {
        /// The complete content and the identity of the version read.
        case content([UInt8], FileIdentity)
        /// No file under that name.
        case missing
        /// A process has the file open for writing; try again when it closes it.
        case busy
        /// The file cannot be used; `FileReadError` says why and what to do.
        case failed(FileReadError)
    }

    /// Reads `path` (following symlinks), up to `limit` bytes.
    @inline(never)
    public static func read(_ path: String, limit: Int) -> Outcome {
        let fd = path.withCString { CVigilLinux_open($0, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0) }
        if fd < 0 {
            let code = errno
            return code == ENOENT ? .missing : .failed(FileReadError(path: path, errno: code))
        }
        defer { Syscall.close(fd) }
        var leased = false
        for attempt in 0..<4 {
            if CVigilLinux_set_lease(fd, CInt(F_RDLCK)) == 0 {
                leased = true
                break
            }
            let code = errno
            if code != EAGAIN { break }  // not a regular file, or leases unsupported here: read unguarded
            if attempt == 3 { return .busy }
            sched_yield()
        }
        defer { if leased { _ = CVigilLinux_set_lease(fd, CInt(F_UNLCK)) } }
        // Under the lease no one can write or truncate the file, so this stat describes the bytes we read.
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failed(FileReadError(path: path, errno: errno)) }
        let type = info.st_mode & S_IFMT
        guard type == S_IFREG else {
            return .failed(FileReadError(path: path, kind: .notRegular(FileReadError.typeName(type))))
        }
        guard info.st_size <= limit else {
            return .failed(FileReadError(path: path, kind: .tooLarge(size: Int(info.st_size), limit: limit)))
        }
        // Leased: exactly st_size bytes. Unguarded: until end of file, since a writer may still be adding.
        let expected = Int(info.st_size)
        var bytes = [UInt8](repeating: 0, count: leased ? expected : expected + 4096)
        var total = 0
        while total < bytes.count || !leased {
            if total == bytes.count {
                if total > limit { break }
                bytes.append(contentsOf: repeatElement(0, count: max(4096, total)))
            }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                return .failed(FileReadError(path: path, errno: code))
            }
            if n == 0 { break }
            total += n
        }
        guard total <= limit else {
            return .failed(FileReadError(path: path, kind: .tooLarge(size: total, limit: limit)))
        }
        if total < bytes.count { bytes.removeSubrange(total...) }
        return .content(bytes, FileIdentity(info))
    }

    /// What `settledIdentity` found.
    public enum Settled: Sendable {
        /// The file, no writer holding it open (for a regular file), in this version.
        case identity(FileIdentity)
        case missing
        /// A process has the regular file open for writing.
        case busy
        case failed(FileReadError)
    }

    /// The identity of `path` once no one is writing it: the same read-lease test as `read`, without
    /// reading. For `file:` rules, so that a file being written is reported once, when complete.
    @inline(never)
    public static func settledIdentity(of path: String) -> Settled {
        let fd = path.withCString { CVigilLinux_open($0, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0) }
        if fd < 0 {
            let code = errno
            if code == ENOENT { return .missing }
            // Not openable for reading (a socket, no permission): its metadata still says what changed.
            return identity(of: path).map { .identity($0) } ?? .failed(FileReadError(path: path, errno: code))
        }
        defer { Syscall.close(fd) }
        var leased = false
        for attempt in 0..<4 {
            if CVigilLinux_set_lease(fd, CInt(F_RDLCK)) == 0 {
                leased = true
                break
            }
            if errno != EAGAIN { break }
            if attempt == 3 { return .busy }
            sched_yield()
        }
        defer { if leased { _ = CVigilLinux_set_lease(fd, CInt(F_UNLCK)) } }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failed(FileReadError(path: path, errno: errno)) }
        return .identity(FileIdentity(info))
    }

    /// `lstat(2)` of `path`: nil when it does not exist or cannot be examined.
    public static func identity(of path: String, followSymlinks: Bool = true) -> FileIdentity? {
        var info = stat()
        let rc = followSymlinks ? stat(path, &info) : lstat(path, &info)
        return rc == 0 ? FileIdentity(info) : nil
    }
}

/// Why a file could not be read, as one line that names the path, the cause and the fix (E2).
public struct FileReadError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case permissionDenied
        case notRegular(String)
        case tooLarge(size: Int, limit: Int)
        case symlinkLoop
        case notADirectory
        case other(CInt)
    }

    public let path: String
    public let kind: Kind

    public init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    public init(path: String, errno code: CInt) {
        self.path = path
        switch code {
        case EACCES, EPERM: kind = .permissionDenied
        case ELOOP: kind = .symlinkLoop
        case ENOTDIR: kind = .notADirectory
        case EISDIR: kind = .notRegular("a directory")
        default: kind = .other(code)
        }
    }

    static func typeName(_ type: mode_t) -> String {
        switch type {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        default: "not a regular file"
        }
    }

    public var description: String {
        switch kind {
        case .permissionDenied:
            "Failed to read '\(path)': permission denied; give vigil read access (run as root or with CAP_DAC_READ_SEARCH, "
                + "see docs/troubleshooting.md#config-unreadable)"
        case .notRegular(let what):
            "Failed to read '\(path)': it is \(what), not a regular file; point the rule at a file"
        case .tooLarge(let size, let limit):
            "Failed to read '\(path)': it is \(size) bytes, over the \(limit)-byte limit for config files; "
                + "is this really a config file?"
        case .symlinkLoop:
            "Failed to read '\(path)': too many levels of symbolic links (a symlink loop); fix the link"
        case .notADirectory:
            "Failed to read '\(path)': a path component is not a directory"
        case .other(let code):
            "Failed to read '\(path)': \(Errno(rawValue: code))"
        }
    }
}
