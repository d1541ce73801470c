import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A one-shot `timerfd` on `CLOCK_MONOTONIC` (`man 2 timerfd_create`): armed only while something is
/// due, so an idle daemon never wakes.
public final class TimerFD: @unchecked Sendable {
    // @unchecked Sendable: used by the one thread that owns it.

    /// The descriptor, for `Epoll`.
    public let descriptor: CInt

    public init() throws(Errno) {
        descriptor = try Syscall.valueOrErrno { timerfd_create(CLOCK_MONOTONIC, CInt(TFD_CLOEXEC | TFD_NONBLOCK)) }
    }

    deinit { Syscall.close(descriptor) }

    /// Arms the timer to fire once at the absolute monotonic time `deadline` (nanoseconds); 0 disarms it.
    public func arm(deadline: UInt64) {
        var spec = itimerspec()
        spec.it_value.tv_sec = Int(deadline / 1_000_000_000)
        spec.it_value.tv_nsec = Int(deadline % 1_000_000_000)
        if deadline != 0 && spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0 { spec.it_value.tv_nsec = 1 }
        _ = timerfd_settime(descriptor, CInt(TFD_TIMER_ABSTIME), &spec, nil)
    }

    /// Clears the expiry count after a wake-up.
    public func acknowledge() {
        var count: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &count) { Glibc.read(descriptor, $0.baseAddress, 8) }
    }
}
