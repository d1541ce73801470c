import Testing
import VigilCore

/// Reading alert records back from their JSON lines: `AlertRecord(jsonLine:)` is the inverse of
/// `encodeJSONLine(into:)`, strict about JSON, tolerant of members it does not know.
@Suite struct AlertRecordDecodeTests {
    /// `record` as it comes back from JSON: the time keeps microseconds only.
    static func afterRoundTrip(_ record: AlertRecord) -> AlertRecord {
        var copy = record
        copy.timeNanoseconds = record.timeNanoseconds / 1000 * 1000
        return copy
    }

    /// Every sample (unicode, control characters, quotes, backslashes, labels, changes with null, no path)
    /// decodes to itself.
    @Test(arguments: SampleAlerts.all)
    func roundTrip(record: AlertRecord) throws {
        var line: [UInt8] = []
        record.encodeJSONLine(into: &line)
        let decoded = try AlertRecord(jsonLine: line)
        #expect(decoded == Self.afterRoundTrip(record))
        // Without its newline, and from a non-contiguous collection, too.
        #expect(try AlertRecord(jsonLine: line.dropLast()) == Self.afterRoundTrip(record))
        #expect(try AlertRecord(jsonLine: record.jsonLine().utf8) == Self.afterRoundTrip(record))
    }

    /// Empty changes and labels, a nil path, and every control character, astral-plane characters and
    /// U+FFFF survive.
    @Test func roundTripOfEdgeCases() throws {
        var controls = ""
        for value in 0..<0x20 { controls.unicodeScalars.append(Unicode.Scalar(UInt8(value))) }
        let record = AlertRecord(
            id: "",
            timeSeconds: -86_400,
            timeNanoseconds: 1_000,
            host: controls + "\u{7F}",
            rule: "日本語 \u{10FFFF} \u{FFFF} 😀",
            severity: "\\\"\\",
            state: .event,
            kind: "/",
            path: nil,
            message: "",
            changes: [],
            fingerprint: "0",
            labels: [:]
        )
        let line = record.jsonLine()
        #expect(!line.contains("\"path\"") && !line.contains("\"labels\""))
        #expect(try AlertRecord(jsonLine: line.utf8) == record)
    }

    /// Times far from now come back exactly (to the microsecond), across leap years and before 1970.
    @Test(arguments: [
        (Int64(0), Int32(0)), (951_782_400, 500_000_000), (-1, 999_999_000), (253_402_300_799, 999_999_000),
        (-62_135_596_800, 0), (1_709_210_096, 123_456_000),
    ])
    func timesRoundTrip(seconds: Int64, nanoseconds: Int32) throws {
        let text = RFC3339.string(seconds: seconds, nanoseconds: nanoseconds)
        let parsed = try #require(RFC3339.parse(text))
        #expect(parsed.seconds == seconds && parsed.nanoseconds == nanoseconds, "\(text)")
    }

    /// RFC 3339 beyond what Vigil writes: offsets, fewer or more fraction digits.
    @Test func timeParsingAcceptsOffsetsAndFractions() throws {
        let utc = try #require(RFC3339.parse("2026-11-27T04:53:35Z"))
        #expect(utc.seconds == 1_795_755_215 && utc.nanoseconds == 0)
        let offset = try #require(RFC3339.parse("2026-11-27T06:53:35.5+02:00"))
        #expect(offset.seconds == 1_795_755_215 && offset.nanoseconds == 500_000_000)
        let nanos = try #require(RFC3339.parse("2026-11-27T04:53:35.123456789Z"))
        #expect(nanos.nanoseconds == 123_456_789)
        for bad in [
            "2026-02-30T00:00:00Z", "2026-11-27 04:53:35Z", "2026-11-27T24:00:00Z", "2026-11-27T04:53:60Z",
            "2026-11-27T04:53:35", "2026-11-27T04:53:35.Z", "2026-11-27T04:53:35.1234567890Z", "26-11-27T04:53:35Z",
            "2026-11-27T04:53:35Zjunk",
        ] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }

    /// Escapes the writer never uses (`\/`, `\b`, `\f`, `\u` for printable characters, surrogate pairs)
    /// decode as JSON says; unknown members of every JSON type are skipped.
    @Test func escapesAndUnknownMembers() throws {
        let line =
            #"{"future":{"a":[1,-2.5e+3,true,false,null,{"b":"\u00e9"}],"c":{}},"id":"x","time":"2026-11-27T04:53:35.123456Z","host":"a\/b\b\f\u0041\u00E9\uD83D\uDE80","rule":"r","severity":"info","state":"resolved","kind":"k","path":null,"message":"m","changes":[{"key":"k","old":null,"new":"n","why":[0]}],"fingerprint":"f","labels":{"a":"1"},"n":0,"z":[]}"#
        let record = try AlertRecord(jsonLine: Array(line.utf8))
        #expect(record.host == "a/b\u{08}\u{0C}Aé🚀")
        #expect(record.path == nil)
        #expect(record.state == .resolved)
        #expect(record.changes == [ConfigChange(key: "k", old: nil, new: "n")])
        #expect(record.labels == ["a": "1"])
        #expect(record.timeSeconds == 1_795_755_215 && record.timeNanoseconds == 123_456_000)
    }

    /// Malformed lines fail with the offset where reading stopped and what was expected there.
    @Test(arguments: [
        // Truncated.
        (#"{"id":"x","time":"2026-11-27T04:53:35.123456Z","host":"h"#, 56, "'\"' closing the string"),
        (#"{"id":"x""#, 9, "',' or '}' after a member"),
        ("", 0, "'{' starting the record"),
        (#"{"id""#, 5, "':' after the member name"),
        // Wrong types.
        (#"{"id":1}"#, 6, "a string for 'id'"),
        (#"{"changes":{}}"#, 11, "an array for 'changes'"),
        (#"{"changes":[{"old":null}]}"#, 12, "member 'key' in the change"),
        (#"{"labels":{"a":1}}"#, 15, "a string for 'labels.a'"),
        (#"{"path":true}"#, 8, "a string or null for 'path'"),
        (#"{"state":"burning"}"#, 9, "one of \"firing\""),
        (#"{"time":"yesterday"}"#, 8, "an RFC 3339 timestamp"),
        // Bad escapes and strings.
        (#"{"id":"\x"}"#, 7, "one of \\\""),
        (#"{"id":"\u12G4"}"#, 11, "a hex digit in a \\u escape"),
        (#"{"id":"\uDE80"}"#, 7, "a high surrogate"),
        (#"{"id":"\uD83Dx"}"#, 13, "a low surrogate"),
        (#"{"id":"\uD83D\u0041"}"#, 13, "a low surrogate"),
        ("{\"id\":\"a\tb\"}", 8, "no control character"),
        // Bad JSON elsewhere.
        (#"{"x":01}"#, 6, "',' or '}' after a member"),
        (#"{"x":-}"#, 6, "a digit in the number"),
        (#"{"x":nul}"#, 5, "a JSON value"),
        (#"{"x":[1,]}"#, 8, "a JSON value"),
        (#"{"x":1,}"#, 7, "a member name"),
        (#"{} {}"#, 3, "the end of the line"),
    ])
    func malformedLinesFail(line: String, offset: Int, expected: String) {
        do {
            _ = try AlertRecord(jsonLine: Array(line.utf8))
            Issue.record("'\(line)' decoded")
        } catch {
            #expect(error.offset == offset, "\(error)")
            #expect(error.expected.hasPrefix(expected), "\(error)")
            #expect(error.description.hasPrefix("Failed to read an alert record at byte \(offset): expected "))
        }
    }

    /// A record without a required member names the member, at the closing brace.
    @Test func missingMemberIsNamed() throws {
        var line = SampleAlerts.eventsLost.jsonLine()
        line = line.replacingOccurrences(#","host":"h""#, with: "")
        do {
            _ = try AlertRecord(jsonLine: line.utf8)
            Issue.record("a record without host decoded")
        } catch {
            #expect(error.expected == "member 'host' in the record")
            #expect(error.offset == line.utf8.count - 2)
        }
    }

    /// Ill-formed UTF-8 inside a string is refused, at the string's start.
    @Test func illFormedUTF8IsRefused() {
        var line = Array(#"{"id":"ab"}"#.utf8)
        line.insert(0xC3, at: 8)  // a lead byte with no continuation
        #expect(throws: AlertRecordDecodingError(offset: 6, expected: "well-formed UTF-8 in the string")) {
            try AlertRecord(jsonLine: line)
        }
    }

    /// Nesting deeper than the reader allows is an error, not a stack overflow.
    @Test func deepNestingIsRefused() {
        let line = #"{"x":"# + String(repeating: "[", count: 100_000) + "}"
        #expect(throws: AlertRecordDecodingError.self) { try AlertRecord(jsonLine: line.utf8) }
    }
}

extension String {
    /// Every occurrence of `target` replaced, without Foundation.
    fileprivate func replacingOccurrences(_ target: String, with replacement: String) -> String {
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
