public import VigilRules
import VigilSystem

/// The custom `patterns:` of a `sanitize` action, compiled into a small Vectorscan database that reports where
/// each match starts (`HS_FLAG_SOM_LEFTMOST`), so that every byte of every match is masked with `*`.
///
/// Separate from `LogPatternSet`: start-of-match tracking costs scan speed, and only these few patterns need it.
public final class CustomSecretPatterns: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; the database is read-only; per-thread state is in `Scratch`.

    private let database: PatternDatabase
    /// The patterns, in the order written.
    public let patterns: [LogPattern]

    /// Compiles `patterns` (at least one); throws every pattern the engine refuses, positioned at the pattern.
    public init(patterns: [LogPattern]) throws(LogPatternSet.Failure) {
        let list = patterns.enumerated().map { index, pattern in
            PatternDatabase.Pattern(
                id: UInt32(index),
                expression: pattern.expression,
                caseless: pattern.caseless,
                singleMatch: false,
                leftmostStart: true
            )
        }
        do {
            database = try PatternDatabase(list)
        } catch {
            var diagnostics: [RuleDiagnostic] = []
            for (index, pattern) in patterns.enumerated() {
                if let diagnostic = PatternProblem.vectorscan(pattern, list[index]) { diagnostics.append(diagnostic) }
            }
            if diagnostics.isEmpty, let first = patterns.first {
                diagnostics.append(
                    .error(
                        "the sanitize patterns cannot be compiled together: \(error.message); simplify them",
                        at: first.location
                    )
                )
            }
            throw LogPatternSet.Failure(diagnostics: diagnostics)
        }
        self.patterns = patterns
    }

    /// Per-thread state: Vectorscan's scratch space and the ranges found in the current line.
    public final class Scratch {
        fileprivate let engine: PatternDatabase.Scratch
        /// Start and end offsets of the matches of the current line (kept between lines: no allocation once
        /// it has grown to the largest number of matches seen).
        fileprivate var ranges: [(start: Int, end: Int)] = []

        fileprivate init(database: PatternDatabase) {
            do {
                engine = try PatternDatabase.Scratch(for: database)
            } catch {
                fatalError("Failed to allocate Vectorscan scratch space: \(error)")
            }
            ranges.reserveCapacity(16)
        }
    }

    /// Scratch space for one thread.
    public func makeScratch() -> Scratch { Scratch(database: database) }

    /// Masks every byte of every match in `line` with `*`; returns the number of bytes changed (0 when there is
    /// no match or the matches are already masked).
    public func mask(_ line: UnsafeMutableRawBufferPointer, scratch: Scratch) -> Int {
        scratch.ranges.removeAll(keepingCapacity: true)
        database.scanRanges(UnsafeRawBufferPointer(line), scratch: scratch.engine) { _, start, end in
            // Leftmost start: a pattern reports each end of a growing match with the same start; keep the widest.
            if let last = scratch.ranges.last, last.start == start {
                if end > last.end { scratch.ranges[scratch.ranges.count - 1].end = end }
            } else {
                scratch.ranges.append((start, end))
            }
            return true
        }
        // Mask after the scan: the engine reads the line while it reports.
        var changed = 0
        let star = UInt8(ascii: "*")
        for range in scratch.ranges {
            for offset in range.start..<min(range.end, line.count) where line[offset] != star {
                line[offset] = star
                changed += 1
            }
        }
        return changed
    }
}
