import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Raw system calls, one `@inline(never)` wrapper per libc entry point (S1). Each reads `errno` at once,
/// retries `EINTR` unless told not to (S2), and returns the value or throws the `Errno`.
public enum Syscall {
    /// Runs `body`, retrying while it fails with `EINTR`; any other failure throws the errno read right after.
    @inline(__always)
    static func valueOrErrno<T: FixedWidthInteger>(
        retryOnInterrupt: Bool = true,
        _ body: () -> T
    ) throws(Errno) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = errno
            if code == EINTR && retryOnInterrupt { continue }
            throw Errno(rawValue: code)
        }
    }

    /// `close(2)`. Never retried: on Linux the descriptor is released even when close reports EINTR.
    @inline(never)
    public static func close(_ fd: CInt) {
        _ = Glibc.close(fd)
    }

    /// `read(2)`. Returns 0 at end of file; `EAGAIN` on a non-blocking descriptor is returned as nil.
    @inline(never)
    public static func read(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN { return nil }
            throw Errno(rawValue: code)
        }
    }

    /// `pread(2)`: reads at `offset` without moving the file position, so threads can share a descriptor.
    /// Returns 0 at end of file.
    @inline(never)
    public static func pread(
        _ fd: CInt,
        into buffer: UnsafeMutableRawBufferPointer,
        at offset: Int
    ) throws(Errno) -> Int {
        try valueOrErrno { Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// `write(2)` of the whole buffer in one call where the kernel allows; loops on short writes.
    @inline(never)
    public static func writeAll(_ fd: CInt, _ buffer: UnsafeRawBufferPointer) throws(Errno) {
        var offset = 0
        while offset < buffer.count {
            let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n >= 0 {
                offset += n
                continue
            }
            let code = errno
            if code == EINTR { continue }
            throw Errno(rawValue: code)
        }
    }
}

extension Syscall {
    /// `pwrite(2)` of the whole buffer at `offset`, looping on short writes (a regular file writes short only
    /// when it runs out of space, and the next call then reports `ENOSPC`). The file position is untouched.
    @inline(never)
    public static func pwriteAll(_ fd: CInt, _ buffer: UnsafeRawBufferPointer, at offset: Int) throws(Errno) {
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let n = Glibc.pwrite(fd, base + done, buffer.count - done, off_t(offset + done))
            if n >= 0 {
                done += n
                continue
            }
            let code = errno
            if code == EINTR { continue }
            throw Errno(rawValue: code)
        }
    }

    /// `openat(2)` of the single component `name` in `directory`, always with `O_NOFOLLOW | O_CLOEXEC`: a
    /// symlink under the name is `ELOOP`, never followed. `mode` applies when `flags` has `O_CREAT`.
    @inline(never)
    public static func openFile(
        _ name: String,
        in directory: CInt,
        flags: CInt,
        mode: UInt32 = 0o600
    ) throws(Errno)
        -> CInt
    {
        let all = flags | O_NOFOLLOW | O_CLOEXEC
        return try valueOrErrno { name.withCString { Glibc.openat(directory, $0, all, mode_t(mode)) } }
    }

    /// `fdatasync(2)`: the file's data, and the metadata needed to read it back (its size), reach the disk.
    @inline(never)
    public static func fdatasync(_ fd: CInt) throws(Errno) {
        _ = try valueOrErrno { Glibc.fdatasync(fd) }
    }

    /// `ftruncate(2)`: cuts (or extends with zeros) the file to `length` bytes.
    @inline(never)
    public static func truncate(_ fd: CInt, to length: Int) throws(Errno) {
        _ = try valueOrErrno { Glibc.ftruncate(fd, off_t(length)) }
    }
}

extension Syscall {
    /// `pidfd_open(2)`: a descriptor that polls readable when process `pid` exits; nil where unsupported.
    public static func pidfdOpen(_ pid: Int32) -> CInt? {
        let fd = CVigilLinux_pidfd_open(pid)
        return fd >= 0 ? fd : nil
    }
}
