import CVigilLinux

/// One regular expression compiled with PCRE2 (8-bit code units, bytes: no UTF mode, so invalid UTF-8 is
/// fine) to extract capture groups from a line that Vectorscan already matched. Cold path: the caller runs it
/// only for matched lines. See `man 3 pcre2api`, `pcre2_compile`, `pcre2_match`.
///
/// The compiled code is read-only after init and PCRE2 allows sharing it between threads; each `match`
/// allocates its own match data.
public final class CapturePattern: @unchecked Sendable {
    // @unchecked Sendable: a pcre2_code is immutable after pcre2_compile and may be used by several threads
    // at once (pcre2api "Multithreading"); match data is per call.

    /// A pattern PCRE2 refused: its message and the byte offset in the expression where it stopped.
    public struct CompileError: Error, Sendable, CustomStringConvertible {
        /// Byte offset into the expression.
        public var offset: Int
        public var message: String

        public var description: String { "\(message) at offset \(offset)" }
    }

    private let code: OpaquePointer
    /// The number of capture groups (named or not).
    public let groupCount: Int

    /// Compiles `expression` (bytes of its UTF-8 encoding, matched as bytes); `caseless` is `PCRE2_CASELESS`.
    public init(_ expression: String, caseless: Bool = false) throws(CompileError) {
        var errorCode: Int32 = 0
        var errorOffset = 0
        var text = expression
        let compiled = text.withUTF8 { bytes in
            CVigilLinux_pcre2_compile(
                bytes.baseAddress,
                bytes.count,
                caseless ? UInt32(PCRE2_CASELESS) : 0,
                &errorCode,
                &errorOffset
            )
        }
        guard let compiled else {
            throw CompileError(offset: errorOffset, message: Self.message(for: errorCode))
        }
        code = compiled
        var count: UInt32 = 0
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_CAPTURECOUNT), &count)
        groupCount = Int(count)
    }

    deinit { pcre2_code_free_8(code) }

    /// The number of the group called `name`, or nil when the pattern has no such group.
    public func groupNumber(named name: String) -> Int? {
        let number = pcre2_substring_number_from_name_8(code, name)
        return number > 0 ? Int(number) : nil
    }

    /// The first match in `bytes`: element 0 is the whole match, element N group N (nil when the group took no
    /// part). Nil when there is no match (or PCRE2 failed, e.g. its match limit).
    public func firstMatch(_ bytes: UnsafeRawBufferPointer) -> [Range<Int>?]? {
        guard let data = pcre2_match_data_create_from_pattern_8(code, nil) else { return nil }
        defer { pcre2_match_data_free_8(data) }
        let status = withUnsafeBytes(of: UInt8(0)) { empty in
            let base = (bytes.baseAddress ?? empty.baseAddress!).assumingMemoryBound(to: UInt8.self)
            return pcre2_match_8(code, base, bytes.count, 0, 0, data, nil)
        }
        guard status >= 0 else { return nil }
        let vector = pcre2_get_ovector_pointer_8(data)!
        let unset = CVigilLinux_pcre2_unset()
        var ranges: [Range<Int>?] = []
        ranges.reserveCapacity(groupCount + 1)
        for group in 0...groupCount {
            let start = vector[2 * group]
            let end = vector[2 * group + 1]
            // A status of N means groups above N - 1 were not set (the vector may hold stale values).
            if group >= Int(status) && status > 0 || start == unset || end < start {
                ranges.append(nil)
            } else {
                ranges.append(start..<end)
            }
        }
        return ranges
    }

    /// PCRE2's text for an error code (`pcre2_get_error_message`).
    public static func message(for errorCode: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = buffer.withUnsafeMutableBufferPointer {
            pcre2_get_error_message_8(errorCode, $0.baseAddress, $0.count)
        }
        guard length > 0 else { return "PCRE2 error \(errorCode)" }
        return String(decoding: buffer[..<Int(length)], as: UTF8.self)
    }
}
