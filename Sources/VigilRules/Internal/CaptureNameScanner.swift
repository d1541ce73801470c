/// Finds the named groups of a PCRE-style pattern, without judging the rest of its syntax.
///
/// The regex engines (Vectorscan to match, PCRE2 to extract groups) check the syntax when the daemon
/// compiles the patterns; the rule compiler only needs the names, which become alert fields. Recognised:
/// `(?<name>…)`, `(?P<name>…)` and `(?'name'…)`. Skipped: escaped characters (`\(`), `\Q…\E` quoting,
/// character classes (`[(?<x>)]`, `[]a]`, `[^]a]`, `[[:alpha:]]`), comments (`(?#…)`), lookbehinds
/// (`(?<=`, `(?<!`, `(?<*`), and back references and recursions (`(?P=name)`, `(?P>name)`). See `man 3
/// pcre2pattern`, "Named subpatterns".
enum CaptureNameScanner {
    /// One named group as written.
    struct Group: Equatable {
        /// The text between the delimiters (not necessarily a valid name).
        var name: String
        /// Byte offset of the name's first character in the pattern.
        var offset: Int
    }

    /// The named groups of `pattern`, in the order they open. A name whose closing delimiter is missing
    /// is left out (the engine reports the broken group).
    static func scan(_ pattern: String) -> [Group] {
        let bytes = Array(pattern.utf8)
        var groups: [Group] = []
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"):
                if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "Q") {
                    index = endOfQuote(bytes, from: index + 2)
                } else {
                    index += 2
                }
            case UInt8(ascii: "["):
                index = endOfClass(bytes, from: index)
            case UInt8(ascii: "("):
                index = scanGroup(bytes, at: index, into: &groups)
            default:
                index += 1
            }
        }
        return groups
    }

    /// Whether `name` is a valid group name: `[A-Za-z_][A-Za-z0-9_]*` (PCRE2 also allows non-ASCII
    /// letters; Vigil keeps field names ASCII).
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !isDigit(first) else { return false }
        return name.utf8.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") }
    }

    /// A valid name made from `name`: other characters become `_`, and a leading digit gets a `_` before it.
    static func repairedName(_ name: String) -> String {
        var bytes = name.utf8.map { isLetter($0) || isDigit($0) ? $0 : UInt8(ascii: "_") }
        if bytes.isEmpty || isDigit(bytes[0]) { bytes.insert(UInt8(ascii: "_"), at: 0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// ASCII `A`–`Z`, `a`–`z`.
    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    /// ASCII `0`–`9`.
    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// The index after the `\E` that ends a `\Q` quote begun at `start` (the end when there is none).
    private static func endOfQuote(_ bytes: [UInt8], from start: Int) -> Int {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "E") { return index + 2 }
            index += 1
        }
        return bytes.count
    }

    /// The index after the `]` that closes the class opened at `start`. A `]` first in the class (after an
    /// optional `^`) is a literal; `\` escapes; `[:name:]` is a POSIX class inside it.
    private static func endOfClass(_ bytes: [UInt8], from start: Int) -> Int {
        var index = start + 1
        if index < bytes.count, bytes[index] == UInt8(ascii: "^") { index += 1 }
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1 }
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"):
                index += 2
            case UInt8(ascii: "]"):
                return index + 1
            case UInt8(ascii: "[") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: ":"):
                var end = index + 2
                while end + 1 < bytes.count, !(bytes[end] == UInt8(ascii: ":") && bytes[end + 1] == UInt8(ascii: "]")) {
                    end += 1
                }
                index = end + 1 < bytes.count ? end + 2 : index + 1
            default:
                index += 1
            }
        }
        return bytes.count
    }

    /// Reads the group opened by the `(` at `start`: records it when named, skips a comment; returns where
    /// scanning goes on.
    private static func scanGroup(_ bytes: [UInt8], at start: Int, into groups: inout [Group]) -> Int {
        func byte(_ index: Int) -> UInt8? { index < bytes.count ? bytes[index] : nil }
        guard byte(start + 1) == UInt8(ascii: "?") else { return start + 1 }
        let nameStart: Int
        let terminator: UInt8
        switch byte(start + 2) {
        case UInt8(ascii: "#"):
            var end = start + 3
            while end < bytes.count, bytes[end] != UInt8(ascii: ")") { end += 1 }
            return end + 1
        case UInt8(ascii: "<"):
            guard let next = byte(start + 3), !"=!*".utf8.contains(next) else { return start + 1 }
            (nameStart, terminator) = (start + 3, UInt8(ascii: ">"))
        case UInt8(ascii: "'"):
            (nameStart, terminator) = (start + 3, UInt8(ascii: "'"))
        case UInt8(ascii: "P") where byte(start + 3) == UInt8(ascii: "<"):
            (nameStart, terminator) = (start + 4, UInt8(ascii: ">"))
        default:
            return start + 1
        }
        var end = nameStart
        while end < bytes.count, bytes[end] != terminator, bytes[end] != UInt8(ascii: ")") { end += 1 }
        guard end < bytes.count, bytes[end] == terminator else { return start + 1 }
        groups.append(Group(name: String(decoding: bytes[nameStart..<end], as: UTF8.self), offset: nameStart))
        return end + 1
    }
}
