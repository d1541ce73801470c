import VigilCore
import VigilDaemon
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The hot loop of `vigil match`, one per matching thread: reads its part of the files in large chunks, finds
/// lines with `memchr`, matches each with `LogPatternSet` (its own scratch) and counts per rule. No allocation,
/// `String` or Foundation per line; only the first 3 sample lines of each rule are copied.
final class LineTally {
    /// Lines longer than this are matched in pieces of this length, counted from the line's start, as the daemon
    /// does: the pieces, and so the counts, do not depend on how the files are split between threads.
    static let pieceLength = 64 * 1024
    /// Samples kept per rule.
    static let sampleCount = 3

    /// A line a rule matched, masked and cut to 300 bytes, with where its line starts (to merge in file order).
    struct Sample {
        var file: Int
        var offset: Int
        var bytes: [UInt8]
    }

    private let set: LogPatternSet
    private let scratch: LogPatternSet.Scratch
    private let masker = SecretMasker(detectors: Set(SecretDetector.allCases))
    /// Lines read.
    private(set) var totalLines = 0
    /// Lines that some rule's pattern matched (rules without patterns, which match every line, do not count).
    private(set) var matchedLines = 0
    /// Per rule: lines matched.
    let hits: UnsafeMutableBufferPointer<Int>
    /// Per rule: the number of the last line counted (the pieces of a long line count once).
    private let lastLine: UnsafeMutableBufferPointer<Int>
    /// Per rule: whether it has patterns.
    let patterned: UnsafeMutableBufferPointer<Bool>
    /// Per rule: its first `sampleCount` lines, in file order.
    private(set) var samples: [[Sample]]
    private let buffer: UnsafeMutableRawBufferPointer
    /// Whether a pattern matched the line being read (across its pieces).
    private var lineMatched = false
    /// Whether a piece of the current line was matched already; the first piece sets `lineOffset`.
    private var lineStarted = false
    /// The file being read (index into the files given) and where the current line starts in it.
    private var file = 0
    private var lineOffset = 0

    init(set: LogPatternSet) {
        self.set = set
        scratch = set.makeScratch()
        let count = set.ruleCount
        hits = .allocate(capacity: count)
        hits.initialize(repeating: 0)
        lastLine = .allocate(capacity: count)
        lastLine.initialize(repeating: -1)
        patterned = .allocate(capacity: count)
        for rule in 0..<count { patterned[rule] = !set.matchesEveryLine(ruleIndex: rule) }
        samples = Array(repeating: [], count: count)
        // 1 MiB: a partial line left at the end of a chunk (under 64 KiB) always leaves room for the next read.
        buffer = .allocate(byteCount: 1 << 20, alignment: 64)
    }

    deinit {
        hits.deallocate()
        lastLine.deallocate()
        patterned.deallocate()
        buffer.deallocate()
    }

    /// Reads `fd` with `read(2)` to its end, matching every line: for one thread, and for files that cannot be
    /// split (pipes). Returns an error message, or nil.
    func readAll(_ fd: CInt, path: String, file: Int) -> String? {
        scan(fd, path: path, file: file, from: 0, to: Int.max, size: nil)
    }

    /// Matches the lines of `fd` that start at offsets in `from..<to` (a line starts at 0 or after a newline),
    /// reading with `pread(2)` (the descriptor is shared with other threads) from the first such line to the
    /// end of the last one, which may lie past `to`, and never past `size`, the file's size when the split was
    /// planned. Returns an error message, or nil.
    func readLines(_ fd: CInt, path: String, file: Int, from: Int, to: Int, size: Int) -> String? {
        scan(fd, path: path, file: file, from: from, to: to, size: size)
    }

    /// Both reads: `size` nil means `read(2)` until it returns 0.
    private func scan(_ fd: CInt, path: String, file: Int, from: Int, to: Int, size: Int?) -> String? {
        self.file = file
        lineStarted = false
        let base = buffer.baseAddress!
        var filled = 0
        // From the byte before `from`: the line it ends (or belongs to) is the previous thread's.
        var next = from > 0 ? from - 1 : 0
        var skipping = from > 0
        while true {
            var count = 0
            do {
                let room = UnsafeMutableRawBufferPointer(rebasing: buffer[filled...])
                if let size {
                    let wanted = min(room.count, size - next)
                    if wanted > 0 {
                        count = try Syscall.pread(
                            fd,
                            into: UnsafeMutableRawBufferPointer(rebasing: room[..<wanted]),
                            at: next
                        )
                    }
                } else {
                    guard let n = try Syscall.read(fd, into: room) else { continue }
                    count = n
                }
            } catch {
                return "Failed to read '\(path)': \(error)"
            }
            if count == 0 {
                // A last line without a newline counts.
                if !skipping && filled > 0 {
                    completeLine(UnsafeRawBufferPointer(start: base, count: filled), offset: next - filled)
                }
                return nil
            }
            filled += count
            next += count
            // The file offset of base[0].
            let origin = next - filled
            var start = 0
            if skipping {
                guard let newline = memchr(base, 0x0A, filled) else {
                    filled = 0
                    continue
                }
                start = base.distance(to: newline) + 1
                skipping = false
                if origin + start >= to { return nil }
            }
            while start < filled, let newline = memchr(base + start, 0x0A, filled - start) {
                let end = base.distance(to: newline)
                completeLine(UnsafeRawBufferPointer(start: base + start, count: end - start), offset: origin + start)
                start = end + 1
                // The next line starts in the following thread's part.
                if origin + start >= to { return nil }
            }
            // The partial line: match its whole 64 KiB pieces now, keep the rest for the next read.
            while filled - start >= Self.pieceLength {
                matchPiece(UnsafeRawBufferPointer(start: base + start, count: Self.pieceLength), offset: origin + start)
                start += Self.pieceLength
            }
            if start > 0 {
                memmove(base, base + start, filled - start)
                filled -= start
            }
        }
    }

    /// A whole line (or the last part of a long one), without its newline; `offset` is where it starts in
    /// the file.
    private func completeLine(_ line: UnsafeRawBufferPointer, offset: Int) {
        var position = 0
        repeat {
            let length = min(Self.pieceLength, line.count - position)
            matchPiece(
                UnsafeRawBufferPointer(rebasing: line[position..<(position + length)]),
                offset: offset + position
            )
            position += length
        } while position < line.count
        if lineMatched { matchedLines += 1 }
        lineMatched = false
        lineStarted = false
        totalLines += 1
    }

    /// Matches one piece of the current line, which starts at file offset `offset`.
    @inline(__always)
    private func matchPiece(_ piece: UnsafeRawBufferPointer, offset: Int) {
        if !lineStarted {
            lineStarted = true
            lineOffset = offset
        }
        let line = totalLines
        let hits = hits
        let lastLine = lastLine
        let patterned = patterned
        set.match(piece, scratch: scratch) { rule in
            guard lastLine[rule] != line else { return }
            lastLine[rule] = line
            hits[rule] += 1
            if patterned[rule] { lineMatched = true }
            if hits[rule] <= Self.sampleCount { keepSample(rule, piece) }
        }
    }

    /// Copies a sample, masked and cut to 300 bytes (cold: at most 3 per rule and thread).
    private func keepSample(_ rule: Int, _ piece: UnsafeRawBufferPointer) {
        var copy = Array(piece)
        var state = SecretMasker.State()
        _ = copy.withUnsafeMutableBytes { masker.mask($0, state: &state) }
        if copy.count > 300 { copy = Array(copy.prefix(300)) + Array(" …".utf8) }
        samples[rule].append(Sample(file: file, offset: lineOffset, bytes: copy))
    }
}
