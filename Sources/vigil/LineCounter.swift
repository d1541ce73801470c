import VigilCore
import VigilDaemon
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Counts the lines each rule matches over the files, on one thread or several, and prints the result.
///
/// With several threads the files' bytes (all files together) are cut into one part per thread. A thread
/// matches the lines that *start* in its part: it skips to the first line start (the byte before its part is
/// a newline, or it reads on to one) and reads past its end to finish its last line. Each line is matched by
/// exactly one thread, in the same 64 KiB pieces, so the counts do not depend on the number of threads; each
/// thread keeps its first samples per rule, and merging them by file position gives the first in file order.
///
/// The files are read with `pread`, not mapped: a log truncated while `mmap`ed would kill the process with
/// SIGBUS (copytruncate rotation does exactly that), where `pread` just returns fewer bytes.
final class LineCounter {
    /// One part of one file for one thread: lines starting at offsets `from..<to`.
    struct Segment {
        var file: Int
        var from: Int
        var to: Int
    }

    /// An input file: its descriptor and, for a regular file, its size when the work was planned.
    struct Input {
        var path: String
        var fd: CInt
        var size: Int?
    }

    /// At most this many threads by default (`--threads` may ask for more).
    static let defaultThreadLimit = 8
    /// By default, a thread per this many bytes at least: below it, starting threads costs more than it saves.
    static let bytesPerThread = 1 << 20

    private let set: LogPatternSet
    /// Lines read, across files.
    private(set) var totalLines = 0
    /// Lines that some rule's pattern matched.
    private(set) var matchedLines = 0
    /// Threads used.
    private(set) var threadCount = 1
    private var hits: [Int]
    private var patterned: [Bool]
    private var samples: [[[UInt8]]]

    init(set: LogPatternSet) {
        self.set = set
        hits = Array(repeating: 0, count: set.ruleCount)
        patterned = (0..<set.ruleCount).map { !set.matchesEveryLine(ruleIndex: $0) }
        samples = Array(repeating: [], count: set.ruleCount)
    }

    /// The default thread count: online processors (`sysconf(_SC_NPROCESSORS_ONLN)`), at most
    /// `defaultThreadLimit`, and no more than the input has megabytes.
    static func defaultThreads(totalBytes: Int) -> Int {
        let online = max(1, sysconf(CInt(_SC_NPROCESSORS_ONLN)))
        return max(1, min(online, defaultThreadLimit, totalBytes / bytesPerThread))
    }

    /// Cuts `sizes` (bytes per file, in order) into `threads` parts of nearly equal bytes, as segments per
    /// thread. Empty files give no segment; a part may span several files.
    static func plan(sizes: [Int], threads: Int) -> [[Segment]] {
        let total = sizes.reduce(0, +)
        var parts: [[Segment]] = Array(repeating: [], count: threads)
        for thread in 0..<threads {
            let low = total * thread / threads
            let high = total * (thread + 1) / threads
            var base = 0
            for (file, size) in sizes.enumerated() {
                let from = max(low, base)
                let to = min(high, base + size)
                if from < to { parts[thread].append(Segment(file: file, from: from - base, to: to - base)) }
                base += size
            }
        }
        return parts
    }

    /// Matches every line of `inputs`; `threads` nil picks the default. Files that are not regular (pipes)
    /// cannot be split: then one thread reads everything. Returns an error message, or nil.
    func count(_ inputs: [Input], threads requested: Int?) -> String? {
        let splittable = inputs.allSatisfy { $0.size != nil }
        let totalBytes = inputs.reduce(0) { $0 + ($1.size ?? 0) }
        let threads = splittable ? (requested ?? Self.defaultThreads(totalBytes: totalBytes)) : 1
        threadCount = threads
        if threads == 1 {
            let tally = LineTally(set: set)
            for (index, input) in inputs.enumerated() {
                if let message = tally.readAll(input.fd, path: input.path, file: index) { return message }
            }
            merge([tally])
            return nil
        }
        let parts = Self.plan(sizes: inputs.map { $0.size ?? 0 }, threads: threads)
        let works = parts.map { Work(tally: LineTally(set: set), segments: $0, inputs: inputs) }
        let handles = works.map { work in Threads.spawn(name: "vigil-match") { work.run() } }
        for handle in handles { Threads.join(handle) }
        if let message = works.lazy.compactMap(\.failure).first { return message }
        merge(works.map(\.tally))
        return nil
    }

    /// One thread's job.
    private final class Work: @unchecked Sendable {
        // @unchecked Sendable: the spawned thread alone touches `tally` and `failure` until it is joined; the
        // rest is immutable.
        let tally: LineTally
        let segments: [Segment]
        let inputs: [Input]
        var failure: String?

        init(tally: LineTally, segments: [Segment], inputs: [Input]) {
            self.tally = tally
            self.segments = segments
            self.inputs = inputs
        }

        func run() {
            for segment in segments {
                let input = inputs[segment.file]
                failure = tally.readLines(
                    input.fd,
                    path: input.path,
                    file: segment.file,
                    from: segment.from,
                    to: segment.to,
                    size: input.size ?? 0
                )
                if failure != nil { return }
            }
        }
    }

    /// Sums the threads' counts; each rule's samples are the first `sampleCount` in file order.
    private func merge(_ tallies: [LineTally]) {
        for tally in tallies {
            totalLines += tally.totalLines
            matchedLines += tally.matchedLines
            for rule in 0..<hits.count { hits[rule] += tally.hits[rule] }
        }
        for rule in 0..<hits.count {
            let all = tallies.flatMap { $0.samples[rule] }.sorted { ($0.file, $0.offset) < ($1.file, $1.offset) }
            samples[rule] = all.prefix(LineTally.sampleCount).map(\.bytes)
        }
    }

    /// Prints each rule's hits and samples, how the patterns were obtained, then the totals.
    func report(rules: [Rule], files: Int, elapsed: Double, patterns: PatternDatabase.Origin?) {
        for (index, rule) in rules.enumerated() {
            let count = hits[index]
            var heading = "\(rule.id) (\(rule.location)): \(Self.plural(count, "line"))"
            if !patterned[index] { heading += " (no match: patterns, so every line)" }
            print(heading)
            if patterned[index] {
                for sample in samples[index] { print("    " + String(decoding: sample, as: UTF8.self)) }
            }
        }
        if let patterns { print(Self.describe(patterns)) }
        let rate = elapsed > 0 ? Double(totalLines) / elapsed : 0
        print(
            "vigil: \(Self.plural(totalLines, "line")) in \(Self.plural(files, "file")), \(matchedLines) matched by a"
                + " pattern; \(Self.plural(threadCount, "thread")), \(Self.fixed(elapsed, 3)) s,"
                + " \(Self.fixed(rate / 1e6, 2)) M lines/s"
        )
    }

    /// `patterns: compiled in 0.87 s (cached in '…')`, `patterns: loaded from cache in 3 ms ('…')`.
    static func describe(_ origin: PatternDatabase.Origin) -> String {
        let seconds = Double(origin.nanoseconds) / 1e9
        let time =
            seconds >= 1
            ? "\(fixed(seconds, 2)) s"
            : seconds >= 0.001 ? "\(Int((seconds * 1000).rounded())) ms" : "\(fixed(seconds * 1000, 1)) ms"
        let file = origin.cacheFile ?? ""
        switch origin.source {
        case .loadedFromCache: return "patterns: loaded from cache in \(time) ('\(file)')"
        case .compiled where origin.stored: return "patterns: compiled in \(time) (cached in '\(file)')"
        case .compiled: return "patterns: compiled in \(time)"
        }
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
