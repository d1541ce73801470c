/// A JSON value parsed by `TestJSON`, with object members kept in document order.
indirect enum JSONValue {
    /// An object; members in the order they were written.
    case object([(name: String, value: JSONValue)])
    /// An array.
    case array([JSONValue])
    /// A string, with escapes decoded.
    case string(String)
    /// A number, as written.
    case number(String)
    /// `true` or `false`.
    case bool(Bool)
    /// `null`.
    case null

    /// The member names of an object, in order; nil for other values.
    var memberNames: [String]? {
        if case .object(let members) = self { return members.map(\.name) }
        return nil
    }

    /// The value of member `name` of an object, or nil.
    subscript(name: String) -> JSONValue? {
        if case .object(let members) = self { return members.first { $0.name == name }?.value }
        return nil
    }

    /// The string, or nil for other values.
    var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// The elements of an array, or nil for other values.
    var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }
}

/// Why `TestJSON.parse` refused its input: the byte offset and what was expected there.
struct JSONSyntaxError: Error, CustomStringConvertible {
    /// Byte offset of the problem.
    var offset: Int
    /// What was wrong.
    var reason: String
    /// `offset N: reason`.
    var description: String { "offset \(offset): \(reason)" }
}

/// A strict recursive-descent JSON parser (RFC 8259), written for the tests so that the encoder is checked
/// against an independent reader rather than against itself. It rejects raw control characters in strings,
/// ill-formed UTF-8, lone surrogate escapes, leading zeros, trailing commas and trailing garbage.
struct TestJSON {
    /// The input.
    private let bytes: [UInt8]
    /// The next byte to read.
    private var index = 0

    /// Parses exactly one JSON value (surrounding whitespace allowed).
    static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONValue {
        var parser = TestJSON(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("trailing bytes after the value") }
        return value
    }

    /// Parses exactly one JSON value from text.
    static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// A parser positioned at the start of `bytes`.
    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// An error at the current offset.
    private func error(_ reason: String) -> JSONSyntaxError {
        JSONSyntaxError(offset: index, reason: reason)
    }

    /// The current byte, or nil at the end.
    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    /// Skips JSON whitespace: space, tab, newline, carriage return.
    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
    }

    /// Consumes `literal` or throws.
    private mutating func expect(_ literal: String) throws(JSONSyntaxError) {
        for byte in literal.utf8 {
            guard current == byte else { throw error("expected '\(literal)'") }
            index += 1
        }
    }

    /// Parses any value at the current position.
    private mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth < 100 else { throw error("nested too deeply") }
        guard let byte = current else { throw error("expected a value, found the end") }
        switch byte {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("expected a value")
        }
    }

    /// Parses an object.
    private mutating func object(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var members: [(name: String, value: JSONValue)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a member name") }
            let name = try string()
            skipWhitespace()
            try expect(":")
            skipWhitespace()
            members.append((name, try value(depth: depth + 1)))
            skipWhitespace()
            if current == UInt8(ascii: ",") {
                index += 1
                continue
            }
            try expect("}")
            return .object(members)
        }
    }

    /// Parses an array.
    private mutating func array(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth + 1))
            skipWhitespace()
            if current == UInt8(ascii: ",") {
                index += 1
                continue
            }
            try expect("]")
            return .array(elements)
        }
    }

    /// Parses a string, decoding escapes and checking UTF-8.
    private mutating func string() throws(JSONSyntaxError) -> String {
        index += 1
        var decoded: [UInt8] = []
        while true {
            guard let byte = current else { throw error("unterminated string") }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: decoded, as: UTF8.self) else {
                    throw error("string is not valid UTF-8")
                }
                return text
            case 0..<0x20:
                throw error("raw control character 0x\(String(byte, radix: 16)) in a string")
            case UInt8(ascii: "\\"):
                guard let escape = current else { throw error("unterminated escape") }
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        try expect("\\u")
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("lone high surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error("lone low surrogate")
                    }
                    decoded.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
                default: throw error("unknown escape")
                }
            default:
                decoded.append(byte)
            }
        }
    }

    /// Parses four hex digits.
    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = current else { throw error("short \\u escape") }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("bad hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// Parses a number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    private mutating func number() throws(JSONSyntaxError) -> String {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        if current == UInt8(ascii: "0") {
            index += 1
        } else {
            guard try digits() > 0 else { throw error("expected a digit") }
        }
        if current == UInt8(ascii: ".") {
            index += 1
            guard try digits() > 0 else { throw error("expected a digit after '.'") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard try digits() > 0 else { throw error("expected an exponent") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// Consumes decimal digits and returns how many.
    private mutating func digits() throws(JSONSyntaxError) -> Int {
        var count = 0
        while let byte = current, byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
            index += 1
            count += 1
        }
        return count
    }
}
