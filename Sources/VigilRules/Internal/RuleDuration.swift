/// The one duration syntax of rule files: `500ms`, `5s`, `2m`, `1h`, or a bare whole number of seconds.
///
/// No fractions, no blanks, no combined forms (`1m30s`): `90s` says the same thing. Durations are kept in
/// milliseconds, the unit every timer in the daemon takes.
enum RuleDuration {
    /// The longest duration a rule may give (24 hours); longer values are almost certainly a typo.
    static let longestMilliseconds = 86_400_000

    /// How the forms are described in errors.
    static let expectedForms = "a duration such as 5s, 500ms, 2m, 1h, or a whole number of seconds"

    /// The duration in milliseconds, or nil when `text` is not a duration. Zero is returned as 0; too
    /// long values are returned as they are (the caller reports both, naming the key).
    static func milliseconds(_ text: String) -> Int? {
        let units: [(suffix: String, factor: Int)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        var digits = Substring(text)
        var factor = 1000
        for unit in units where text.hasSuffix(unit.suffix) {
            digits = text.dropLast(unit.suffix.count)
            factor = unit.factor
            break
        }
        // Nine digits of hours still fit in an Int; more is never meant.
        guard !digits.isEmpty, digits.utf8.count <= 9,
            digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let value = Int(digits)
        else { return nil }
        return value * factor
    }
}
