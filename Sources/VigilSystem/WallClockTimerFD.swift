import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A one-shot `timerfd` on `CLOCK_REALTIME` (`man 2 timerfd_create`) for deadlines on the calendar (a log
/// rotated at local midnight): armed with `TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET`, so it fires at the
/// wall-clock time even after the clock was stepped (NTP, an administrator), and wakes at once when the
/// clock is set, for the owner to compute its deadline again. A monotonic timer set to "boundary − now"
/// would drift by every step of the clock.
public final class WallClockTimerFD: @unchecked Sendable {
    // @unchecked Sendable: used by the one thread that owns it.

    /// The descriptor, for `Epoll`.
    public let descriptor: CInt

    public init() throws(Errno) {
        descriptor = try Syscall.valueOrErrno { timerfd_create(CLOCK_REALTIME, CInt(TFD_CLOEXEC | TFD_NONBLOCK)) }
    }

    deinit { Syscall.close(descriptor) }

    /// Arms the timer to fire once at `seconds` since the epoch (wall clock), or when the clock is set; 0
    /// disarms it.
    public func arm(epochSeconds seconds: Int64) {
        var spec = itimerspec()
        spec.it_value.tv_sec = Int(max(seconds, 0))
        if seconds > 0 && spec.it_value.tv_sec == 0 { spec.it_value.tv_nsec = 1 }
        // TFD_TIMER_CANCEL_ON_SET is (1 << 1) in linux/timerfd.h; Swift's Glibc does not show it.
        let flags = seconds == 0 ? CInt(0) : CInt(TFD_TIMER_ABSTIME) | (1 << 1)
        _ = timerfd_settime(descriptor, flags, &spec, nil)
    }

    /// Clears the expiry (or the `ECANCELED` of a clock change) after a wake-up.
    public func acknowledge() {
        var count: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &count) { Glibc.read(descriptor, $0.baseAddress, 8) }
    }
}
