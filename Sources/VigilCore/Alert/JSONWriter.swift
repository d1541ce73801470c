/// Appends compact JSON (RFC 8259) to a byte buffer, without Foundation and without allocating beyond the
/// buffer's own growth: a buffer reused after `removeAll(keepingCapacity: true)` does not allocate again.
///
/// The writer inserts commas and colons itself; callers only say what comes next:
/// ```swift
/// var writer = JSONWriter()
/// writer.beginObject()
/// writer.key("path"); writer.string("/etc/analytics/upload-service.conf")
/// writer.key("old"); writer.null()
/// writer.endObject()
/// ```
/// Strings are escaped as JSON requires: `"` and `\` with a backslash, `\n` `\r` `\t` by name, other control
/// characters as `\u00XX`. Valid UTF-8 passes through unchanged; ill-formed UTF-8 (possible only through
/// `string(utf8:)`) becomes U+FFFD, one per maximal ill-formed subsequence, so the output is always valid
/// UTF-8 and matches what `String(decoding:as:)` would have made of the bytes.
///
/// Nesting is tracked in a 64-bit mask, so the writer holds no heap storage of its own; it supports up to
/// 63 levels of nesting, far more than an alert record needs.
public struct JSONWriter: Sendable {
    /// The JSON written so far.
    public var bytes: [UInt8]
    /// Current nesting depth: 0 at top level.
    private var depth = 0
    /// Bit `n` is set when the container at depth `n` already has an element, so the next one needs a comma.
    private var hasElement: UInt64 = 0
    /// True right after `key(_:)`, when the value follows the colon without a comma.
    private var afterKey = false

    /// A writer that appends to `bytes`.
    public init(bytes: [UInt8] = []) {
        self.bytes = bytes
    }

    /// Starts an object: `{`.
    public mutating func beginObject() {
        open(UInt8(ascii: "{"))
    }

    /// Ends the innermost object: `}`.
    public mutating func endObject() {
        close(UInt8(ascii: "}"))
    }

    /// Starts an array: `[`.
    public mutating func beginArray() {
        open(UInt8(ascii: "["))
    }

    /// Ends the innermost array: `]`.
    public mutating func endArray() {
        close(UInt8(ascii: "]"))
    }

    /// Writes an object member's name and the colon; the next call writes its value.
    public mutating func key(_ name: String) {
        separate()
        Self.appendQuoted(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    /// Writes a string value.
    public mutating func string(_ value: String) {
        separate()
        Self.appendQuoted(value, to: &bytes)
    }

    /// Writes a string value given as UTF-8 bytes, replacing ill-formed sequences with U+FFFD.
    public mutating func string(utf8 value: UnsafeRawBufferPointer) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        Self.appendEscaped(value, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Writes `value` if present, `null` otherwise.
    public mutating func string(orNull value: String?) {
        if let value {
            string(value)
        } else {
            null()
        }
    }

    /// Writes `null`.
    public mutating func null() {
        separate()
        for character in "null".utf8 {
            bytes.append(character)
        }
    }

    /// Writes `true` or `false`.
    public mutating func bool(_ value: Bool) {
        separate()
        for character in value ? "true".utf8 : "false".utf8 {
            bytes.append(character)
        }
    }

    /// Writes an integer in decimal.
    public mutating func integer(_ value: Int64) {
        separate()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var power: UInt64 = 1
        while power <= magnitude / 10 { power *= 10 }
        while power > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude / power))
            magnitude %= power
            power /= 10
        }
    }

    /// Writes an RFC 3339 UTC timestamp string, e.g. `"2026-11-27T04:53:35.123456Z"`; see `RFC3339`.
    public mutating func timestamp(seconds: Int64, nanoseconds: Int32) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        RFC3339.format(seconds: seconds, nanoseconds: nanoseconds, into: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Writes the comma owed before a value or member, unless a key was just written.
    private mutating func separate() {
        if afterKey {
            afterKey = false
            return
        }
        guard depth > 0 else { return }
        let bit: UInt64 = 1 << UInt64(depth)
        if hasElement & bit != 0 { bytes.append(UInt8(ascii: ",")) }
        hasElement |= bit
    }

    /// Opens a container with `delimiter`.
    private mutating func open(_ delimiter: UInt8) {
        separate()
        precondition(depth < 63, "JSONWriter: more than 63 levels of nesting")
        depth += 1
        hasElement &= ~(1 << UInt64(depth))
        bytes.append(delimiter)
    }

    /// Closes the innermost container with `delimiter`.
    private mutating func close(_ delimiter: UInt8) {
        precondition(depth > 0, "JSONWriter: end of a container that was not begun")
        hasElement &= ~(1 << UInt64(depth))
        depth -= 1
        afterKey = false
        bytes.append(delimiter)
    }

    /// Appends `value` in double quotes, escaped.
    private static func appendQuoted(_ value: String, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        let done: Void? = value.utf8.withContiguousStorageIfAvailable {
            appendEscaped(UnsafeRawBufferPointer($0), to: &buffer)
        }
        if done == nil {
            // Only a non-native (bridged) string lands here; a `String` is always valid UTF-8, so escaping
            // byte by byte is enough.
            for byte in value.utf8 {
                appendEscaped(byte, to: &buffer)
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// Appends the escaped form of `value`'s bytes, without quotes. Runs that need no escaping are copied in
    /// one `append(contentsOf:)`.
    static func appendEscaped(_ value: UnsafeRawBufferPointer, to buffer: inout [UInt8]) {
        var index = 0
        var runStart = 0
        let count = value.count
        while index < count {
            let byte = value[index]
            if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") && byte < 0x80 {
                index += 1
                continue
            }
            if byte >= 0x80 {
                switch UTF8Scan.step(value, at: index) {
                case .valid(let length):
                    index += length
                    continue
                case .invalid(let length):
                    buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: value[runStart..<index]))
                    // U+FFFD REPLACEMENT CHARACTER; three appends, since an array literal may allocate.
                    buffer.append(0xEF)
                    buffer.append(0xBF)
                    buffer.append(0xBD)
                    index += length
                    runStart = index
                    continue
                }
            }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: value[runStart..<index]))
            appendEscaped(byte, to: &buffer)
            index += 1
            runStart = index
        }
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: value[runStart..<count]))
    }

    /// Appends one byte of valid UTF-8, escaped if JSON requires it.
    private static func appendEscaped(_ byte: UInt8, to buffer: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(byte)
        case UInt8(ascii: "\n"):
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"):
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"):
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(UInt8(ascii: "t"))
        case 0..<0x20:
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(UInt8(ascii: "u"))
            buffer.append(UInt8(ascii: "0"))
            buffer.append(UInt8(ascii: "0"))
            buffer.append(StableHash.hexDigit(byte >> 4))
            buffer.append(StableHash.hexDigit(byte & 0x0F))
        default:
            buffer.append(byte)
        }
    }
}
