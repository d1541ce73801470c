import VigilCore
import VigilDaemon
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The hot loop of `vigil match`: reads files in large chunks with `read(2)`, finds lines with `memchr`, matches
/// each with `LogPatternSet` and counts per rule. No allocation, `String` or Foundation per line; only the first
/// 3 sample lines of each rule are copied.
final class LineCounter {
    /// Lines longer than this are matched in pieces of this length, as the daemon does.
    static let pieceLength = 64 * 1024
    /// Samples kept per rule.
    static let sampleCount = 3

    private let set: LogPatternSet
    private let scratch: LogPatternSet.Scratch
    private let masker = SecretMasker(detectors: Set(SecretDetector.allCases))
    /// Lines read, across files.
    private(set) var totalLines = 0
    /// Lines that some rule's pattern matched (rules without patterns, which match every line, do not count).
    private(set) var matchedLines = 0
    /// Per rule: lines matched.
    private let hits: UnsafeMutableBufferPointer<Int>
    /// Per rule: the number of the last line counted (the pieces of a long line count once).
    private let lastLine: UnsafeMutableBufferPointer<Int>
    /// Per rule: whether it has patterns.
    private let patterned: UnsafeMutableBufferPointer<Bool>
    /// Per rule: up to `sampleCount` lines, masked.
    private var samples: [[[UInt8]]]
    private let buffer: UnsafeMutableRawBufferPointer
    /// Whether a pattern matched the line being read (across its pieces).
    private var lineMatched = false

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

    /// Reads `fd` to its end, matching every line. Returns an error message, or nil.
    func read(_ fd: CInt, path: String) -> String? {
        let base = buffer.baseAddress!
        var filled = 0
        while true {
            let count: Int
            do {
                guard let n = try Syscall.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
                else { continue }
                count = n
            } catch {
                return "Failed to read '\(path)': \(error)"
            }
            if count == 0 {
                // A last line without a newline counts.
                if filled > 0 { completeLine(UnsafeRawBufferPointer(start: base, count: filled)) }
                return nil
            }
            filled += count
            var start = 0
            while start < filled, let newline = memchr(base + start, 0x0A, filled - start) {
                let end = base.distance(to: newline)
                completeLine(UnsafeRawBufferPointer(start: base + start, count: end - start))
                start = end + 1
            }
            // The partial line: match its whole 64 KiB pieces now, keep the rest for the next read.
            while filled - start >= Self.pieceLength {
                matchPiece(UnsafeRawBufferPointer(start: base + start, count: Self.pieceLength))
                start += Self.pieceLength
            }
            if start > 0 {
                memmove(base, base + start, filled - start)
                filled -= start
            }
        }
    }

    /// A whole line (or the last part of a long one), without its newline.
    private func completeLine(_ line: UnsafeRawBufferPointer) {
        var offset = 0
        repeat {
            let length = min(Self.pieceLength, line.count - offset)
            matchPiece(UnsafeRawBufferPointer(rebasing: line[offset..<(offset + length)]))
            offset += length
        } while offset < line.count
        if lineMatched { matchedLines += 1 }
        lineMatched = false
        totalLines += 1
    }

    /// Matches one piece of the current line.
    @inline(__always)
    private func matchPiece(_ piece: UnsafeRawBufferPointer) {
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

    /// Copies a sample, masked and cut to 300 bytes (cold: at most 3 per rule).
    private func keepSample(_ rule: Int, _ piece: UnsafeRawBufferPointer) {
        var copy = Array(piece)
        var state = SecretMasker.State()
        _ = copy.withUnsafeMutableBytes { masker.mask($0, state: &state) }
        if copy.count > 300 { copy = Array(copy.prefix(300)) + Array(" …".utf8) }
        samples[rule].append(copy)
    }

    /// Prints each rule's hits and samples, then the totals.
    func report(rules: [Rule], files: Int, elapsed: Double) {
        for (index, rule) in rules.enumerated() {
            let count = hits[index]
            var heading = "\(rule.id) (\(rule.location)): \(Self.plural(count, "line"))"
            if !patterned[index] { heading += " (no match: patterns, so every line)" }
            print(heading)
            if patterned[index] {
                for sample in samples[index] { print("    " + String(decoding: sample, as: UTF8.self)) }
            }
        }
        let rate = elapsed > 0 ? Double(totalLines) / elapsed : 0
        print(
            "vigil: \(Self.plural(totalLines, "line")) in \(Self.plural(files, "file")), \(matchedLines) matched by a"
                + " pattern; \(Self.fixed(elapsed, 3)) s, \(Self.fixed(rate / 1e6, 2)) M lines/s"
        )
    }

    static func plural(_ count: Int, _ noun: String) -> String { count == 1 ? "1 \(noun)" : "\(count) \(noun)s" }

    /// `value` with `digits` decimals (no Foundation).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = scaled / Int(scale)
        var fraction = String(scaled % Int(scale))
        while fraction.count < digits { fraction = "0" + fraction }
        return digits == 0 ? "\(whole)" : "\(whole).\(fraction)"
    }
}
