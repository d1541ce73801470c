import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// An `eventfd(2)` counter used as a doorbell between threads (C4): `ring` wakes whoever waits in epoll
/// on it; `drain` resets it. Rings before the wait are remembered, so a wake-up cannot be lost.
public final class EventFD: @unchecked Sendable {
    // @unchecked Sendable: an eventfd is safe to write and read from any thread.

    /// The descriptor, for registering with `Epoll`.
    public let descriptor: CInt

    /// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`.
    public init() throws(Errno) {
        descriptor = try Syscall.valueOrErrno { eventfd(0, CInt(EFD_CLOEXEC | EFD_NONBLOCK)) }
    }

    deinit { Syscall.close(descriptor) }

    /// Adds 1 to the counter, waking a waiter.
    @inline(never)
    public func ring() {
        var one: UInt64 = 1
        while true {
            let n = withUnsafeBytes(of: &one) { Glibc.write(descriptor, $0.baseAddress, 8) }
            if n == 8 { return }
            let code = errno
            if code == EINTR { continue }
            // EAGAIN: the counter is at its maximum, so a waiter is certainly woken already.
            precondition(code == EAGAIN, "EventFD.ring: write failed with errno \(code)")
            return
        }
    }

    /// Resets the counter to zero; returns how many rings it held.
    @discardableResult
    @inline(never)
    public func drain() -> UInt64 {
        var value: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &value) { Glibc.read(descriptor, $0.baseAddress, 8) }
        return n == 8 ? value : 0
    }

    /// Blocks until the doorbell rings (used where a thread waits on nothing else), then drains it.
    public func wait() {
        var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while drain() == 0 {
            _ = poll(&pfd, 1, -1)
        }
    }
}
