import CVigilLinux

#if canImport(Glibc)
import Glibc
#endif

/// A cache of compiled databases: compiling 1,000 patterns takes Vectorscan about 0.9 s, loading the
/// serialized form a few milliseconds (`hs_serialize_database`, `hs_deserialize_database`; see
/// hs_common.h).
///
/// One file per pattern list, `DIR/patterns-<32 hex digits>.hsdb`: the digits are a 128-bit key over the
/// engine's version, the host platform, the mode and every pattern (expression, flags, id, in order), so a
/// changed rule, a Vectorscan upgrade or another CPU simply misses. The file holds a 64-byte header
/// (magic, key, length, CRC-32 of the payload) and the serialized database.
///
/// A file is loaded only when the directory and the file belong to the effective uid and neither is writable
/// by group or others: the daemon runs as root, and whoever can write the cache can feed the engine crafted
/// bytes. Anything else (a missing, foreign, truncated or stale file, an unwritable directory) means a
/// compile, never a failure; `Origin.cacheProblem` says what went wrong, for the caller to report.
extension PatternDatabase {
    /// How a database came to be: compiled, or loaded from the cache, and how long it took.
    public struct Origin: Sendable, Equatable {
        /// Where the database came from.
        public enum Source: Sendable, Equatable {
            /// Compiled by Vectorscan in this process.
            case compiled
            /// Deserialized from the cache file.
            case loadedFromCache
        }

        public var source: Source
        /// Monotonic time from the start of the lookup (or compile) to a usable database, in nanoseconds;
        /// after a compile it includes storing the result.
        public var nanoseconds: UInt64
        /// The cache file read or written; nil when no cache directory was given.
        public var cacheFile: String?
        /// Whether a compiled database was written to `cacheFile`.
        public var stored: Bool
        /// Why the cache was not used, or not written, as a clause for a message (`'/x/patterns-….hsdb' is
        /// writable by group or others (mode 0666)`); nil when it worked or simply held no file yet.
        public var cacheProblem: String?

        public init(
            source: Source,
            nanoseconds: UInt64,
            cacheFile: String? = nil,
            stored: Bool = false,
            cacheProblem: String? = nil
        ) {
            self.source = source
            self.nanoseconds = nanoseconds
            self.cacheFile = cacheFile
            self.stored = stored
            self.cacheProblem = cacheProblem
        }
    }

    /// The most `patterns-*.hsdb` files a cache directory keeps: writing one removes the least recently used
    /// beyond it (a load marks a file used).
    public static let cacheFileLimit = 8

    /// The cache file name for `patterns` compiled by this engine on this host: `patterns-<32 hex>.hsdb`.
    public static func cacheFileName(for patterns: [Pattern]) -> String {
        "patterns-\(PatternCacheKey(patterns).hex).hsdb"
    }

    /// The database for `patterns` from `directory`'s cache file, else compiled and stored there.
    static func cachedOrCompiled(
        _ patterns: [Pattern],
        directory: String,
        started: UInt64
    ) throws(CompileError) -> (OpaquePointer, Origin) {
        let key = PatternCacheKey(patterns)
        let name = "patterns-\(key.hex).hsdb"
        let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        var problems: [String] = []
        switch PatternCacheFile.load(directory: directory, name: name, key: key) {
        case .loaded(let database):
            let origin = Origin(
                source: .loadedFromCache,
                nanoseconds: Clock.monotonicNanoseconds() - started,
                cacheFile: path
            )
            return (database, origin)
        case .missing:
            break
        case .refused(let problem):
            problems.append(problem)
        }
        let database = try compile(patterns)
        var stored = false
        if let problem = PatternCacheFile.store(database, directory: directory, name: name, key: key) {
            // The directory was already named in the load's problem when that was the trouble.
            if !problems.contains(problem) { problems.append(problem) }
        } else {
            stored = true
        }
        let origin = Origin(
            source: .compiled,
            nanoseconds: Clock.monotonicNanoseconds() - started,
            cacheFile: path,
            stored: stored,
            cacheProblem: problems.isEmpty ? nil : problems.joined(separator: "; ")
        )
        return (database, origin)
    }
}

/// The 128-bit name of a compiled pattern list: two FNV-1a 64 hashes with different seeds (AlertIdentity's
/// house way) over a format tag, `hs_version()`, the host platform (`hs_populate_platform`: the compiler
/// tunes for it, and a database for other CPU features is refused), the mode and each pattern's id, flags
/// and length-prefixed expression, in order. Not a cryptographic hash: the cache's protection is who may
/// write it, not the key.
struct PatternCacheKey: Equatable {
    /// The FNV-1a 64 offset basis, and the low 64 bits of the 128-bit one (AlertIdentity's second seed).
    static let seeds: (UInt64, UInt64) = (0xcbf2_9ce4_8422_2325, 0x62b8_2175_6295_c58d)
    static let prime: UInt64 = 0x0000_0100_0000_01b3

    var high: UInt64
    var low: UInt64

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init(_ patterns: [PatternDatabase.Pattern]) {
        (high, low) = Self.seeds
        add(Array("vigil-hsdb-1".utf8))
        add(Array(String(cString: hs_version()).utf8))
        var platform = hs_platform_info_t()
        if hs_populate_platform(&platform) == HS_SUCCESS {
            add(UInt64(platform.tune))
            add(UInt64(platform.cpu_features))
        }
        add(UInt64(HS_MODE_BLOCK))
        add(UInt64(patterns.count))
        for pattern in patterns {
            add(UInt64(pattern.id))
            add(UInt64(PatternDatabase.flags(pattern)))
            let bytes = Array(pattern.expression.utf8)
            add(UInt64(bytes.count))
            add(bytes)
        }
    }

    private mutating func add(_ bytes: [UInt8]) {
        for byte in bytes { add(byte: byte) }
    }

    /// Eight bytes, least significant first, so the key does not depend on the host's byte order.
    private mutating func add(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { add(byte: UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    private mutating func add(byte: UInt8) {
        high = (high ^ UInt64(byte)) &* Self.prime
        low = (low ^ UInt64(byte)) &* Self.prime
    }

    /// 32 lowercase hex digits.
    var hex: String { Self.hex(high) + Self.hex(low) }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
