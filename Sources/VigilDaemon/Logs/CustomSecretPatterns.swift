public import VigilRules
public import VigilSystem

/// The custom `patterns:` of a `sanitize` action, compiled into a small Vectorscan database that reports where
/// each match starts (`HS_FLAG_SOM_LEFTMOST`), so that every byte of every match is masked with `*`.
///
/// Separate from `LogPatternSet`: start-of-match tracking costs scan speed, and only these few patterns need it.
public final class CustomSecretPatterns: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; the database is read-only; per-thread state is in `Scratch`.

    private let database: PatternDatabase
    /// The patterns, in the order written.
    public let patterns: [LogPattern]

    /// How the Vectorscan database was obtained (compiled or loaded from the cache, any cache problem).
    public var databaseOrigin: PatternDatabase.Origin { database.origin }

    /// Compiles `patterns` (at least one); throws every pattern the engine refuses, positioned at the pattern.
    /// With a `cacheDirectory`, the compiled database is loaded from there or stored there, as for
    /// `LogPatternSet`.
    public init(patterns: [LogPattern], cacheDirectory: String? = nil) throws(LogPatternSet.Failure) {
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
            database = try PatternDatabase(list, cacheDirectory: cacheDirectory)
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

    /// The matches of the current line, reached through the engine's context pointer.
    fileprivate struct Ranges {
        /// Start and end offsets; grown (rarely) when a line has more matches than ever before.
        var pairs: UnsafeMutablePointer<(start: Int, end: Int)>
        var capacity: Int
        var count: Int
    }

    /// Per-thread state: Vectorscan's scratch space and the ranges found in the current line.
    public final class Scratch {
        fileprivate let engine: PatternDatabase.Scratch
        fileprivate let ranges: UnsafeMutablePointer<Ranges>

        fileprivate init(database: PatternDatabase) {
            do {
                engine = try PatternDatabase.Scratch(for: database)
            } catch {
                fatalError("Failed to allocate Vectorscan scratch space: \(error)")
            }
            ranges = .allocate(capacity: 1)
            ranges.initialize(to: Ranges(pairs: .allocate(capacity: 16), capacity: 16, count: 0))
        }

        deinit {
            ranges.pointee.pairs.deallocate()
            ranges.deallocate()
        }
    }

    /// Scratch space for one thread.
    public func makeScratch() -> Scratch { Scratch(database: database) }

    /// Masks every byte of every match in `line` with `*`; returns the number of bytes changed (0 when there is
    /// no match or the matches are already masked). Allocates nothing unless a line has more matches than any
    /// before it.
    public func mask(_ line: UnsafeMutableRawBufferPointer, scratch: Scratch) -> Int {
        let ranges = scratch.ranges
        ranges.pointee.count = 0
        let context = UnsafeMutableRawPointer(ranges)
        _ = database.scan(UnsafeRawBufferPointer(line), scratch: scratch.engine, context: context) {
            _,
            start,
            end,
            _,
            context in
            let ranges = context.unsafelyUnwrapped.assumingMemoryBound(to: Ranges.self)
            let count = ranges.pointee.count
            // Leftmost start: a pattern reports each end of a growing match with the same start; keep the widest.
            if count > 0 && ranges.pointee.pairs[count - 1].start == Int(start) {
                ranges.pointee.pairs[count - 1].end = max(ranges.pointee.pairs[count - 1].end, Int(end))
                return 0
            }
            if count == ranges.pointee.capacity {
                let larger = UnsafeMutablePointer<(start: Int, end: Int)>.allocate(capacity: count * 2)
                larger.moveInitialize(from: ranges.pointee.pairs, count: count)
                ranges.pointee.pairs.deallocate()
                ranges.pointee.pairs = larger
                ranges.pointee.capacity = count * 2
            }
            ranges.pointee.pairs[count] = (Int(start), Int(end))
            ranges.pointee.count = count + 1
            return 0
        }
        // Mask after the scan: the engine reads the line while it reports.
        var changed = 0
        let star = UInt8(ascii: "*")
        for index in 0..<ranges.pointee.count {
            let range = ranges.pointee.pairs[index]
            for offset in range.start..<min(range.end, line.count) where line[offset] != star {
                line[offset] = star
                changed += 1
            }
        }
        return changed
    }
}
