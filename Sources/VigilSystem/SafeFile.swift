import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Changing a file's mode or owner as root without being turned against the host (issue 5's first step):
/// the file is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` beneath a directory Vigil holds
/// open, so neither a symlink anywhere on the way nor `..` can lead outside it (`O_NOFOLLOW` guards only the
/// last component); the caller checks the descriptor is the file the event named (device and inode) and
/// then changes it through the descriptor, never by name.
public enum SafeFile {
    /// A file opened safely: an `O_PATH` descriptor and what `fstat` says of it. Close with `close()`.
    public struct Handle: Sendable {
        public let descriptor: CInt
        public let device: UInt64
        public let inode: UInt64
        public let mode: UInt32
        public let owner: UInt32
        public let group: UInt32
        public let links: UInt64
        /// The inode's change time (`st_ctim`), nanoseconds since the epoch: it moves with every mode or
        /// owner change, so it tells one drift from the next.
        public let changeTime: Int64

        public var isRegularFile: Bool { mode & 0o170000 == 0o100000 }
        public var isDirectory: Bool { mode & 0o170000 == 0o040000 }

        public func close() { Syscall.close(descriptor) }

        init(_ descriptor: CInt, _ info: stat) {
            self.descriptor = descriptor
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            mode = UInt32(info.st_mode)
            owner = UInt32(info.st_uid)
            group = UInt32(info.st_gid)
            links = UInt64(info.st_nlink)
            changeTime = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
        }
    }

    /// Opens `relative` (no leading `/`) beneath the directory `directory` (a descriptor) for changing its
    /// attributes: `O_PATH | O_NOFOLLOW`, resolved with no symlink (the last component included) and without
    /// leaving `directory`. Throws `ELOOP`/`EXDEV` for a symlink or an escape, `ENOSYS` on kernels before 5.6.
    public static func open(_ relative: String, beneath directory: CInt) throws(Errno) -> Handle {
        let fd = relative.withCString {
            CVigilLinux_openat2(directory, $0, UInt64(CVigilLinux_o_path() | O_NOFOLLOW | O_CLOEXEC), 0, strictResolve)
        }
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            Syscall.close(fd)
            throw Errno(rawValue: code)
        }
        // With O_PATH | O_NOFOLLOW a symlink as the last component is opened itself; a mode change through
        // /proc/self/fd would then follow it. Refuse it like any other symlink.
        if info.st_mode & S_IFMT == S_IFLNK {
            Syscall.close(fd)
            throw Errno(rawValue: ELOOP)
        }
        return Handle(fd, info)
    }

    /// No symlink anywhere, no magic link, never above the starting directory.
    static let strictResolve =
        CVigilLinux_resolve_beneath() | CVigilLinux_resolve_no_symlinks() | CVigilLinux_resolve_no_magiclinks()

    /// The file's attributes now (`fstat` of the descriptor), e.g. after a change.
    public static func refresh(_ handle: Handle) throws(Errno) -> Handle {
        var info = stat()
        guard fstat(handle.descriptor, &info) == 0 else { throw Errno(rawValue: errno) }
        return Handle(handle.descriptor, info)
    }

    /// Sets the permission bits through the descriptor. `fchmod` refuses an `O_PATH` descriptor (`EBADF`),
    /// so the change goes through `/proc/self/fd/N`, which names exactly this open file.
    public static func changeMode(_ handle: Handle, to mode: UInt32) throws(Errno) {
        let path = "/proc/self/fd/\(handle.descriptor)"
        guard chmod(path, mode_t(mode & 0o7777)) == 0 else { throw Errno(rawValue: errno) }
    }

    /// Sets owner and group through the descriptor (`fchownat(fd, "", …, AT_EMPTY_PATH)`); nil keeps one.
    public static func changeOwner(_ handle: Handle, owner: UInt32?, group: UInt32?) throws(Errno) {
        let uid = owner.map { uid_t($0) } ?? uid_t.max
        let gid = group.map { gid_t($0) } ?? gid_t.max
        guard fchownat(handle.descriptor, "", uid, gid, CVigilLinux_at_empty_path()) == 0 else {
            throw Errno(rawValue: errno)
        }
    }
}
