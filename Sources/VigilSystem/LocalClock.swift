#if canImport(Glibc)
import Glibc
#endif

/// A civil date and time on the host's wall clock, as `struct tm` holds it (`man 3 localtime`).
public struct LocalTime: Sendable, Equatable, CustomStringConvertible {
    /// The year, e.g. 2025.
    public var year: Int
    /// 1 (January) … 12.
    public var month: Int
    /// 1 … 31.
    public var day: Int
    /// 0 … 23.
    public var hour: Int
    /// 0 … 59.
    public var minute: Int
    /// 0 … 60 (a leap second).
    public var second: Int

    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    /// `YYYY-MM-DD HH:MM:SS`.
    public var description: String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day)) \(two(hour)):\(two(minute)):\(two(second))"
    }
}

/// The host's time zone (the `TZ` variable, else `/etc/localtime`), through glibc: no Foundation.
public enum LocalClock {
    /// `localtime_r(3)` of `seconds` since the epoch. Calls `tzset(3)` first, so a changed `TZ` or
    /// `/etc/localtime` is seen.
    public static func localTime(_ seconds: Int64) -> LocalTime {
        tzset()
        var time = time_t(seconds)
        var parts = tm()
        _ = localtime_r(&time, &parts)
        return LocalTime(
            year: Int(parts.tm_year) + 1900,
            month: Int(parts.tm_mon) + 1,
            day: Int(parts.tm_mday),
            hour: Int(parts.tm_hour),
            minute: Int(parts.tm_min),
            second: Int(parts.tm_sec)
        )
    }

    /// `mktime(3)` of a local time with `tm_isdst = -1` (the zone decides whether summer time applies): the
    /// seconds since the epoch. A time that does not exist (inside a spring-forward gap) is moved forward by
    /// the gap, as glibc does.
    public static func seconds(_ time: LocalTime) -> Int64 {
        tzset()
        var parts = tm()
        parts.tm_year = Int32(time.year - 1900)
        parts.tm_mon = Int32(time.month - 1)
        parts.tm_mday = Int32(time.day)
        parts.tm_hour = Int32(time.hour)
        parts.tm_min = Int32(time.minute)
        parts.tm_sec = Int32(time.second)
        parts.tm_isdst = -1
        return Int64(mktime(&parts))
    }

    /// `strftime(3)` of `seconds` in local time with `format` (at most 255 bytes of output; "" when longer).
    public static func format(_ seconds: Int64, _ format: String) -> String {
        tzset()
        var time = time_t(seconds)
        var parts = tm()
        _ = localtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 256)
        let n = format.withCString { strftime(&buffer, buffer.count, $0, &parts) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
