/// Ages of files, for `max_age:` and `sweep:` of rotation rules: the `RuleDuration` forms plus days and weeks
/// (`90d`, `2w`), up to ten years.
///
/// `RuleDuration` stops at 24 hours, which is right for timers and windows and far too short for how long
/// archives are kept. Two forms durations take are refused here, because an age decides which files are
/// deleted and a misread one deletes the wrong files: a bare number (seconds in a duration, but logrotate's
/// `maxage 90` counts days) and `m` (minutes in a duration, months to many readers of `6m`).
enum RuleAge {
    /// The longest age a rule may give: ten years of 365 days.
    static let longestMilliseconds = 3650 * 86_400_000

    /// How the forms are described in errors.
    static let expectedForms = "an age such as 90d, 2w or 12h (d: days, w: weeks, h: hours, s: seconds)"

    /// Why a text is not an age.
    enum Problem: Error, Equatable {
        /// Not an age at all.
        case malformed
        /// A number without a unit.
        case bareNumber
        /// A number of `m`: minutes or months?
        case ambiguousMinutes
        /// Zero.
        case zero
        /// More than ten years.
        case tooLong
    }

    /// The age in milliseconds, or why `text` is not one.
    static func milliseconds(_ text: String) -> Result<Int, Problem> {
        let units: [(suffix: String, factor: Int)] = [("d", 86_400_000), ("w", 7 * 86_400_000)]
        for unit in units where text.hasSuffix(unit.suffix) {
            let digits = text.dropLast(unit.suffix.count)
            // Nine digits of weeks still fit in an Int; more is never meant.
            guard !digits.isEmpty, digits.utf8.count <= 9,
                digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                let value = Int(digits)
            else { return .failure(.malformed) }
            return checked(value * unit.factor)
        }
        if !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
            return .failure(.bareNumber)
        }
        guard let milliseconds = RuleDuration.milliseconds(text) else { return .failure(.malformed) }
        if text.hasSuffix("m") && !text.hasSuffix("ms") { return .failure(.ambiguousMinutes) }
        return checked(milliseconds)
    }

    /// `milliseconds` when it is above zero and at most ten years.
    private static func checked(_ milliseconds: Int) -> Result<Int, Problem> {
        if milliseconds == 0 { return .failure(.zero) }
        if milliseconds > longestMilliseconds { return .failure(.tooLong) }
        return .success(milliseconds)
    }

    /// An age as the docs write it: days when whole (`90d`, `14d`), else hours, else seconds, else
    /// milliseconds.
    static func text(_ milliseconds: Int) -> String {
        if milliseconds % 86_400_000 == 0 { return "\(milliseconds / 86_400_000)d" }
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}
