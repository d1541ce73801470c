/// Reads a top-level string field from one compact JSON object line (Vigil's alert records), undoing the
/// escapes Vigil writes. Enough for the demo, tests and benchmarks to check alerts without Foundation.
public enum JSONField {
    /// The value of `"name":"…"` in `line`, or nil when absent or not a string.
    public static func string(_ line: String, _ name: String) -> String? {
        let needle = Array("\"\(name)\":\"".utf8)
        let bytes = Array(line.utf8)
        guard bytes.count > needle.count else { return nil }
        var depth = 0
        var inString = false
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if inString {
                if b == UInt8(ascii: "\\") {
                    i += 2
                    continue
                }
                if b == UInt8(ascii: "\"") { inString = false }
                i += 1
                continue
            }
            if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") { depth += 1 }
            if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") { depth -= 1 }
            if b == UInt8(ascii: "\"") {
                if depth == 1 && i + needle.count <= bytes.count && Array(bytes[i..<i + needle.count]) == needle {
                    return unescape(bytes, from: i + needle.count)
                }
                inString = true
            }
            i += 1
        }
        return nil
    }

    private static func unescape(_ bytes: [UInt8], from start: Int) -> String? {
        var out: [UInt8] = []
        var i = start
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            if b == UInt8(ascii: "\\"), i + 1 < bytes.count {
                let e = bytes[i + 1]
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "u"):
                    if i + 5 < bytes.count,
                        let v = UInt32(String(decoding: bytes[i + 2...i + 5], as: UTF8.self), radix: 16),
                        let scalar = Unicode.Scalar(v)
                    {
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    }
                    i += 6
                    continue
                default: out.append(e)
                }
                i += 2
                continue
            }
            out.append(b)
            i += 1
        }
        return nil
    }
}

extension JSONField {
    /// A string member of the record's `labels` object (`"labels":{"pid":"42",…}`).
    public static func label(_ line: String, _ name: String) -> String? {
        guard let start = line.firstRange(of: "\"labels\":{") else { return nil }
        let rest = String(line[start.upperBound...])
        guard let end = rest.firstIndex(of: "}") else { return nil }
        return string("{" + rest[..<end] + "}", name)
    }
}
