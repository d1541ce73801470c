/// Masks secrets in log lines with same-length replacements (`*`), byte by byte: the `sanitize` action writes
/// the result over the bytes already in the file, and alert text goes through it too.
///
/// Pure: no I/O, no Foundation, no allocation in `mask`.
public struct SecretMasker: Sendable {
    /// The detectors in use.
    public let detectors: Set<SecretDetector>

    public init(detectors: Set<SecretDetector>) {
        self.detectors = detectors
    }

    /// Per-file state carried across lines (inside a private-key block).
    public struct State: Sendable {
        /// Inside `-----BEGIN … PRIVATE KEY-----` … `-----END … PRIVATE KEY-----`.
        var inPrivateKey = false

        public init() {}
    }

    /// Masks every secret in `line` (one log line, without its newline) in place, with same-length
    /// replacements; returns the number of bytes it changed (0: the line is clean or already masked).
    /// Idempotent; never writes a newline; invalid UTF-8 and NUL bytes are fine.
    public func mask(_ line: UnsafeMutableRawBufferPointer, state: inout State) -> Int {
        // FIXME: detectors land in the next commit.
        0
    }

    /// A masked copy of `text` (cold paths: alert text). Lines are masked one by one, with one state.
    public func masked(_ text: String) -> String {
        var bytes = Array(text.utf8)
        var state = State()
        bytes.withUnsafeMutableBytes { buffer in
            var start = 0
            for index in 0...buffer.count where index == buffer.count || buffer[index] == UInt8(ascii: "\n") {
                _ = mask(UnsafeMutableRawBufferPointer(rebasing: buffer[start..<index]), state: &state)
                start = index + 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
