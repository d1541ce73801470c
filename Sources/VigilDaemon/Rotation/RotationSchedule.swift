import VigilRules
import VigilSystem

/// When `every:` rotations are due: the boundaries of hours, days, weeks (Monday 00:00) and months on the
/// host's wall clock. The calendar arithmetic is pure (broken-down local time in, broken-down local time
/// out: month ends, leap years, weekdays); turning local times into instants goes through a `Zone`, the
/// system's (`localtime_r`/`mktime`) or, in tests, one with a summer-time rule of its own, so daylight
/// saving is tested without changing `TZ` in a test process that runs other tests at once.
///
/// - Hourly boundaries are computed on the instant: the start of the current local hour (now minus the
///   minutes and seconds shown) plus 3,600 s. Across a spring-forward gap that is the first hour that exists
///   (01:00 CET + 1 h = 03:00 CEST); across a fall-back the repeated hour rotates twice, as a wall clock
///   that shows 02:00 twice would.
/// - Daily, weekly and monthly boundaries are local midnights, converted with `mktime` (`tm_isdst = -1`):
///   a day with a summer-time change is 23 or 25 hours long, and a midnight that does not exist (zones
///   that change at 00:00) becomes the first instant after the gap.
enum RotationSchedule {
    /// Converts between instants (seconds since the epoch) and local time.
    struct Zone: Sendable {
        let localTime: @Sendable (Int64) -> LocalTime
        let instant: @Sendable (LocalTime) -> Int64

        /// The host's zone (`TZ`, else `/etc/localtime`).
        static let system = Zone(localTime: LocalClock.localTime, instant: LocalClock.seconds)
    }

    // MARK: Calendar (pure)

    /// Days in `month` (1–12) of `year`, Gregorian.
    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    static func isLeapYear(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    /// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The civil date of a day count since 1970-01-01 (`civil_from_days`).
    static func civilDate(daysSinceEpoch days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// 0 = Sunday … 6 = Saturday.
    static func weekday(year: Int, month: Int, day: Int) -> Int {
        let days = daysSinceEpoch(year: year, month: month, day: day)
        return ((days % 7) + 7 + 4) % 7  // 1970-01-01 was a Thursday
    }

    /// The local midnight that starts the day, week (Monday) or month containing `time`. Hourly: the start of
    /// its hour.
    static func periodStart(containing time: LocalTime, _ interval: RotationInterval) -> LocalTime {
        switch interval {
        case .hourly:
            return LocalTime(year: time.year, month: time.month, day: time.day, hour: time.hour)
        case .daily:
            return LocalTime(year: time.year, month: time.month, day: time.day)
        case .weekly:
            let back = (weekday(year: time.year, month: time.month, day: time.day) + 6) % 7
            let date = civilDate(
                daysSinceEpoch: daysSinceEpoch(year: time.year, month: time.month, day: time.day) - back
            )
            return LocalTime(year: date.year, month: date.month, day: date.day)
        case .monthly:
            return LocalTime(year: time.year, month: time.month, day: 1)
        }
    }

    /// The start of the period after the one containing `time`.
    static func nextPeriodStart(after time: LocalTime, _ interval: RotationInterval) -> LocalTime {
        let start = periodStart(containing: time, interval)
        let days = daysSinceEpoch(year: start.year, month: start.month, day: start.day)
        switch interval {
        case .hourly:
            if start.hour < 23 {
                return LocalTime(year: start.year, month: start.month, day: start.day, hour: start.hour + 1)
            }
            let date = civilDate(daysSinceEpoch: days + 1)
            return LocalTime(year: date.year, month: date.month, day: date.day)
        case .daily:
            let date = civilDate(daysSinceEpoch: days + 1)
            return LocalTime(year: date.year, month: date.month, day: date.day)
        case .weekly:
            let date = civilDate(daysSinceEpoch: days + 7)
            return LocalTime(year: date.year, month: date.month, day: date.day)
        case .monthly:
            return start.month == 12
                ? LocalTime(year: start.year + 1, month: 1, day: 1)
                : LocalTime(year: start.year, month: start.month + 1, day: 1)
        }
    }

    // MARK: Instants

    /// The latest boundary at or before `now` (seconds since the epoch).
    static func lastBoundary(atOrBefore now: Int64, _ interval: RotationInterval, zone: Zone = .system) -> Int64 {
        let local = zone.localTime(now)
        if interval == .hourly { return now - Int64(local.minute * 60 + local.second) }
        let boundary = zone.instant(periodStart(containing: local, interval))
        // A midnight inside a gap is moved past it; it still cannot be after a time of that same period.
        return min(boundary, now)
    }

    /// The first boundary after `now`.
    static func nextBoundary(after now: Int64, _ interval: RotationInterval, zone: Zone = .system) -> Int64 {
        let local = zone.localTime(now)
        if interval == .hourly { return now - Int64(local.minute * 60 + local.second) + 3600 }
        var next = zone.instant(nextPeriodStart(after: local, interval))
        if next <= now {
            // Only a zone whose conversion moved the midnight back (it never should); never loop on it.
            next = now + 60
        }
        return next
    }
}
