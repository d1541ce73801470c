/// The one number syntax Vigil accepts, in rule files and in config values alike.
enum DecimalNumber {
    /// Parses an optional sign, digits, and an optional fraction (`80`, `-1`, `+2.5`, `.5`, `3.`).
    ///
    /// No exponent, no hex, no `inf`/`nan`, no blanks: anything else is not a number and compares as text.
    static func parse(_ text: Substring) -> Double? {
        var digits = 0
        var sawDot = false
        for (index, byte) in text.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                if index != 0 { return nil }
            case UInt8(ascii: "."):
                if sawDot { return nil }
                sawDot = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                digits += 1
            default:
                return nil
            }
        }
        guard digits > 0 else { return nil }
        var normalised = String(text)
        if normalised.hasSuffix(".") { normalised.removeLast() }
        if normalised.hasPrefix(".") { normalised = "0" + normalised }
        if normalised.hasPrefix("-.") || normalised.hasPrefix("+.") {
            normalised.insert("0", at: normalised.index(after: normalised.startIndex))
        }
        return Double(normalised)
    }

    /// `parse` on a whole string.
    static func parse(_ text: String) -> Double? {
        parse(text[...])
    }
}
