/// Formats Unix time as an RFC 3339 UTC timestamp with microseconds, `2026-11-27T04:53:35.123456Z`.
///
/// Pure arithmetic (Howard Hinnant's `civil_from_days`, see
/// https://howardhinnant.github.io/date_algorithms.html): no `gmtime_r`, no time zone database, no
/// allocation beyond the buffer's growth. UTC has no leap seconds in Unix time, so none appear here.
public enum RFC3339 {
    /// Seconds in a day.
    private static let secondsPerDay: Int64 = 86_400

    /// Appends the timestamp for `seconds` and `nanoseconds` after the Unix epoch to `into`.
    ///
    /// Nanoseconds outside `0..<1_000_000_000` are carried into the seconds; the fraction is truncated to
    /// microseconds. Years 0...9999 have four digits as RFC 3339 requires; others print all their digits,
    /// with a `-` before the year if negative.
    public static func format(seconds: Int64, nanoseconds: Int32, into buffer: inout [UInt8]) {
        var seconds = seconds
        var nanos = Int64(nanoseconds)
        if nanos < 0 || nanos >= 1_000_000_000 {
            let carry = floorDivide(nanos, 1_000_000_000)
            seconds = seconds &+ carry
            nanos -= carry * 1_000_000_000
        }
        let days = floorDivide(seconds, secondsPerDay)
        let secondOfDay = seconds - days * secondsPerDay
        let (year, month, day) = civilFromDays(days)

        if year < 0 { buffer.append(UInt8(ascii: "-")) }
        appendDigits(year.magnitude, minimumWidth: 4, to: &buffer)
        buffer.append(UInt8(ascii: "-"))
        appendDigits(UInt64(month), minimumWidth: 2, to: &buffer)
        buffer.append(UInt8(ascii: "-"))
        appendDigits(UInt64(day), minimumWidth: 2, to: &buffer)
        buffer.append(UInt8(ascii: "T"))
        appendDigits(UInt64(secondOfDay / 3600), minimumWidth: 2, to: &buffer)
        buffer.append(UInt8(ascii: ":"))
        appendDigits(UInt64(secondOfDay % 3600 / 60), minimumWidth: 2, to: &buffer)
        buffer.append(UInt8(ascii: ":"))
        appendDigits(UInt64(secondOfDay % 60), minimumWidth: 2, to: &buffer)
        buffer.append(UInt8(ascii: "."))
        appendDigits(UInt64(nanos / 1000), minimumWidth: 6, to: &buffer)
        buffer.append(UInt8(ascii: "Z"))
    }

    /// The timestamp as a `String`; see `format(seconds:nanoseconds:into:)`.
    public static func string(seconds: Int64, nanoseconds: Int32) -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(27)
        format(seconds: seconds, nanoseconds: nanoseconds, into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Year, month (1...12) and day (1...31) of the proleptic Gregorian calendar for a count of days since
    /// 1970-01-01. Hinnant's `civil_from_days`: eras of 400 years (146 097 days) starting on March 1, so
    /// the leap day is the last day of a year.
    static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, Int(month), Int(day))
    }

    /// `a / b` rounded toward negative infinity, for positive `b`.
    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        return a % b < 0 ? quotient - 1 : quotient
    }

    /// Appends the decimal digits of `value`, zero-padded to `minimumWidth`.
    private static func appendDigits(_ value: UInt64, minimumWidth: Int, to buffer: inout [UInt8]) {
        var width = 1
        var power: UInt64 = 1
        while power <= value / 10 {
            power *= 10
            width += 1
        }
        for _ in width..<max(width, minimumWidth) { buffer.append(UInt8(ascii: "0")) }
        var remaining = value
        while power > 0 {
            buffer.append(UInt8(ascii: "0") + UInt8(remaining / power))
            remaining %= power
            power /= 10
        }
    }
}
