import CVigilLinux

#if canImport(Glibc)
import Glibc
#endif

/// Many regular expressions compiled into one Vectorscan (Hyperscan API) database and scanned in one pass,
/// so the cost of matching a line does not grow with the number of rules (DESIGN.md's engine table: 4.8 M
/// lines/s at 1,000 patterns where one `regexec` per rule manages 2 k). See `man` pages of Hyperscan:
/// `hs_compile_multi`, `hs_scan`.
///
/// The database is immutable and may be shared; each scanning thread needs its own `Scratch`.
public final class PatternDatabase: @unchecked Sendable {
    // @unchecked Sendable: a compiled hs_database_t is read-only and thread-safe (Hyperscan's guarantee);
    // scratch space, which is not, lives in `Scratch`.

    /// One pattern to compile.
    public struct Pattern: Sendable, Equatable {
        /// Reported with each match (for the caller: a rule's index).
        public var id: UInt32
        /// The expression (PCRE syntax as Vectorscan supports it).
        public var expression: String
        public var caseless: Bool
        /// Report at most one match per scan (the caller needs to know only that the line matched).
        public var singleMatch: Bool
        /// Report where each match starts, leftmost (`HS_FLAG_SOM_LEFTMOST`): needed to mask a whole match.
        /// It costs scan speed and the engine refuses some patterns with it, so only small sets use it.
        public var leftmostStart: Bool

        public init(
            id: UInt32,
            expression: String,
            caseless: Bool = false,
            singleMatch: Bool = true,
            leftmostStart: Bool = false
        ) {
            self.id = id
            self.expression = expression
            self.caseless = caseless
            self.singleMatch = singleMatch
            self.leftmostStart = leftmostStart
        }
    }

    /// A pattern the engine refused, with its index in the list given and the engine's reason.
    public struct CompileError: Error, Sendable, CustomStringConvertible {
        /// Index into the patterns given, or nil when the error is about the whole set.
        public var index: Int?
        public var message: String

        public var description: String {
            if let index { return "pattern \(index + 1) cannot be compiled: \(message)" }
            return "the patterns cannot be compiled together: \(message)"
        }
    }

    /// The compiled database (`hs_database_t *`), freed with the object.
    let database: OpaquePointer
    /// How many patterns it holds.
    public let count: Int
    /// Whether it was compiled or loaded from the cache, and how long that took: for callers to report.
    public let origin: Origin

    /// Compiles `patterns` for block mode (one line or buffer per scan). Throws the first error the engine
    /// reports, naming the pattern.
    ///
    /// With a `cacheDirectory`, the compiled form is looked up there first and stored there after a compile
    /// (see `PatternDatabase+Cache.swift`); any problem with the cache only means a compile, told in `origin`.
    public convenience init(_ patterns: [Pattern], cacheDirectory: String? = nil) throws(CompileError) {
        guard !patterns.isEmpty else { throw CompileError(index: nil, message: "no patterns given") }
        let started = Clock.monotonicNanoseconds()
        guard let cacheDirectory else {
            let compiled = try Self.compile(patterns)
            self.init(
                database: compiled,
                count: patterns.count,
                origin: Origin(source: .compiled, nanoseconds: Clock.monotonicNanoseconds() - started)
            )
            return
        }
        let (database, origin) = try Self.cachedOrCompiled(patterns, directory: cacheDirectory, started: started)
        self.init(database: database, count: patterns.count, origin: origin)
    }

    /// Takes ownership of `database`.
    private init(database: OpaquePointer, count: Int, origin: Origin) {
        self.database = database
        self.count = count
        self.origin = origin
    }

    /// The engine's flags for `pattern`.
    static func flags(_ pattern: Pattern) -> UInt32 {
        // Bytes, not UTF-8: Vectorscan's UTF8 mode is undefined behaviour on invalid UTF-8, and log lines may
        // hold anything.
        var value: UInt32 = 0
        if pattern.caseless { value |= UInt32(HS_FLAG_CASELESS) }
        if pattern.singleMatch { value |= UInt32(HS_FLAG_SINGLEMATCH) }
        if pattern.leftmostStart { value |= UInt32(HS_FLAG_SOM_LEFTMOST) }
        return value
    }

    /// `hs_compile_multi` for block mode: a database the caller owns (`hs_free_database`).
    static func compile(_ patterns: [Pattern]) throws(CompileError) -> OpaquePointer {
        let expressions = patterns.map { strdup($0.expression) }
        defer { for pointer in expressions { free(pointer) } }
        var flags = patterns.map(Self.flags)
        var ids = patterns.map(\.id)
        var compiled: OpaquePointer?
        var error: UnsafeMutablePointer<hs_compile_error_t>?
        let status = expressions.map { UnsafePointer($0) }.withUnsafeBufferPointer { list in
            flags.withUnsafeMutableBufferPointer { flagList in
                ids.withUnsafeMutableBufferPointer { idList in
                    hs_compile_multi(
                        list.baseAddress,
                        flagList.baseAddress,
                        idList.baseAddress,
                        UInt32(patterns.count),
                        UInt32(HS_MODE_BLOCK),
                        nil,
                        &compiled,
                        &error
                    )
                }
            }
        }
        guard status == HS_SUCCESS, let compiled else {
            let message = error.flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "error \(status)"
            let expression = error.map { Int($0.pointee.expression) } ?? -1
            if let error { hs_free_compile_error(error) }
            throw CompileError(index: expression >= 0 ? expression : nil, message: message)
        }
        return compiled
    }

    deinit { hs_free_database(database) }

    /// Scratch space for one scanning thread.
    public final class Scratch {
        fileprivate var pointer: OpaquePointer?

        public init(for database: PatternDatabase) throws(CompileError) {
            guard hs_alloc_scratch(database.database, &pointer) == HS_SUCCESS else {
                throw CompileError(index: nil, message: "cannot allocate scratch space")
            }
        }

        deinit { if let pointer { hs_free_scratch(pointer) } }
    }

    /// The engine's match callback (`match_event_handler` in hs_runtime.h): pattern id, start offset (exact only
    /// for `leftmostStart` patterns, else 0), end offset, flags (unused), and the context given to `scan`.
    /// Return 0 to go on, non-zero to stop the scan.
    public typealias MatchHandler =
        @convention(c) (
            _ id: UInt32, _ start: UInt64, _ end: UInt64, _ flags: UInt32, _ context: UnsafeMutableRawPointer?
        ) -> Int32

    /// Scans `bytes`, calling the C function `handler` with `context` for each match: no closure context, so no
    /// allocation (the hot path's form; a closure literal without captures converts to `MatchHandler`).
    /// Returns false when the engine failed (a stop asked by the handler is not a failure).
    public func scan(
        _ bytes: UnsafeRawBufferPointer,
        scratch: Scratch,
        context: UnsafeMutableRawPointer?,
        handler: MatchHandler
    ) -> Bool {
        // The engine wants a valid pointer even for zero bytes.
        var empty: UInt8 = 0
        let status = withUnsafePointer(to: &empty) { emptyPointer in
            hs_scan(
                database,
                (bytes.baseAddress ?? UnsafeRawPointer(emptyPointer)).assumingMemoryBound(to: CChar.self),
                UInt32(bytes.count),
                0,
                scratch.pointer,
                handler,
                context
            )
        }
        return status == HS_SUCCESS || status == HS_SCAN_TERMINATED
    }

    /// Scans `bytes` and calls `onMatch` with each matching pattern's id and the offset just past the match.
    /// Returns false when the engine failed (never for a match). Convenient, but it may allocate a closure
    /// context per call: hot paths use `scan(_:scratch:context:handler:)`.
    @discardableResult
    public func scan(
        _ bytes: UnsafeRawBufferPointer,
        scratch: Scratch,
        _ onMatch: (_ id: UInt32, _ end: Int) -> Void
    ) -> Bool {
        // The engine wants a valid pointer even for zero bytes.
        guard let base = bytes.baseAddress else {
            return withUnsafeBytes(of: UInt8(0)) { one in
                scan(UnsafeRawBufferPointer(start: one.baseAddress, count: 0), scratch: scratch, onMatch)
            }
        }
        return withoutActuallyEscaping(onMatch) { handler in
            var box = MatchBox(handler: handler)
            let status = withUnsafeMutablePointer(to: &box) { context in
                hs_scan(
                    database,
                    base.assumingMemoryBound(to: CChar.self),
                    UInt32(bytes.count),
                    0,
                    scratch.pointer,
                    { id, _, to, _, context in
                        context!.assumingMemoryBound(to: MatchBox.self).pointee.handler(id, Int(to))
                        return 0
                    },
                    context
                )
            }
            return status == HS_SUCCESS
        }
    }

    /// Where `scanDistinct` puts what it finds (the C callback's context: plain pointers, no closure, so a
    /// scan allocates nothing).
    private struct DistinctSink {
        var seen: UnsafeMutablePointer<UInt64>
        var ids: UnsafeMutablePointer<Int32>
        var capacity: Int
        var count: Int
    }

    /// Scans `bytes` and stores each distinct matching id once in `ids` (in the order the engine reports
    /// them), marking it in the bit set `seen` (bit `id`; the caller clears the bits it finds set, for the
    /// next scan); returns how many. `seen` holds a bit per id and `ids` room for every id. Allocates nothing.
    public func scanDistinct(
        _ bytes: UnsafeRawBufferPointer,
        scratch: Scratch,
        seen: UnsafeMutableBufferPointer<UInt64>,
        into ids: UnsafeMutableBufferPointer<Int32>
    ) -> Int {
        var sink = DistinctSink(seen: seen.baseAddress!, ids: ids.baseAddress!, capacity: ids.count, count: 0)
        _ = withUnsafeMutablePointer(to: &sink) { context in
            scan(bytes, scratch: scratch, context: context) { id, _, _, _, context in
                let sink = context!.assumingMemoryBound(to: DistinctSink.self)
                let word = Int(id >> 6)
                let bit: UInt64 = 1 << UInt64(id & 63)
                if sink.pointee.seen[word] & bit == 0 && sink.pointee.count < sink.pointee.capacity {
                    sink.pointee.seen[word] |= bit
                    sink.pointee.ids[sink.pointee.count] = Int32(truncatingIfNeeded: id)
                    sink.pointee.count += 1
                }
                return 0
            }
        }
        return sink.count
    }

    private struct MatchBox {
        let handler: (UInt32, Int) -> Void
    }
}
