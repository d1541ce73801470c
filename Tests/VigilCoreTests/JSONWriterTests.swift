import Testing
import VigilCore

/// Writes one string value with `JSONWriter` and returns the JSON text.
private func encoded(_ value: String) -> String {
    var writer = JSONWriter()
    writer.string(value)
    return String(decoding: writer.bytes, as: UTF8.self)
}

/// Writes raw bytes as a string value and returns the JSON bytes.
private func encoded(bytes: [UInt8]) -> [UInt8] {
    var writer = JSONWriter()
    bytes.withUnsafeBytes { writer.string(utf8: $0) }
    return writer.bytes
}

/// String escaping and structure of `JSONWriter`.
@Suite struct JSONWriterTests {
    /// Each special character gets the escape JSON requires, and nothing else is touched.
    @Test(arguments: [
        ("plain", #""plain""#),
        (#"say "hi""#, #""say \"hi\"""#),
        (#"C:\path"#, #""C:\\path""#),
        ("line1\nline2", #""line1\nline2""#),
        ("a\tb\rc", #""a\tb\rc""#),
        ("\u{01}\u{08}\u{0C}\u{1F}", #""\u0001\u0008\u000c\u001f""#),
        ("\u{7F}", "\"\u{7F}\""),
        ("/ stays", #""/ stays""#),
        ("émoji 🚀 and 漢字", "\"émoji 🚀 and 漢字\""),
        ("", #""""#),
    ])
    func escaping(input: String, expected: String) throws {
        let json = encoded(input)
        #expect(json == expected)
        #expect(try TestJSON.parse(json).stringValue == input)
    }

    /// Every control character round-trips through an independent parser.
    @Test func allControlCharactersRoundTrip() throws {
        let input = String(decoding: (0..<0x20).map { UInt8($0) } + Array("\"\\end".utf8), as: UTF8.self)
        #expect(try TestJSON.parse(encoded(input)).stringValue == input)
    }

    /// Ill-formed UTF-8 becomes U+FFFD, exactly as `String(decoding:as:)` repairs it, and the output is valid.
    @Test(
        arguments: [
            [0xFF],
            [0x61, 0xC3],
            [0xC0, 0xAF],
            [0xED, 0xA0, 0x80, 0x62],
            [0xE2, 0x82, 0x41],
            [0xF4, 0x90, 0x80, 0x80],
            [0x80, 0x80, 0x22, 0x0A],
            [0xF0, 0x9F, 0x9A, 0x80, 0xF0, 0x9F, 0x9A],
        ] as [[UInt8]]
    )
    func invalidUTF8IsReplaced(bytes: [UInt8]) throws {
        let json = encoded(bytes: bytes)
        #expect(String(validating: json, as: UTF8.self) != nil)
        let repaired = String(decoding: bytes, as: UTF8.self)
        #expect(try TestJSON.parse(json).stringValue == repaired)
        #expect(json == Array(encoded(repaired).utf8))
    }

    /// Commas and colons are placed by the writer, including in nested and empty containers.
    @Test func structure() throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("a")
        writer.integer(-42)
        writer.key("b")
        writer.beginArray()
        writer.bool(true)
        writer.null()
        writer.beginObject()
        writer.endObject()
        writer.beginArray()
        writer.endArray()
        writer.string(orNull: nil)
        writer.string(orNull: "x")
        writer.endArray()
        writer.key("c")
        writer.integer(Int64.min)
        writer.key("d")
        writer.timestamp(seconds: 0, nanoseconds: 0)
        writer.endObject()
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(
            text
                == #"{"a":-42,"b":[true,null,{},[],null,"x"],"c":-9223372036854775808,"d":"1970-01-01T00:00:00.000000Z"}"#
        )
        #expect(try TestJSON.parse(text).memberNames == ["a", "b", "c", "d"])
    }

    /// Keys are escaped like values.
    @Test func keysAreEscaped() {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("we\"ird\n")
        writer.integer(0)
        writer.endObject()
        #expect(String(decoding: writer.bytes, as: UTF8.self) == #"{"we\"ird\n":0}"#)
    }
}
