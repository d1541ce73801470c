import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The alert ids Vigil's JSON Lines sinks already hold from before a restart, so that a log line
/// processed again (it lay after the last saved offset when the daemon died) does not put its alert in a
/// sink twice: each line's alert appears exactly once.
///
/// Only what was written after the state was saved can repeat, so only that part of each sink is read:
/// from the size the state file recorded to the end (a few hundred milliseconds of alerts).
struct AlertLedger {
    /// Alert id → the sinks (bit i: sink i) that already hold it.
    private(set) var written: [String: UInt64] = [:]

    var isEmpty: Bool { written.isEmpty }

    /// Reads the ids in each sink file after `sinkSizes[path]`; `sinkPaths[i]` is sink i's host path (nil
    /// for sinks that are not files). At most `limit` bytes per sink are read, from the end.
    init(sinkPaths: [String?], sinkSizes: [String: Int64], limit: Int = 256 << 20) {
        for (index, path) in sinkPaths.enumerated() where index < 64 {
            guard let path, let from = sinkSizes[path] else { continue }
            let bit: UInt64 = 1 << UInt64(index)
            Self.forEachID(in: path, from: from, limit: limit) { written[$0, default: 0] |= bit }
        }
    }

    /// The sinks of `mask` that do not hold `id` yet. An alert some sink holds had its `exec:` programs
    /// handed over already (the outlet does that before it writes), so `SinkMasks.execBit` goes too.
    func unwritten(_ id: String, of mask: UInt64) -> UInt64 {
        guard let held = written[id] else { return mask }
        return mask & ~held & SinkMasks.everySink
    }

    /// Calls `body` with the `id` of every JSON line (`{"id":"…",…}`) after byte `from` of the file.
    private static func forEachID(in path: String, from: Int64, limit: Int, _ body: (String) -> Void) {
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
        guard fd >= 0 else { return }
        defer { Syscall.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Int64(info.st_size) > from else { return }
        let start = max(from, Int64(info.st_size) - Int64(limit))
        let count = Int(Int64(info.st_size) - start)
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(start)) }
        guard n > 0 else { return }
        let prefix = Array(#"{"id":""#.utf8)
        var lineStart = 0
        bytes.withUnsafeBufferPointer { buffer in
            while lineStart < n {
                var end = lineStart
                while end < n && buffer[end] != UInt8(ascii: "\n") { end += 1 }
                let idStart = lineStart + prefix.count
                if end - lineStart > prefix.count + 32, Array(buffer[lineStart..<idStart]) == prefix,
                    buffer[idStart + 32] == UInt8(ascii: "\"")
                {
                    body(String(decoding: buffer[idStart..<idStart + 32], as: UTF8.self))
                }
                lineStart = end + 1
            }
        }
    }
}
