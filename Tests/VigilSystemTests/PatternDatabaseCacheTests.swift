import Synchronization
import Testing
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The cache of compiled pattern databases, against the real engine and real files: what is loaded, what
/// is refused (and then compiled again), concurrent writers, and the bound on the number of files.
@Suite(.timeLimit(.minutes(2)))
struct PatternDatabaseCacheTests {
    static let patterns: [PatternDatabase.Pattern] = [
        .init(id: 0, expression: "Failed password for (invalid user )?\\w+"),
        .init(id: 1, expression: "SSL certificate verification disabled", caseless: true),
        .init(id: 2, expression: "token=[A-Za-z0-9]{8}", singleMatch: false, leftmostStart: true),
    ]

    static let lines = [
        "sshd[42]: Failed password for invalid user bob",
        "upload: ssl CERTIFICATE verification DISABLED, token=abcd1234",
        "all good",
    ]

    /// Each line's matching ids, sorted.
    func matches(_ database: PatternDatabase) throws -> [[UInt32]] {
        let scratch = try PatternDatabase.Scratch(for: database)
        return Self.lines.map { line in
            var ids: [UInt32] = []
            var text = line
            text.withUTF8 { bytes in
                _ = database.scan(UnsafeRawBufferPointer(bytes), scratch: scratch) { id, _ in ids.append(id) }
            }
            return ids.sorted()
        }
    }

    func names(_ directory: String) -> [String] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var out: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    func mode(_ path: String) -> UInt32 {
        var info = stat()
        return stat(path, &info) == 0 ? UInt32(info.st_mode & 0o7777) : 0
    }

    @Test func theSecondConstructionLoadsFromTheCacheAndMatchesTheSame() throws {
        let tree = TempTree("hsdb")
        defer { tree.remove() }
        let directory = tree.path("cache/vigil")
        let first = try PatternDatabase(Self.patterns, cacheDirectory: directory)
        #expect(first.origin.source == .compiled)
        #expect(first.origin.stored)
        #expect(first.origin.cacheProblem == nil)
        let name = PatternDatabase.cacheFileName(for: Self.patterns)
        #expect(first.origin.cacheFile == directory + "/" + name)
        #expect(name.count == "patterns-".count + 32 + ".hsdb".count)
        #expect(names(directory) == [name])
        #expect(mode(directory) == 0o700)
        #expect(mode(directory + "/" + name) == 0o600)

        let second = try PatternDatabase(Self.patterns, cacheDirectory: directory)
        #expect(second.origin.source == .loadedFromCache, "\(second.origin)")
        #expect(second.origin.cacheProblem == nil)
        #expect(!second.origin.stored)
        #expect(second.count == Self.patterns.count)
        let expected: [[UInt32]] = [[0], [1, 2], []]
        #expect(try matches(first) == expected)
        #expect(try matches(second) == expected)

        // Any change to the list (an expression, a flag, an id, the order) is another file.
        var changed = Self.patterns
        changed[1].caseless = false
        #expect(PatternDatabase.cacheFileName(for: changed) != name)
        #expect(PatternDatabase.cacheFileName(for: Self.patterns.reversed()) != name)
        changed = Self.patterns
        changed[2].id = 7
        #expect(PatternDatabase.cacheFileName(for: changed) != name)
        let third = try PatternDatabase(changed, cacheDirectory: directory)
        #expect(third.origin.source == .compiled)
        #expect(names(directory).count == 2)
    }

    @Test func withoutADirectoryNothingIsCached() throws {
        let database = try PatternDatabase(Self.patterns)
        #expect(database.origin.source == .compiled)
        #expect(database.origin.cacheFile == nil)
        #expect(!database.origin.stored)
    }

    /// Ways a cache file can be unfit; each is refused, compiled again and replaced.
    enum Damage: CaseIterable, CustomTestStringConvertible {
        case otherPatterns, truncated, flippedByte, ownedByNobody, writableByOthers, symlink

        var testDescription: String { "\(self)" }

        /// What the refusal says.
        var problem: String {
            switch self {
            case .otherPatterns: "holds other patterns than its name says"
            case .truncated: "is truncated or corrupt"
            case .flippedByte: "checksum does not match"
            case .ownedByNobody: "is owned by uid 65534, not by uid \(geteuid()) running vigil"
            case .writableByOthers: "is writable by group or others (mode 0666)"
            case .symlink: "is a symbolic link"
            }
        }
    }

    @Test(.enabled(if: geteuid() == 0, "chown needs root"), arguments: Damage.allCases)
    func anUnfitCacheFileIsIgnoredAndCompiledAgain(_ damage: Damage) throws {
        let tree = TempTree("hsdb-damage")
        defer { tree.remove() }
        let directory = tree.path("cache")
        let path = directory + "/" + PatternDatabase.cacheFileName(for: Self.patterns)
        let other: [PatternDatabase.Pattern] = [.init(id: 0, expression: "other")]
        _ = try PatternDatabase(Self.patterns, cacheDirectory: directory)
        switch damage {
        case .otherPatterns:
            _ = try PatternDatabase(other, cacheDirectory: directory)
            let otherPath = directory + "/" + PatternDatabase.cacheFileName(for: other)
            #expect(rename(otherPath, path) == 0)
        case .truncated:
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(truncate(path, info.st_size / 2) == 0)
        case .flippedByte:
            let fd = open(path, O_RDWR)
            #expect(fd >= 0)
            var byte: UInt8 = 0
            #expect(pread(fd, &byte, 1, 200) == 1)
            byte ^= 0x40
            #expect(pwrite(fd, &byte, 1, 200) == 1)
            close(fd)
        case .ownedByNobody:
            #expect(chown(path, 65534, 65534) == 0)
        case .writableByOthers:
            #expect(chmod(path, 0o666) == 0)
        case .symlink:
            let target = tree.path("elsewhere.hsdb")
            #expect(rename(path, target) == 0)
            #expect(symlink(target, path) == 0)
        }
        let again = try PatternDatabase(Self.patterns, cacheDirectory: directory)
        #expect(again.origin.source == .compiled)
        #expect(again.origin.cacheProblem?.contains(damage.problem) == true, "\(again.origin)")
        #expect(again.origin.cacheProblem?.contains(path) == true, "\(again.origin)")
        #expect(try matches(again) == [[0], [1, 2], []])
        // The fresh compile replaced the file: the next construction loads it.
        #expect(again.origin.stored)
        #expect(mode(path) == 0o600)
        let next = try PatternDatabase(Self.patterns, cacheDirectory: directory)
        #expect(next.origin.source == .loadedFromCache, "\(next.origin)")
    }

    @Test func aDirectoryOthersCanWriteIsNeitherReadNorWritten() throws {
        let tree = TempTree("hsdb-dir")
        defer { tree.remove() }
        let directory = tree.path("cache")
        _ = try PatternDatabase(Self.patterns, cacheDirectory: directory)
        #expect(chmod(directory, 0o777) == 0)
        let name = PatternDatabase.cacheFileName(for: Self.patterns)
        let refused = try PatternDatabase(Self.patterns, cacheDirectory: directory)
        #expect(refused.origin.source == .compiled)
        #expect(!refused.origin.stored)
        #expect(
            refused.origin.cacheProblem
                == "the cache directory '\(directory)' is writable by group or others (mode 0777)"
        )
        #expect(names(directory) == [name])
        // A file where a directory should be: compiled, with the reason.
        let file = tree.path("file")
        tree.write("file", "x")
        let notDirectory = try PatternDatabase(Self.patterns, cacheDirectory: file)
        #expect(notDirectory.origin.source == .compiled)
        #expect(notDirectory.origin.cacheProblem?.contains("'\(file)'") == true, "\(notDirectory.origin)")
    }

    @Test func concurrentWritersLeaveOneValidFile() throws {
        let tree = TempTree("hsdb-race")
        defer { tree.remove() }
        let directory = tree.path("cache")
        let patterns = (0..<200).map { PatternDatabase.Pattern(id: UInt32($0), expression: "user\($0)x[0-9]+ failed") }
        let stored = Atomic<Int>(0)
        let failures = Locked<[String]>([])
        let threads = (0..<4).map { index in
            Threads.spawn(name: "vigil-test-\(index)") {
                do {
                    let database = try PatternDatabase(patterns, cacheDirectory: directory)
                    if database.origin.stored { stored.add(1, ordering: .relaxed) }
                    if let problem = database.origin.cacheProblem { failures.withLock { $0.append(problem) } }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        for thread in threads { Threads.join(thread) }
        #expect(failures.withLock { $0 } == [])
        #expect(stored.load(ordering: .relaxed) >= 1)
        let name = PatternDatabase.cacheFileName(for: patterns)
        #expect(names(directory) == [name], "no temporary file is left behind")
        let loaded = try PatternDatabase(patterns, cacheDirectory: directory)
        #expect(loaded.origin.source == .loadedFromCache, "\(loaded.origin)")
        let scratch = try PatternDatabase.Scratch(for: loaded)
        var ids: [UInt32] = []
        var line = "user77x12 failed"
        line.withUTF8 { bytes in
            _ = loaded.scan(UnsafeRawBufferPointer(bytes), scratch: scratch) { id, _ in ids.append(id) }
        }
        #expect(ids == [77])
    }

    @Test func theLeastRecentlyUsedFilesBeyondTheBoundAreRemoved() throws {
        let tree = TempTree("hsdb-bound")
        defer { tree.remove() }
        let directory = tree.path("cache")
        tree.makeDirectory("cache", mode: 0o700)
        // Ten older files, a minute apart, and a temporary file a crashed writer left two hours ago.
        let now = time(nil)
        func age(_ name: String, _ seconds: Int) {
            var times = [timespec(tv_sec: now - seconds, tv_nsec: 0), timespec(tv_sec: now - seconds, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, directory + "/" + name, &times, 0) == 0)
        }
        let old = (0..<10).map { "patterns-\(String(repeating: "0", count: 31))\($0).hsdb" }
        for (index, name) in old.enumerated() {
            tree.write("cache/" + name, "old", mode: 0o600)
            age(name, 3600 - 60 * index)
        }
        let crashed = "patterns-\(String(repeating: "f", count: 32)).hsdb.tmp.1.1"
        tree.write("cache/" + crashed, "partial", mode: 0o600)
        age(crashed, 7200)
        let recent = "patterns-\(String(repeating: "e", count: 32)).hsdb.tmp.2.1"
        tree.write("cache/" + recent, "being written", mode: 0o600)
        // The oldest of all, but loaded just now: a load marks a file used, so it stays.
        let other: [PatternDatabase.Pattern] = [.init(id: 0, expression: "other")]
        _ = try PatternDatabase(other, cacheDirectory: directory)
        let otherName = PatternDatabase.cacheFileName(for: other)
        age(otherName, 7000)
        #expect(try PatternDatabase(other, cacheDirectory: directory).origin.source == .loadedFromCache)

        let database = try PatternDatabase(Self.patterns, cacheDirectory: directory)
        #expect(database.origin.stored)
        let current = PatternDatabase.cacheFileName(for: Self.patterns)
        let kept = names(directory)
        #expect(kept.filter { $0.hasSuffix(".hsdb") }.count == PatternDatabase.cacheFileLimit, "\(kept)")
        #expect(kept.contains(current))
        #expect(kept.contains(otherName))
        #expect(Set(old[4...]).isSubset(of: Set(kept)), "the six newest old files stay: \(kept)")
        #expect(Set(old[..<4]).isDisjoint(with: Set(kept)), "the four oldest go: \(kept)")
        #expect(!kept.contains(crashed))
        #expect(kept.contains(recent), "a temporary file another writer may still be writing stays")
    }
}
