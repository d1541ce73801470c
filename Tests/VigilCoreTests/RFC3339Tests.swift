import Testing
import VigilCore

/// RFC 3339 formatting against known instants and a naive calendar.
@Suite struct RFC3339Tests {
    /// Known instants, cross-checked with Python's `calendar.timegm`.
    @Test(
        arguments: [
            (Int64(0), Int32(0), "1970-01-01T00:00:00.000000Z"),
            (1_709_210_096, 0, "2024-02-29T12:34:56.000000Z"),
            (1_795_755_215, 123_456_789, "2026-11-27T04:53:35.123456Z"),
            (4_107_542_399, 999_999_999, "2100-02-28T23:59:59.999999Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00.000000Z"),
            (951_782_400, 1_000, "2000-02-29T00:00:00.000001Z"),
            (2_147_483_648, 0, "2038-01-19T03:14:08.000000Z"),
            (253_402_300_799, 999_999_000, "9999-12-31T23:59:59.999999Z"),
            (-1, 0, "1969-12-31T23:59:59.000000Z"),
        ] as [(Int64, Int32, String)]
    )
    func knownInstants(seconds: Int64, nanoseconds: Int32, expected: String) {
        #expect(RFC3339.string(seconds: seconds, nanoseconds: nanoseconds) == expected)
    }

    /// Nanoseconds outside one second carry into the seconds instead of printing nonsense.
    @Test func nanosecondsCarry() {
        #expect(RFC3339.string(seconds: 0, nanoseconds: 1_500_000_000) == "1970-01-01T00:00:01.500000Z")
        #expect(RFC3339.string(seconds: 1, nanoseconds: -500_000_000) == "1970-01-01T00:00:00.500000Z")
    }

    /// `format` appends; it does not replace what is in the buffer.
    @Test func formatAppends() {
        var buffer = Array("t=".utf8)
        RFC3339.format(seconds: 0, nanoseconds: 0, into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "t=1970-01-01T00:00:00.000000Z")
    }

    /// Every day from 1970 to 2400 matches a calendar computed by counting days, which covers every leap
    /// rule (4, 100, 400) and every month boundary.
    @Test func everyDayMatchesNaiveCalendar() {
        var days: Int64 = 0
        for year in 1970...2400 {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            for (monthIndex, length) in lengths.enumerated() {
                for day in 1...length {
                    let expected = "\(year)-\(pad(monthIndex + 1))-\(pad(day))T23:59:59.000000Z"
                    let actual = RFC3339.string(seconds: days * 86_400 + 86_399, nanoseconds: 0)
                    if actual != expected {
                        Issue.record("day \(days): \(actual) != \(expected)")
                        return
                    }
                    days += 1
                }
            }
        }
    }

    /// Two-digit zero padding.
    private func pad(_ value: Int) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}
