#if canImport(Glibc)
import Glibc
#endif

/// Small readers for /proc and /sys files (cold path: start-up and diagnostics).
public enum ProcFile {
    /// Reads a small text file whole, or nil when it cannot be read.
    public static func readText(_ path: String, limit: Int = 65536) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: limit)
        var total = 0
        while total < limit {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, limit - total) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            total += n
        }
        return String(decoding: bytes[0..<total], as: UTF8.self)
    }

    /// Reads a file holding one integer.
    public static func readInteger(_ path: String) -> Int? {
        readText(path, limit: 64).flatMap { Int($0.filter { !$0.isWhitespace }) }
    }
}
