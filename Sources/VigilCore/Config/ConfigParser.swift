/// Parses `key = value` config files (the INI dialect most daemons read) into a `ConfigSnapshot`.
///
/// The grammar, line by line (lines end at `\n`; a `\r` before it is dropped, so CRLF files parse the same):
/// - a UTF-8 byte order mark at the very start is skipped; a missing final newline is fine;
/// - blank lines, and lines whose first non-blank byte is `#` or `;`, are comments;
/// - `[name]` starts a section: later keys are stored as `name.key` (name trimmed and lowercased);
/// - `key = value`, with any blanks (spaces, tabs) around `=` or none: the key is trimmed and stored
///   lowercased in `ConfigEntry.key`, as written in `ConfigEntry.rawKey`;
/// - an unquoted value ends at an inline comment, which is `#` or `;` *preceded by a blank*. So
///   `url = http://x/#frag` keeps `#frag`, `verify_ssl = false  # TODO` gives `false`, and
///   `verify_ssl=False;comment` gives `False;comment` (no blank before `;`, so it is part of the value);
/// - a value starting with `"` or `'` runs to the matching closing quote, so `#` and `;` inside quotes are
///   kept. Inside double quotes `\"` is a quote and `\\` a backslash; any other backslash is kept as
///   written. Single quotes have no escapes. After the closing quote only blanks or a comment may follow;
/// - a later definition of a key replaces an earlier one.
///
/// Lines that fit none of these become a `ConfigIssue` (no `=`, an empty key, an unterminated quote, text
/// after a closing quote, a broken section header) and are reported, never guessed at. An unterminated
/// quote or text after a closing quote still yields the entry, so a rule on that key keeps seeing it.
///
/// The parser walks the bytes once and builds `String`s only for keys, values and messages. It does no I/O.
public enum ConfigParser {
    /// Parses config bytes. Returns `.rejected` for content that is not a text config: a NUL byte or
    /// ill-formed UTF-8 anywhere, reported with its byte offset.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> ConfigParseResult {
        if let problem = UTF8Scan.firstProblem(in: bytes) {
            switch problem {
            case .nul(let offset):
                return .rejected("contains a NUL byte at offset \(offset); it looks binary, not a key = value config")
            case .invalidUTF8(let offset, let byte):
                return .rejected(
                    "contains invalid UTF-8 at offset \(offset) (byte 0x\(hexByte(byte))); "
                        + "it is not a key = value text config"
                )
            }
        }
        var state = State()
        var start = 0
        let count = bytes.count
        if count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
            start = 3
        }
        var lineNumber = 1
        while start < count {
            var end = start
            while end < count && bytes[end] != Byte.newline { end += 1 }
            var lineEnd = end
            if lineEnd > start && bytes[lineEnd - 1] == Byte.carriageReturn { lineEnd -= 1 }
            parseLine(bytes, start, lineEnd, lineNumber, &state)
            start = end + 1
            lineNumber += 1
        }
        return .snapshot(ConfigSnapshot(entries: state.entries, issues: state.issues))
    }

    /// Parses config text. A convenience for tests and callers that already hold a `String`; a `String`
    /// is always valid UTF-8, so only a NUL character can make it rejected.
    public static func parse(_ text: String) -> ConfigParseResult {
        if let result = text.utf8.withContiguousStorageIfAvailable({ parse(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(text.utf8).withUnsafeBytes { parse($0) }
    }

    /// The bytes the grammar gives a meaning to.
    private enum Byte {
        static let newline = UInt8(ascii: "\n")
        static let carriageReturn = UInt8(ascii: "\r")
        static let space = UInt8(ascii: " ")
        static let tab = UInt8(ascii: "\t")
        static let hash = UInt8(ascii: "#")
        static let semicolon = UInt8(ascii: ";")
        static let equals = UInt8(ascii: "=")
        static let openBracket = UInt8(ascii: "[")
        static let closeBracket = UInt8(ascii: "]")
        static let doubleQuote = UInt8(ascii: "\"")
        static let singleQuote = UInt8(ascii: "'")
        static let backslash = UInt8(ascii: "\\")
    }

    /// What the parser carries from line to line.
    private struct State {
        /// The current section name, lowercased, or nil before the first header.
        var section: String?
        /// Settings found so far, by lookup key.
        var entries: [String: ConfigEntry] = [:]
        /// Lines found so far that could not be understood.
        var issues: [ConfigIssue] = []
    }

    /// True for the blanks the grammar skips: space and tab.
    @inline(__always)
    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == Byte.space || byte == Byte.tab
    }

    /// True when `byte` starts a comment.
    @inline(__always)
    private static func isCommentStart(_ byte: UInt8) -> Bool {
        byte == Byte.hash || byte == Byte.semicolon
    }

    /// The first index in `from..<to` that is not a blank, or `to`.
    private static func skipBlanks(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> Int {
        var index = from
        while index < to && isBlank(bytes[index]) { index += 1 }
        return index
    }

    /// The end of `from..<to` with trailing blanks removed.
    private static func trimTrailingBlanks(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> Int {
        var end = to
        while end > from && isBlank(bytes[end - 1]) { end -= 1 }
        return end
    }

    /// True when `from..<to` holds only blanks, optionally followed by a comment.
    private static func isBlankOrComment(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> Bool {
        let index = skipBlanks(bytes, from, to)
        return index == to || isCommentStart(bytes[index])
    }

    /// A `String` from bytes already checked to be UTF-8.
    private static func string(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[from..<to]), as: UTF8.self)
    }

    /// Two lowercase hex digits, for messages.
    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]], as: UTF8.self)
    }

    /// Handles one line, `from..<to`, without its line terminator.
    private static func parseLine(
        _ bytes: UnsafeRawBufferPointer,
        _ from: Int,
        _ to: Int,
        _ lineNumber: Int,
        _ state: inout State
    ) {
        let first = skipBlanks(bytes, from, to)
        if first == to || isCommentStart(bytes[first]) { return }
        if bytes[first] == Byte.openBracket {
            parseSectionHeader(bytes, first, to, lineNumber, &state)
            return
        }
        var equals = first
        while equals < to && bytes[equals] != Byte.equals { equals += 1 }
        guard equals < to else {
            state.issues.append(ConfigIssue(line: lineNumber, reason: "no '=' in line; expected key = value"))
            return
        }
        let keyEnd = trimTrailingBlanks(bytes, first, equals)
        guard keyEnd > first else {
            state.issues.append(ConfigIssue(line: lineNumber, reason: "empty key before '='; expected key = value"))
            return
        }
        let rawKey = string(bytes, first, keyEnd)
        let value = parseValue(bytes, equals + 1, to, lineNumber, &state)
        let lowered = rawKey.lowercased()
        let key = state.section.map { $0 + "." + lowered } ?? lowered
        state.entries[key] = ConfigEntry(key: key, rawKey: rawKey, value: value, line: lineNumber)
    }

    /// Handles a `[section]` line; `from` is the index of `[`.
    private static func parseSectionHeader(
        _ bytes: UnsafeRawBufferPointer,
        _ from: Int,
        _ to: Int,
        _ lineNumber: Int,
        _ state: inout State
    ) {
        var close = from + 1
        while close < to && bytes[close] != Byte.closeBracket { close += 1 }
        guard close < to else {
            state.issues.append(ConfigIssue(line: lineNumber, reason: "no ']' after '['; expected [section]"))
            return
        }
        if !isBlankOrComment(bytes, close + 1, to) {
            state.issues.append(
                ConfigIssue(line: lineNumber, reason: "text after ']' in section header; expected [section]")
            )
        }
        let nameStart = skipBlanks(bytes, from + 1, close)
        let nameEnd = trimTrailingBlanks(bytes, nameStart, close)
        guard nameEnd > nameStart else {
            // Keys after `[]` belong to no section, which is what the empty header says.
            state.issues.append(ConfigIssue(line: lineNumber, reason: "empty section name in '[]'"))
            state.section = nil
            return
        }
        state.section = string(bytes, nameStart, nameEnd).lowercased()
    }

    /// The value of a setting, from just after `=` to the end of the line `to`.
    private static func parseValue(
        _ bytes: UnsafeRawBufferPointer,
        _ from: Int,
        _ to: Int,
        _ lineNumber: Int,
        _ state: inout State
    ) -> String {
        let start = skipBlanks(bytes, from, to)
        guard start < to else { return "" }
        let opening = bytes[start]
        if opening == Byte.doubleQuote || opening == Byte.singleQuote {
            return parseQuoted(bytes, start, to, lineNumber, &state)
        }
        var end = start
        while end < to {
            if isCommentStart(bytes[end]) && isBlank(bytes[end - 1]) { break }
            end += 1
        }
        return string(bytes, start, trimTrailingBlanks(bytes, start, end))
    }

    /// A quoted value; `from` is the index of the opening quote.
    private static func parseQuoted(
        _ bytes: UnsafeRawBufferPointer,
        _ from: Int,
        _ to: Int,
        _ lineNumber: Int,
        _ state: inout State
    ) -> String {
        let quote = bytes[from]
        let escapes = quote == Byte.doubleQuote
        // Filled only once an escape is met, so most quoted values are sliced straight from the input.
        var unescaped: [UInt8]? = nil
        var index = from + 1
        var runStart = index
        while index < to {
            let byte = bytes[index]
            if byte == quote {
                let value: String
                if var built = unescaped {
                    built.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
                    value = String(decoding: built, as: UTF8.self)
                } else {
                    value = string(bytes, runStart, index)
                }
                if !isBlankOrComment(bytes, index + 1, to) {
                    state.issues.append(
                        ConfigIssue(
                            line: lineNumber,
                            reason: "text after the closing quote; expected only blanks or a comment after it"
                        )
                    )
                }
                return value
            }
            if escapes && byte == Byte.backslash && index + 1 < to {
                let next = bytes[index + 1]
                if next == Byte.doubleQuote || next == Byte.backslash {
                    var built = unescaped ?? []
                    built.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
                    built.append(next)
                    unescaped = built
                    index += 2
                    runStart = index
                    continue
                }
            }
            index += 1
        }
        let quoteName = quote == Byte.doubleQuote ? "double" : "single"
        state.issues.append(
            ConfigIssue(
                line: lineNumber,
                reason: "unterminated \(quoteName) quote; the value runs to the end of the line"
            )
        )
        let end = trimTrailingBlanks(bytes, runStart, to)
        if var built = unescaped {
            built.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<end]))
            return String(decoding: built, as: UTF8.self)
        }
        return string(bytes, runStart, end)
    }
}
