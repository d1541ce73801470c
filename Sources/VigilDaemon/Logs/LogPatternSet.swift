public import VigilRules
public import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The `match:` patterns of a rule set's log rules compiled into one Vectorscan database, so a line costs one
/// scan however many rules there are (DESIGN.md's engine table), plus PCRE2 code for the rules whose
/// patterns have named groups, run only for lines that matched.
///
/// Rule index = position in the `rules` given. Rules that are not log rules never match; log rules without
/// patterns match every line (sanitize-only rules).
public final class LogPatternSet: @unchecked Sendable {
    // @unchecked Sendable: every stored property is immutable after init; the Vectorscan database and the PCRE2
    // codes are read-only and thread-safe; per-thread state lives in `Scratch`.

    /// Every problem with the patterns, as diagnostics positioned at the pattern.
    public struct Failure: Error, CustomStringConvertible {
        public let diagnostics: [RuleDiagnostic]

        public init(diagnostics: [RuleDiagnostic]) { self.diagnostics = diagnostics }

        /// One diagnostic per line.
        public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
    }

    /// The number of rules given (log rules or not): valid rule indexes are `0..<ruleCount`.
    public let ruleCount: Int
    /// Nil when no rule has a pattern.
    private let database: PatternDatabase?
    /// Log rules without patterns, ascending: they match every line.
    private let everyLine: [Int]
    /// Per rule: its patterns (empty for other kinds).
    private let patterns: [[LogPattern]]
    /// Per rule: PCRE2 code for each of its patterns when any of them has named groups; else empty.
    private let captureCode: [[CapturePattern]]
    /// How the Vectorscan database was obtained (compiled or loaded from the cache, how long it took, any
    /// cache problem to report); nil when no rule has a pattern.
    public var databaseOrigin: PatternDatabase.Origin? { database?.origin }

    /// Compiles the patterns of `rules`; throws every problem found (each pattern is checked with Vectorscan,
    /// and with PCRE2 when its rule needs named groups).
    ///
    /// With a `cacheDirectory`, the compiled database is loaded from there when an earlier run stored it, and
    /// stored there otherwise (`PatternDatabase.init(_:cacheDirectory:)`); a cache that cannot be used only
    /// means a compile: `databaseOrigin` says why, for the caller to report.
    public init(rules: [Rule], cacheDirectory: String? = nil) throws(Failure) {
        let compiled = Self.compile(rules, cacheDirectory: cacheDirectory)
        if !compiled.diagnostics.isEmpty { throw Failure(diagnostics: compiled.diagnostics) }
        ruleCount = rules.count
        database = compiled.database
        everyLine = compiled.everyLine
        patterns = compiled.patterns
        captureCode = compiled.captureCode
    }

    /// Every problem with the log rules' `match:` patterns and the custom patterns of their `sanitize`
    /// actions, for `vigil check`. Empty when the set compiles.
    public static func check(rules: [Rule]) -> [RuleDiagnostic] {
        compile(rules, cacheDirectory: nil).diagnostics + checkSanitizePatterns(rules: rules)
    }

    /// Every problem with the custom patterns of the rules' `sanitize` actions (`check` without the `match:`
    /// patterns, for callers that compile those anyway).
    public static func checkSanitizePatterns(rules: [Rule]) -> [RuleDiagnostic] {
        var diagnostics: [RuleDiagnostic] = []
        for rule in rules {
            for case .sanitize(let spec) in rule.actions where !spec.patterns.isEmpty {
                do {
                    _ = try CustomSecretPatterns(patterns: spec.patterns)
                } catch {
                    diagnostics += error.diagnostics
                }
            }
        }
        return diagnostics
    }

    // MARK: Matching (hot path)

    /// Per-thread state of `match`: Vectorscan's scratch space and the rule indexes seen in the current line.
    /// One per thread; never shared.
    public final class Scratch {
        fileprivate let engine: PatternDatabase.Scratch?
        /// One bit per rule: already reported for this line (a rule with several patterns matches once).
        fileprivate let seen: UnsafeMutableBufferPointer<UInt64>
        /// The rules found in this line, in the order the engine reported them.
        fileprivate let hits: UnsafeMutableBufferPointer<Int32>

        fileprivate init(set: LogPatternSet) {
            if let database = set.database {
                do {
                    engine = try PatternDatabase.Scratch(for: database)
                } catch {
                    // Only an allocation failure: nothing sensible to do but stop.
                    fatalError("Failed to allocate Vectorscan scratch space: \(error)")
                }
            } else {
                engine = nil
            }
            seen = .allocate(capacity: max(1, (set.ruleCount + 63) / 64))
            seen.initialize(repeating: 0)
            hits = .allocate(capacity: max(1, set.ruleCount))
            hits.initialize(repeating: 0)
        }

        deinit {
            seen.deallocate()
            hits.deallocate()
        }
    }

    /// Scratch space for one matching thread.
    public func makeScratch() -> Scratch { Scratch(set: self) }

    /// Calls `body` once for each rule index whose patterns match `line` (no newline), in ascending order.
    /// Allocates nothing.
    public func match(_ line: UnsafeRawBufferPointer, scratch: Scratch, _ body: (Int) -> Void) {
        var count = 0
        if let database, let engine = scratch.engine {
            // Pattern ids are rule indexes: a rule with several patterns is reported once.
            count = database.scanDistinct(line, scratch: engine, seen: scratch.seen, into: scratch.hits)
        }
        if count == 0 {
            for rule in everyLine { body(rule) }
            return
        }
        let hits = scratch.hits
        let seen = scratch.seen
        var next = 0
        /// Reports `rule` after the every-line rules below it (both ascending and disjoint).
        func emit(_ rule: Int) {
            while next < everyLine.count && everyLine[next] < rule {
                body(everyLine[next])
                next += 1
            }
            body(rule)
        }
        if count <= 32 {
            // The engine reports in order of match end; sort the few hits (insertion sort: no allocation).
            for i in 1..<max(1, count) {
                let value = hits[i]
                var j = i - 1
                while j >= 0 && hits[j] > value {
                    hits[j + 1] = hits[j]
                    j -= 1
                }
                hits[j + 1] = value
            }
            for i in 0..<count {
                let rule = Int(hits[i])
                seen[rule >> 6] = 0
                emit(rule)
            }
        } else {
            // Many rules matched: the seen bits are the sorted list.
            for word in 0..<seen.count where seen[word] != 0 {
                var bits = seen[word]
                seen[word] = 0
                while bits != 0 {
                    emit(word << 6 | bits.trailingZeroBitCount)
                    bits &= bits &- 1
                }
            }
        }
        while next < everyLine.count {
            body(everyLine[next])
            next += 1
        }
    }

    // MARK: Cold path: named groups and explanations

    /// Named groups of the rule's first pattern that matches `line`, as (name, value), values decoded lossily as
    /// UTF-8; groups that took no part are left out. Empty for rules without named groups. Meant for lines that
    /// matched: it runs PCRE2.
    public func captures(ruleIndex: Int, line: UnsafeRawBufferPointer) -> [(name: String, value: String)] {
        captureRanges(ruleIndex: ruleIndex, line: line).map { name, range in
            (name, String(decoding: UnsafeRawBufferPointer(rebasing: line[range]), as: UTF8.self))
        }
    }

    /// Like `captures`, with byte ranges of `line` instead of values: take the values from a masked copy of the
    /// line (same-length masking keeps the offsets) so that no alert carries a secret a group captured.
    public func captureRanges(ruleIndex: Int, line: UnsafeRawBufferPointer) -> [(name: String, range: Range<Int>)] {
        guard ruleIndex >= 0, ruleIndex < ruleCount else { return [] }
        let codes = captureCode[ruleIndex]
        for (index, code) in codes.enumerated() {
            guard let groups = code.firstMatch(line) else { continue }
            var ranges: [(name: String, range: Range<Int>)] = []
            for name in patterns[ruleIndex][index].captureNames {
                guard let number = code.groupNumber(named: name), number < groups.count,
                    let range = groups[number]
                else { continue }
                ranges.append((name, range))
            }
            return ranges
        }
        return []
    }

    /// The patterns of rule `ruleIndex` (in the order written) that match `line`, for `vigil match --explain`.
    /// Compiles a database for the rule on each call: cold path only.
    public func matchingPatterns(ruleIndex: Int, line: UnsafeRawBufferPointer) -> [Int] {
        guard ruleIndex >= 0, ruleIndex < ruleCount, !patterns[ruleIndex].isEmpty else { return [] }
        let list = patterns[ruleIndex].enumerated().map { index, pattern in
            PatternDatabase.Pattern(id: UInt32(index), expression: pattern.expression, caseless: pattern.caseless)
        }
        guard let database = try? PatternDatabase(list), let scratch = try? PatternDatabase.Scratch(for: database)
        else { return [] }
        var found = Set<Int>()
        database.scan(line, scratch: scratch) { id, _ in found.insert(Int(id)) }
        return found.sorted()
    }

    /// Whether rule `ruleIndex` is a log rule without patterns (it matches every line).
    public func matchesEveryLine(ruleIndex: Int) -> Bool { everyLine.contains(ruleIndex) }

    // MARK: Compilation

    private struct Compiled {
        var database: PatternDatabase?
        var everyLine: [Int] = []
        var patterns: [[LogPattern]] = []
        var captureCode: [[CapturePattern]] = []
        var diagnostics: [RuleDiagnostic] = []
    }

    private static func compile(_ rules: [Rule], cacheDirectory: String?) -> Compiled {
        var compiled = Compiled()
        var list: [PatternDatabase.Pattern] = []
        var owners: [(rule: Int, pattern: Int)] = []
        for (index, rule) in rules.enumerated() {
            guard case .log(let subject) = rule.subject else {
                compiled.patterns.append([])
                compiled.captureCode.append([])
                continue
            }
            compiled.patterns.append(subject.patterns)
            if subject.patterns.isEmpty { compiled.everyLine.append(index) }
            for (patternIndex, pattern) in subject.patterns.enumerated() {
                list.append(.init(id: UInt32(index), expression: pattern.expression, caseless: pattern.caseless))
                owners.append((index, patternIndex))
            }
            // PCRE2 code for every pattern of a rule with named groups: `captures` needs the first that matches.
            var codes: [CapturePattern] = []
            if subject.patterns.contains(where: { !$0.captureNames.isEmpty }) {
                for pattern in subject.patterns {
                    do {
                        codes.append(try CapturePattern(pattern.expression, caseless: pattern.caseless))
                    } catch {
                        // Reported below, with Vectorscan's verdict, unless Vectorscan accepts the pattern.
                        codes.removeAll()
                        break
                    }
                }
            }
            compiled.captureCode.append(codes)
        }
        guard !list.isEmpty else { return compiled }
        do {
            compiled.database = try PatternDatabase(list, cacheDirectory: cacheDirectory)
        } catch {
            // The engine names only the first refused pattern: try each alone to report all of them.
            var found = false
            for (position, owner) in owners.enumerated() {
                let pattern = rules[owner.rule].logPatterns[owner.pattern]
                if let diagnostic = PatternProblem.vectorscan(pattern, list[position]) {
                    compiled.diagnostics.append(diagnostic)
                    found = true
                }
            }
            if !found {
                // A problem of the whole set (its size): put it at the first pattern.
                let first = rules[owners[0].rule].logPatterns[owners[0].pattern]
                compiled.diagnostics.append(
                    .error(
                        "the \(list.count) log patterns cannot be compiled together: \(error.message); split the"
                            + " rules or simplify the patterns",
                        at: first.location
                    )
                )
            }
        }
        // Patterns Vectorscan accepts but PCRE2 refuses cannot give their named groups.
        for (index, rule) in rules.enumerated() {
            guard case .log(let subject) = rule.subject,
                subject.patterns.contains(where: { !$0.captureNames.isEmpty }),
                compiled.captureCode[index].isEmpty
            else { continue }
            for pattern in subject.patterns {
                if compiled.diagnostics.contains(where: { $0.message.hasPrefix(PatternProblem.quote(pattern)) }) {
                    continue
                }
                do {
                    _ = try CapturePattern(pattern.expression, caseless: pattern.caseless)
                } catch {
                    compiled.diagnostics.append(
                        .error(
                            "\(PatternProblem.quote(pattern)) cannot be used for named groups: PCRE2 refuses it:"
                                + " \(error.message); rewrite it in the syntax both engines read (PCRE)",
                            at: pattern.location(ofOffset: error.offset)
                        )
                    )
                }
            }
        }
        return compiled
    }
}

extension Rule {
    /// The `match:` patterns of a log rule; empty for other kinds.
    fileprivate var logPatterns: [LogPattern] {
        if case .log(let subject) = subject { return subject.patterns }
        return []
    }
}
