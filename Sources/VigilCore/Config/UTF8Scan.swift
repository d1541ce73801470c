/// Byte-level UTF-8 checks shared by the config parser (which rejects invalid text) and the JSON writer
/// (which repairs it). Works on raw bytes, so no `String` is built to find out whether bytes are text.
///
/// The well-formed sequences are those of the Unicode Standard, table 3-7: no overlong forms, no
/// surrogates (U+D800...U+DFFF), nothing above U+10FFFF.
enum UTF8Scan {
    /// The outcome of looking at the bytes that start at one offset.
    enum Step: Equatable {
        /// A well-formed sequence of this many bytes (1...4).
        case valid(Int)
        /// An ill-formed sequence. The count is the length of its maximal subpart (at least 1): the bytes a
        /// decoder replaces with one U+FFFD, as Swift's `String(decoding:as:)` and the WHATWG decoder do.
        case invalid(Int)
    }

    /// Classifies the sequence starting at `index`, which must be inside `bytes`.
    @inline(__always)
    static func step(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Step {
        let lead = bytes[index]
        if lead < 0x80 { return .valid(1) }
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            high = 0x9F
        case 0xF0:
            length = 4
            low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            high = 0x8F
        default: return .invalid(1)
        }
        // Only the second byte has a narrowed range; the later ones are plain continuation bytes.
        var position = 1
        while position < length {
            let at = index + position
            guard at < bytes.count else { return .invalid(position) }
            let byte = bytes[at]
            guard byte >= low && byte <= high else { return .invalid(position) }
            low = 0x80
            high = 0xBF
            position += 1
        }
        return .valid(length)
    }

    /// What makes bytes unfit to be a text file: a NUL byte or ill-formed UTF-8.
    enum Problem: Equatable {
        /// A NUL byte at this offset.
        case nul(offset: Int)
        /// Ill-formed UTF-8 starting at this offset, whose first byte is `byte`.
        case invalidUTF8(offset: Int, byte: UInt8)
    }

    /// The first NUL byte or ill-formed sequence in `bytes`, or nil when the bytes are NUL-free UTF-8.
    static func firstProblem(in bytes: UnsafeRawBufferPointer) -> Problem? {
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            if byte == 0 { return .nul(offset: index) }
            if byte < 0x80 {
                index += 1
                continue
            }
            switch step(bytes, at: index) {
            case .valid(let length): index += length
            case .invalid: return .invalidUTF8(offset: index, byte: byte)
            }
        }
        return nil
    }
}
