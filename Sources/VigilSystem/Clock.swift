#if canImport(Glibc)
import Glibc
#endif

/// Clock readings through `clock_gettime(2)` (vDSO: no system call, no allocation).
public enum Clock {
    /// `CLOCK_MONOTONIC` in nanoseconds: for latencies and timers.
    @inline(__always)
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// `CLOCK_REALTIME` as seconds and nanoseconds since the Unix epoch: for alert timestamps.
    @inline(__always)
    public static func realtime() -> (seconds: Int64, nanoseconds: Int32) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int64(ts.tv_sec), Int32(ts.tv_nsec))
    }
}

/// The host's name, from `gethostname(2)`.
public enum HostName {
    public static func current() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
