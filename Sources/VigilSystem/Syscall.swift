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
    /// `pidfd_open(2)`: a descriptor that polls readable when process `pid` exits; nil where unsupported.
    public static func pidfdOpen(_ pid: Int32) -> CInt? {
        let fd = CVigilLinux_pidfd_open(pid)
        return fd >= 0 ? fd : nil
    }
}
