/// A wait status as `waitpid(2)` returns it and the proc connector reports it (`exit.exit_code`): how a
/// process ended. See `man 2 waitpid` (`WIFEXITED`, `WEXITSTATUS`, `WTERMSIG`, `WCOREDUMP`).
public struct WaitStatus: BitwiseCopyable, Sendable, Equatable {
    public var raw: Int32

    @inline(__always)
    public init(_ raw: Int32) { self.raw = raw }

    /// The code passed to `exit()` when the process ended normally; nil when a signal ended it.
    @inline(__always)
    public var exitCode: Int32? { raw & 0x7f == 0 ? (raw >> 8) & 0xff : nil }

    /// The signal that ended the process; nil when it exited normally (0x7f is a stopped child, not an end).
    @inline(__always)
    public var terminatingSignal: Int32? {
        let signal = raw & 0x7f
        return signal != 0 && signal != 0x7f ? signal : nil
    }

    /// Whether a signal ended it with a core dump (the 0x80 bit).
    @inline(__always)
    public var coreDumped: Bool { terminatingSignal != nil && raw & 0x80 != 0 }
}
