import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Working in directories other users can write, as root, without being redirected (log rotation): every
/// directory is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` beneath
/// a directory Vigil holds open (the `--root`), so no symlink anywhere on the way, and no `..`, can lead
/// elsewhere; every later step names a single component relative to such a descriptor (`renameat2`,
/// `openat(O_NOFOLLOW)`, `unlinkat`, `fstatat(AT_SYMLINK_NOFOLLOW)`), so a link planted under a log's name
/// or as a rotation directory is found and refused instead of followed to `/etc`.
///
/// Descriptors returned here are `O_RDONLY | O_DIRECTORY | O_CLOEXEC`: usable as the directory of every
/// `*at` call, for `fchmod`/`fchown` of the directory itself, and for listing it. The caller closes them.
public enum SafeDirectory {
    /// Opens `path` (a host path given by the administrator, such as `--root`) as a directory. Symlinks in it
    /// are followed: it is trusted. See `man 2 open`.
    @inline(never)
    public static func openTrusted(_ path: String) throws(Errno) -> CInt {
        try Syscall.valueOrErrno {
            path.withCString { CVigilLinux_open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0) }
        }
    }

    /// Opens `relative` (no leading `/`; "" or "." for `base` itself) beneath `base` as a directory, following
    /// no symlink (the last component included) and never leaving `base`. Throws `ELOOP` for a symlink on the
    /// way, `EXDEV` for a path that would leave `base`, `ENOTDIR`, `ENOENT`; `ENOSYS` before Linux 5.6.
    @inline(never)
    public static func open(_ relative: String, beneath base: CInt) throws(Errno) -> CInt {
        let path = relative.isEmpty ? "." : relative
        let flags = UInt64(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        do {
            return try Syscall.valueOrErrno {
                path.withCString { CVigilLinux_openat2(base, $0, flags, 0, SafeFile.strictResolve) }
            }
        } catch {
            // O_DIRECTORY | O_NOFOLLOW reports a symlink as the last component as ENOTDIR: say what it is.
            if error == .notDirectory && symlinkOnTheWay(path, beneath: base) { throw Errno(rawValue: ELOOP) }
            throw error
        }
    }

    /// Whether a component of `relative` beneath `base` is a symlink, looked at one prefix at a time
    /// (`fstatat(AT_SYMLINK_NOFOLLOW)`; each shorter prefix was already found to hold no symlink).
    private static func symlinkOnTheWay(_ relative: String, beneath base: CInt) -> Bool {
        var prefix = ""
        for component in relative.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += prefix.isEmpty ? String(component) : "/" + component
            var info = stat()
            guard fstatat(base, prefix, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return false }
            if info.st_mode & S_IFMT == S_IFLNK { return true }
            if info.st_mode & S_IFMT != S_IFDIR { return false }
        }
        return false
    }

    /// `mkdir -p` beneath `base`, one component at a time, each opened without following a symlink: a link
    /// planted as any component is `ELOOP`, never followed. Directories created on the way get mode 0755 and
    /// root's owner; the last one, when it is created here, gets `mode`, `owner` and `group` through its
    /// descriptor (`fchown`, then `fchmod`, so the umask does not narrow the mode). Returns the last
    /// directory's descriptor and whether it was created.
    public static func make(
        _ relative: String,
        beneath base: CInt,
        mode: UInt32,
        owner: UInt32?,
        group: UInt32?
    ) throws(Errno) -> (descriptor: CInt, created: Bool) {
        let components = relative.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var current = try open(".", beneath: base)
        var created = false
        for (index, component) in components.enumerated() {
            if component == "." { continue }
            if component == ".." {
                Syscall.close(current)
                throw Errno(rawValue: EXDEV)
            }
            let isLast = index == components.count - 1
            created = false
            if mkdirat(current, component, isLast ? 0o700 : 0o755) == 0 {
                created = true
            } else if errno != EEXIST {
                let code = errno
                Syscall.close(current)
                throw Errno(rawValue: code)
            }
            let next: CInt
            do {
                next = try open(component, beneath: current)
            } catch {
                Syscall.close(current)
                throw error
            }
            Syscall.close(current)
            current = next
            guard created && isLast else { continue }
            // Created 0700 so that no one else can use it before it has its owner and mode.
            if owner != nil || group != nil {
                guard fchown(current, owner ?? uid_t.max, group ?? gid_t.max) == 0 else {
                    let code = errno
                    Syscall.close(current)
                    throw Errno(rawValue: code)
                }
            }
            guard fchmod(current, mode_t(mode & 0o7777)) == 0 else {
                let code = errno
                Syscall.close(current)
                throw Errno(rawValue: code)
            }
        }
        return (current, created)
    }

    /// One entry of a directory listing.
    public struct Entry {
        /// The name, without `/`.
        public let name: String
        /// The inode number `getdents` reported.
        public let inode: UInt64
        /// `DT_DIR`, `DT_REG`, `DT_LNK`…; `DT_UNKNOWN` (0) on filesystems that do not say.
        public let type: UInt8

        public var isDirectory: Bool { type == UInt8(DT_DIR) }
    }

    /// Calls `body` for each entry of `directory` except `.` and `..`, read through a duplicate of the
    /// descriptor (which stays the caller's). See `man 3 fdopendir`.
    public static func forEachEntry(in directory: CInt, _ body: (Entry) -> Void) throws(Errno) {
        let copy = try Syscall.valueOrErrno { openat(directory, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard let stream = fdopendir(copy) else {
            let code = errno
            Syscall.close(copy)
            throw Errno(rawValue: code)
        }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            body(Entry(name: name, inode: UInt64(entry.pointee.d_ino), type: entry.pointee.d_type))
        }
    }

    /// The names in the directory (without `.` and `..`).
    public static func names(in directory: CInt) throws(Errno) -> [String] {
        var names: [String] = []
        try forEachEntry(in: directory) { names.append($0.name) }
        return names
    }

    /// `fstatat(directory, name, AT_SYMLINK_NOFOLLOW)`: what is under `name` itself (a symlink is reported as
    /// one, never followed). See `man 2 fstatat`.
    @inline(never)
    public static func status(_ name: String, in directory: CInt) throws(Errno) -> FileIdentity {
        var info = stat()
        _ = try Syscall.valueOrErrno { name.withCString { fstatat(directory, $0, &info, AT_SYMLINK_NOFOLLOW) } }
        return FileIdentity(info)
    }

    /// `fstat(fd)`.
    @inline(never)
    public static func status(of descriptor: CInt) throws(Errno) -> FileIdentity {
        var info = stat()
        _ = try Syscall.valueOrErrno { fstat(descriptor, &info) }
        return FileIdentity(info)
    }

    /// The birth time of `name` in `directory` (nanoseconds since the epoch), nil when the filesystem does
    /// not record one. `statx(2)` with `AT_SYMLINK_NOFOLLOW`.
    @inline(never)
    public static func birthTime(_ name: String, in directory: CInt) throws(Errno) -> Int64? {
        var seconds: Int64 = 0
        var nanoseconds: UInt32 = 0
        let rc = try Syscall.valueOrErrno {
            name.withCString { CVigilLinux_birth_time(directory, $0, &seconds, &nanoseconds) }
        }
        return rc == 1 ? seconds * 1_000_000_000 + Int64(nanoseconds) : nil
    }

    /// Renames `name` in `from` to `newName` in `to`, never replacing an existing `newName` (`EEXIST`):
    /// `renameat2(RENAME_NOREPLACE)`. `EXDEV` when the directories are on different filesystems.
    @inline(never)
    public static func renameWithoutReplacing(
        _ name: String,
        in from: CInt,
        to newName: String,
        in to: CInt
    ) throws(Errno) {
        _ = try Syscall.valueOrErrno {
            name.withCString { old in newName.withCString { new in CVigilLinux_rename_noreplace(from, old, to, new) } }
        }
    }

    /// `unlinkat(directory, name, 0)`: removes the name (a symlink itself, never its target).
    @inline(never)
    public static func remove(_ name: String, in directory: CInt) throws(Errno) {
        _ = try Syscall.valueOrErrno { name.withCString { unlinkat(directory, $0, 0) } }
    }

    /// Opens the regular file `name` in `directory` without following a symlink (`O_NOFOLLOW`: `ELOOP` for
    /// one), without blocking on a FIFO planted under the name (`O_NONBLOCK`) and without taking a terminal.
    /// `flags` adds the access mode (`O_RDONLY`, `O_RDWR`).
    @inline(never)
    public static func openFile(_ name: String, in directory: CInt, flags: CInt) throws(Errno) -> CInt {
        let all = flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
        return try Syscall.valueOrErrno { name.withCString { openat(directory, $0, all) } }
    }

    /// Creates the new, empty file `name` in `directory` (`O_CREAT | O_EXCL | O_NOFOLLOW`: `EEXIST` when any
    /// name is there, a symlink included, which is never followed), for writing. Its mode is 0600 until the
    /// caller sets the one it wants through the descriptor.
    @inline(never)
    public static func createFile(_ name: String, in directory: CInt) throws(Errno) -> CInt {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
        return try Syscall.valueOrErrno { name.withCString { openat(directory, $0, flags, 0o600) } }
    }

    /// Copies `input` (from its file position) to `output` until end of file; returns the bytes copied. Inside
    /// the kernel with `copy_file_range(2)` in pieces of at most 64 MiB; through `buffer` with read/write
    /// where the kernel or filesystem cannot (memory stays bounded by `buffer` either way).
    public static func copy(
        from input: CInt,
        to output: CInt,
        buffer: UnsafeMutableRawBufferPointer
    ) throws(Errno) -> UInt64 {
        var total: UInt64 = 0
        var kernelCopy = true
        while true {
            if kernelCopy {
                let n = CVigilLinux_copy_file_range(input, output, 64 << 20)
                if n > 0 {
                    total += UInt64(n)
                    continue
                }
                if n == 0 { return total }
                let code = errno
                if code == EINTR { continue }
                guard code == EXDEV || code == EINVAL || code == ENOSYS || code == EOPNOTSUPP || code == EBADF else {
                    throw Errno(rawValue: code)
                }
                kernelCopy = false
            }
            guard let n = try Syscall.read(input, into: buffer) else { throw Errno(rawValue: EAGAIN) }
            if n == 0 { return total }
            try Syscall.writeAll(output, UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += UInt64(n)
        }
    }
}
