import CVigilLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// An inotify instance (`man 7 inotify`), created `IN_CLOEXEC | IN_NONBLOCK` (S4).
public final class Inotify: @unchecked Sendable {
    // @unchecked Sendable: inotify_add_watch/rm_watch and read are thread-safe on one descriptor.

    /// The inotify descriptor.
    public let descriptor: CInt

    /// `inotify_init1(IN_CLOEXEC | IN_NONBLOCK)`.
    public init() throws(InotifyError) {
        let fd = inotify_init1(CInt(IN_CLOEXEC | IN_NONBLOCK))
        if fd < 0 { throw InotifyError(errno: errno, path: nil, operation: .create) }
        descriptor = fd
    }

    deinit { Syscall.close(descriptor) }

    /// `inotify_add_watch(2)`: returns the watch descriptor. Adding a path already watched returns its
    /// existing descriptor (and replaces its mask).
    @inline(never)
    public func addWatch(_ path: String, mask: UInt32) throws(InotifyError) -> Int32 {
        let wd = path.withCString { inotify_add_watch(descriptor, $0, mask) }
        if wd < 0 { throw InotifyError(errno: errno, path: path, operation: .addWatch) }
        return wd
    }

    /// `inotify_rm_watch(2)`. Errors are ignored: the kernel may have removed the watch already.
    public func removeWatch(_ wd: Int32) {
        _ = inotify_rm_watch(descriptor, wd)
    }

    /// The user's watch limit, from /proc/sys/fs/inotify/max_user_watches (nil when unreadable).
    public static func maximumUserWatches() -> Int? {
        ProcFile.readInteger("/proc/sys/fs/inotify/max_user_watches")
    }

}

/// Why an inotify call failed, named for what the user experiences (N4), with the errno table of S7.
public struct InotifyError: Error, Sendable, CustomStringConvertible {
    /// What the user experiences.
    public enum Code: Sendable, Equatable {
        case watchLimitReached, instanceLimitReached, permissionDenied, notFound, notADirectory
        case symlinkLoop, outOfMemory
        case other(CInt)
    }

    /// The call that failed.
    public enum Operation: Sendable { case create, addWatch }

    public let code: Code
    public let errno: CInt
    public let path: String?
    public let operation: Operation

    public init(errno: CInt, path: String?, operation: Operation) {
        self.errno = errno
        self.path = path
        self.operation = operation
        switch (errno, operation) {
        case (ENOSPC, .addWatch): code = .watchLimitReached
        case (EMFILE, .create): code = .instanceLimitReached
        case (EACCES, _), (EPERM, _): code = .permissionDenied
        case (ENOENT, _): code = .notFound
        case (ENOTDIR, _): code = .notADirectory
        case (ELOOP, _): code = .symlinkLoop
        case (ENOMEM, _): code = .outOfMemory
        default: code = .other(errno)
        }
    }

    /// One line: what failed, the path in quotes, the cause, what to do (E2).
    public var description: String {
        let subject = path.map { "'\($0)'" } ?? "inotify"
        switch code {
        case .watchLimitReached:
            let limit = Inotify.maximumUserWatches().map { " (\($0))" } ?? ""
            return "Failed to watch \(subject): the user limit on inotify watches\(limit) was reached; "
                + "raise fs.inotify.max_user_watches (sysctl -w fs.inotify.max_user_watches=524288). "
                + "See docs/troubleshooting.md#inotify-watch-limit"
        case .instanceLimitReached:
            return "Failed to create an inotify instance: the user limit on inotify instances was reached; "
                + "raise fs.inotify.max_user_instances"
        case .permissionDenied:
            return "Failed to watch \(subject): permission denied; run vigil as root or grant CAP_DAC_READ_SEARCH"
        case .notFound:
            return "Failed to watch \(subject): no such file or directory"
        case .notADirectory:
            return "Failed to watch \(subject): a path component is not a directory"
        case .symlinkLoop:
            return "Failed to watch \(subject): too many levels of symbolic links (a symlink loop)"
        case .outOfMemory:
            return "Failed to watch \(subject): the kernel is out of memory"
        case .other(let code):
            return "Failed to watch \(subject): \(Errno(rawValue: code))"
        }
    }
}
