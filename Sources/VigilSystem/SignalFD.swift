import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Delivers SIGTERM, SIGINT and SIGHUP as readable events (`man 2 signalfd`), so the main thread can
/// wait for them in epoll. The signals are blocked in the calling thread; threads created afterwards
/// inherit the mask, so no data-plane thread is ever interrupted by them.
public final class SignalFD: @unchecked Sendable {
    // @unchecked Sendable: read only by the thread that waits on it.

    /// The descriptor, for `Epoll`.
    public let descriptor: CInt

    /// Blocks `signals` in the calling thread and opens a signalfd for them.
    public init(signals: [CInt]) throws(Errno) {
        var set = sigset_t()
        let rc = signals.withUnsafeBufferPointer { CVigilLinux_block_signals($0.baseAddress, CInt($0.count), &set) }
        if rc != 0 { throw Errno(rawValue: rc) }
        descriptor = try Syscall.valueOrErrno { signalfd(-1, &set, CInt(SFD_CLOEXEC | SFD_NONBLOCK)) }
    }

    deinit { Syscall.close(descriptor) }

    /// Reads one pending signal number, or nil when none is pending.
    public func next() -> CInt? {
        var info = signalfd_siginfo()
        let n = withUnsafeMutableBytes(of: &info) { Glibc.read(descriptor, $0.baseAddress, $0.count) }
        return n == MemoryLayout<signalfd_siginfo>.size ? CInt(info.ssi_signo) : nil
    }

    /// Sets `signal` to be ignored process-wide (SIGPIPE, SIGIO).
    public static func ignore(_ signal: CInt) {
        _ = Glibc.signal(signal, SIG_IGN)
    }
}
