/// Why a JSON line is not an alert record: the byte offset in the line where reading stopped, and what was
/// expected there.
public struct AlertRecordDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Offset of the offending byte from the start of the line (0-based).
    public let offset: Int
    /// What should have been there, or what is wrong with what is: "':' after the member name",
    /// "a string for 'host'", "a hex digit in a \u escape".
    public let expected: String

    public init(offset: Int, expected: String) {
        self.offset = offset
        self.expected = expected
    }

    public var description: String {
        "Failed to read an alert record at byte \(offset): expected \(expected)"
    }
}

extension AlertRecord {
    /// Reads back a line `encodeJSONLine(into:)` wrote (with or without its newline), for the spool and the
    /// sinks that hold records as bytes.
    ///
    /// Strict JSON (RFC 8259): every escape including `\uXXXX` surrogate pairs, well-formed UTF-8, no
    /// control characters inside strings, nothing after the object but whitespace. Members this version does
    /// not know, of any JSON type, are skipped, so records written by a newer Vigil still decode. `time` is
    /// RFC 3339 (UTC `Z` or a numeric offset) with up to nine fraction digits; `path`, `changes` and `labels`
    /// may be absent; `changes[].old`/`new` may be `null`.
    public init(jsonLine: some Collection<UInt8>) throws(AlertRecordDecodingError) {
        let decoded: Result<AlertRecord, AlertRecordDecodingError>? = jsonLine.withContiguousStorageIfAvailable {
            Self.decode($0)
        }
        switch decoded ?? Array(jsonLine).withUnsafeBufferPointer({ Self.decode($0) }) {
        case .success(let record): self = record
        case .failure(let error): throw error
        }
    }

    /// Decodes one record from contiguous bytes.
    private static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<AlertRecord, AlertRecordDecodingError> {
        var reader = AlertJSONReader(bytes: bytes)
        do throws(AlertRecordDecodingError) {
            return .success(try reader.record())
        } catch {
            return .failure(error)
        }
    }
}

/// A small strict JSON reader over the bytes of one line, with just the calls an alert record needs.
/// Recursion (for skipped values) is bounded by `maximumDepth`, so hostile input cannot overflow the stack.
struct AlertJSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    /// Nesting allowed inside a skipped value.
    static let maximumDepth = 64

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// An error at the current position.
    func failure(_ expected: String, at offset: Int? = nil) -> AlertRecordDecodingError {
        AlertRecordDecodingError(offset: offset ?? index, expected: expected)
    }

    /// The whole record: one object, then only whitespace.
    mutating func record() throws(AlertRecordDecodingError) -> AlertRecord {
        var id: String?
        var time: (seconds: Int64, nanoseconds: Int32)?
        var host: String?
        var rule: String?
        var severity: String?
        var state: AlertState?
        var kind: String?
        var path: String?
        var message: String?
        var changes: [ConfigChange] = []
        var fingerprint: String?
        var labels: [String: String] = [:]

        skipWhitespace()
        try expect(UInt8(ascii: "{"), "'{' starting the record")
        let end = try members { reader, name throws(AlertRecordDecodingError) in
            switch name {
            case "id": id = try reader.string(for: name)
            case "time":
                let start = reader.index
                let text = try reader.string(for: name)
                guard let parsed = RFC3339.parse(text) else {
                    throw reader.failure(
                        "an RFC 3339 timestamp such as \"2026-11-27T04:53:35.123456Z\" for 'time'",
                        at: start
                    )
                }
                time = parsed
            case "host": host = try reader.string(for: name)
            case "rule": rule = try reader.string(for: name)
            case "severity": severity = try reader.string(for: name)
            case "state":
                let start = reader.index
                guard let value = AlertState(rawValue: try reader.string(for: name)) else {
                    throw reader.failure("one of \"firing\", \"resolved\", \"event\" for 'state'", at: start)
                }
                state = value
            case "kind": kind = try reader.string(for: name)
            case "path": path = try reader.stringOrNull(for: name)
            case "message": message = try reader.string(for: name)
            case "changes": changes = try reader.changes()
            case "fingerprint": fingerprint = try reader.string(for: name)
            case "labels": labels = try reader.labels()
            default: try reader.skipValue(depth: 0)
            }
        }
        skipWhitespace()
        guard index == bytes.count else { throw failure("the end of the line after the record") }

        func required<T>(_ value: T?, _ name: String) throws(AlertRecordDecodingError) -> T {
            guard let value else { throw failure("member '\(name)' in the record", at: end) }
            return value
        }
        let when = try required(time, "time")
        return AlertRecord(
            id: try required(id, "id"),
            timeSeconds: when.seconds,
            timeNanoseconds: when.nanoseconds,
            host: try required(host, "host"),
            rule: try required(rule, "rule"),
            severity: try required(severity, "severity"),
            state: try required(state, "state"),
            kind: try required(kind, "kind"),
            path: path,
            message: try required(message, "message"),
            changes: changes,
            fingerprint: try required(fingerprint, "fingerprint"),
            labels: labels
        )
    }

    /// Reads the members of an object whose `{` was just read, calling `member` with each name once the
    /// reader stands at its value (which `member` must read). Returns the offset of the closing `}`.
    @discardableResult
    mutating func members(
        _ member: (inout AlertJSONReader, String) throws(AlertRecordDecodingError) -> Void
    ) throws(AlertRecordDecodingError) -> Int {
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return index - 1
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw failure("a member name in double quotes") }
            let name = try string(for: nil)
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after the member name")
            skipWhitespace()
            try member(&self, name)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","):
                index += 1
            case UInt8(ascii: "}"):
                index += 1
                return index - 1
            default:
                throw failure("',' or '}' after a member")
            }
        }
    }

    /// `changes`: an array of `{"key": string, "old": string|null, "new": string|null}`.
    mutating func changes() throws(AlertRecordDecodingError) -> [ConfigChange] {
        try expect(UInt8(ascii: "["), "an array for 'changes'")
        var changes: [ConfigChange] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            return changes
        }
        while true {
            skipWhitespace()
            let start = index
            try expect(UInt8(ascii: "{"), "an object in 'changes'")
            var key: String?
            var old: String?
            var new: String?
            try members { reader, name throws(AlertRecordDecodingError) in
                switch name {
                case "key": key = try reader.string(for: "changes[].key")
                case "old": old = try reader.stringOrNull(for: "changes[].old")
                case "new": new = try reader.stringOrNull(for: "changes[].new")
                default: try reader.skipValue(depth: 1)
                }
            }
            guard let key else { throw failure("member 'key' in the change", at: start) }
            changes.append(ConfigChange(key: key, old: old, new: new))
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return changes
            default: throw failure("',' or ']' in 'changes'")
            }
        }
    }

    /// `labels`: an object of string values.
    mutating func labels() throws(AlertRecordDecodingError) -> [String: String] {
        try expect(UInt8(ascii: "{"), "an object for 'labels'")
        var labels: [String: String] = [:]
        try members { reader, name throws(AlertRecordDecodingError) in
            labels[name] = try reader.string(for: "labels." + name)
        }
        return labels
    }

    // MARK: Values

    /// A string value; `name` names the member for the error when it is something else.
    mutating func string(for name: String?) throws(AlertRecordDecodingError) -> String {
        guard peek() == UInt8(ascii: "\"") else {
            throw failure(name.map { "a string for '\($0)'" } ?? "a string")
        }
        let start = index
        index += 1
        var utf8: [UInt8] = []
        while true {
            // Copy the run up to the next quote, backslash or control character in one piece.
            let runStart = index
            while index < bytes.count, bytes[index] >= 0x20, bytes[index] != UInt8(ascii: "\""),
                bytes[index] != UInt8(ascii: "\\")
            {
                index += 1
            }
            utf8.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            guard index < bytes.count else { throw failure("'\"' closing the string that starts at byte \(start)") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                break
            }
            if byte < 0x20 { throw failure("no control character inside a string (write it as \\u00XX)") }
            try escape(into: &utf8)
        }
        guard let text = String(validating: utf8, as: UTF8.self) else {
            throw failure("well-formed UTF-8 in the string", at: start)
        }
        return text
    }

    /// A string value or `null`.
    mutating func stringOrNull(for name: String) throws(AlertRecordDecodingError) -> String? {
        if peek() == UInt8(ascii: "n") {
            try literal("null", "a string or null for '\(name)'")
            return nil
        }
        guard peek() == UInt8(ascii: "\"") else { throw failure("a string or null for '\(name)'") }
        return try string(for: name)
    }

    /// One escape after a backslash (the reader stands on the backslash), appended as UTF-8.
    mutating func escape(into utf8: inout [UInt8]) throws(AlertRecordDecodingError) {
        let start = index
        index += 1
        guard index < bytes.count else { throw failure("an escape character after '\\'") }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var value = try hex4()
            if 0xDC00...0xDFFF ~= value {
                throw failure("a high surrogate (\\uD800-\\uDBFF) before the low surrogate \\u\(hex(value))", at: start)
            }
            if 0xD800...0xDBFF ~= value {
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                else { throw failure("a low surrogate \\uDC00-\\uDFFF after the high surrogate \\u\(hex(value))") }
                index += 2
                let low = try hex4()
                guard 0xDC00...0xDFFF ~= low else {
                    throw failure(
                        "a low surrogate \\uDC00-\\uDFFF after the high surrogate \\u\(hex(value))",
                        at: index - 6
                    )
                }
                value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
            }
            // Surrogates were handled above, so every remaining value is a scalar.
            guard let scalar = Unicode.Scalar(value) else { throw failure("a Unicode scalar", at: start) }
            UTF8.encode(scalar) { utf8.append($0) }
        default:
            throw failure("one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX", at: start)
        }
    }

    /// Four hex digits of a `\u` escape.
    mutating func hex4() throws(AlertRecordDecodingError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard index < bytes.count else { throw failure("four hex digits after \\u") }
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("a hex digit in a \\u escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// `value` as four uppercase hex digits, for messages.
    private func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Skips one value of any JSON type, checking its grammar all the same.
    mutating func skipValue(depth: Int) throws(AlertRecordDecodingError) {
        guard depth < Self.maximumDepth else { throw failure("at most \(Self.maximumDepth) levels of nesting") }
        switch peek() ?? 0 {
        case UInt8(ascii: "\""):
            _ = try string(for: nil)
        case UInt8(ascii: "{"):
            index += 1
            try members { reader, _ throws(AlertRecordDecodingError) in try reader.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                try skipValue(depth: depth + 1)
                skipWhitespace()
                switch peek() {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"):
                    index += 1
                    return
                default: throw failure("',' or ']' in an array")
                }
            }
        case UInt8(ascii: "t"): try literal("true", "a JSON value")
        case UInt8(ascii: "f"): try literal("false", "a JSON value")
        case UInt8(ascii: "n"): try literal("null", "a JSON value")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        default: throw failure("a JSON value")
        }
    }

    /// A number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    mutating func number() throws(AlertRecordDecodingError) {
        if peek() == UInt8(ascii: "-") { index += 1 }
        if peek() == UInt8(ascii: "0") {
            index += 1
        } else {
            guard digits() > 0 else { throw failure("a digit in the number") }
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw failure("a digit after the decimal point") }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw failure("a digit in the exponent") }
        }
    }

    /// Skips decimal digits; returns how many.
    mutating func digits() -> Int {
        let start = index
        while let byte = peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { index += 1 }
        return index - start
    }

    /// The exact bytes of `word` (`true`, `false`, `null`).
    mutating func literal(_ word: StaticString, _ expected: String) throws(AlertRecordDecodingError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw failure(expected) }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] {
            throw failure(expected)
        }
        index += count
    }

    // MARK: Bytes

    /// The current byte, nil at the end.
    func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    /// Consumes `byte` or throws `expected`.
    mutating func expect(_ byte: UInt8, _ expected: String) throws(AlertRecordDecodingError) {
        guard peek() == byte else { throw failure(expected) }
        index += 1
    }

    /// Skips JSON whitespace: space, tab, newline, carriage return.
    mutating func skipWhitespace() {
        while let byte = peek(),
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\t")
                || byte == UInt8(ascii: "\r")
        {
            index += 1
        }
    }
}

extension RFC3339 {
    /// Parses what `format(seconds:nanoseconds:into:)` writes, and RFC 3339 in general: `YYYY-MM-DD`, `T`,
    /// `hh:mm:ss`, an optional fraction of 1 to 9 digits, then `Z` or `±hh:mm`. Years of up to eleven
    /// digits and negative years (as `format` writes them) are accepted, so the arithmetic cannot overflow. Returns seconds and nanoseconds
    /// since the Unix epoch in UTC, nil for anything else (a leap second `:60` included: Unix time has none).
    public static func parse(_ text: String) -> (seconds: Int64, nanoseconds: Int32)? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    /// `parse(_:)` over UTF-8 bytes.
    static func parse(bytes: UnsafeBufferPointer<UInt8>) -> (seconds: Int64, nanoseconds: Int32)? {
        var index = 0
        func number(_ minimum: Int, _ maximum: Int) -> Int64? {
            var value: Int64 = 0
            let start = index
            while index < bytes.count, index - start < maximum, bytes[index] >= UInt8(ascii: "0"),
                bytes[index] <= UInt8(ascii: "9")
            {
                value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                index += 1
            }
            return index - start >= minimum ? value : nil
        }
        func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
        let negative = take(UInt8(ascii: "-"))
        guard let yearDigits = number(4, 11), take(UInt8(ascii: "-")), let month = number(2, 2),
            take(UInt8(ascii: "-")), let day = number(2, 2), take(UInt8(ascii: "T")) || take(UInt8(ascii: "t")),
            let hour = number(2, 2), take(UInt8(ascii: ":")), let minute = number(2, 2), take(UInt8(ascii: ":")),
            let second = number(2, 2)
        else { return nil }
        let year = negative ? -yearDigits : yearDigits
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60,
            second < 60
        else { return nil }
        var nanoseconds: Int64 = 0
        if take(UInt8(ascii: ".")) {
            let start = index
            guard let fraction = number(1, 9) else { return nil }
            var scale = index - start
            nanoseconds = fraction
            while scale < 9 {
                nanoseconds *= 10
                scale += 1
            }
        }
        var offsetSeconds: Int64 = 0
        if take(UInt8(ascii: "Z")) || take(UInt8(ascii: "z")) {
            offsetSeconds = 0
        } else {
            let sign: Int64
            if take(UInt8(ascii: "+")) {
                sign = 1
            } else if take(UInt8(ascii: "-")) {
                sign = -1
            } else {
                return nil
            }
            guard let offsetHours = number(2, 2), take(UInt8(ascii: ":")), let offsetMinutes = number(2, 2),
                offsetHours < 24, offsetMinutes < 60
            else { return nil }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
        }
        guard index == bytes.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return (seconds, Int32(nanoseconds))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date: Hinnant's `days_from_civil`, the inverse of
    /// `civilFromDays`.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Days in `month` of `year` (proleptic Gregorian).
    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2:
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return leap ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
