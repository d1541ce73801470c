import Testing
import VigilSystem
import VigilTestSupport

@testable import VigilDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The per-sink spool: a durable FIFO that keeps order across segments, resumes exactly at its cursor,
/// survives torn writes and a damaged cursor (at least once), refuses to grow past its limit, frees
/// acknowledged segments, and moves records between two threads without loss or duplication.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct SpoolTests {
    /// Record `n`: a JSON line whose length varies with `n`, so frames straddle segment and buffer ends.
    static func record(_ n: Int) -> [UInt8] {
        Array(#"{"n":\#(n),"pad":"\#(String(repeating: "x", count: n % 37))"}"#.utf8) + [0x0A]
    }

    /// The `n` a record carries, or -1.
    static func number(_ record: [UInt8]) -> Int {
        let text = String(decoding: record, as: UTF8.self)
        guard let start = text.firstRange(of: #"{"n":"#)?.upperBound, let comma = text[start...].firstIndex(of: ",")
        else { return -1 }
        return Int(text[start..<comma]) ?? -1
    }

    /// Appends records `range` and expects each to go in.
    static func append(_ range: Range<Int>, to spool: Spool) {
        for n in range {
            let result = record(n).withUnsafeBytes { spool.append($0) }
            #expect(result == .appended, "record \(n)")
        }
    }

    /// Reads and acknowledges everything, `batch` at a time; returns the records' numbers in order.
    static func drain(_ spool: Spool, batch: Int = 7) -> [Int] {
        var numbers: [Int] = []
        while true {
            let records = spool.read(upTo: batch)
            if records.isEmpty { return numbers }
            numbers += records.map(number)
            spool.acknowledge(records.count)
        }
    }

    /// The spool's segment files, sorted.
    static func segments(in directory: String) -> [String] {
        guard let fd = try? SafeDirectory.openTrusted(directory) else { return [] }
        defer { Syscall.close(fd) }
        return ((try? SafeDirectory.names(in: fd)) ?? []).filter { $0.hasSuffix(".spool") }.sorted()
    }

    /// Replaces `path`'s content with `bytes`.
    static func overwrite(_ path: String, with bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        precondition(fd >= 0, "open \(path): errno \(errno)")
        defer { close(fd) }
        bytes.withUnsafeBytes { precondition(write(fd, $0.baseAddress, $0.count) == $0.count) }
    }

    /// The permission bits of `path`.
    static func mode(_ path: String) -> UInt32 {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        return UInt32(info.st_mode) & 0o7777
    }

    @Test func orderIsKeptAcrossSegments() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("a/b/spool")
        let spool = try Spool(directory: directory, limits: .init(maximumBytes: 1 << 20, segmentBytes: 300))
        defer { spool.close() }
        Self.append(0..<200, to: spool)
        #expect(Self.segments(in: directory).count > 10)
        #expect(spool.depth.records == 200)
        #expect(Self.drain(spool) == Array(0..<200))
        #expect(spool.depth == Spool.Depth(records: 0, bytes: 0))
        // Directory and files are private: alerts may name paths and users.
        #expect(Self.mode(directory) == 0o700)
        #expect(Self.mode(tree.path("a")) == 0o700)
        #expect(Self.mode(directory + "/cursor") == 0o600)
        for name in Self.segments(in: directory) { #expect(Self.mode(directory + "/" + name) == 0o600) }
    }

    @Test func reopeningResumesExactlyAtTheCursor() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("spool")
        let limits = Spool.Limits(maximumBytes: 1 << 20, segmentBytes: 1000)
        do {
            let spool = try Spool(directory: directory, limits: limits)
            Self.append(0..<50, to: spool)
            let first = spool.read(upTo: 20)
            #expect(first.map(Self.number) == Array(0..<20))
            spool.acknowledge(20)
            // Read but not acknowledged: these come again after the restart.
            #expect(spool.read(upTo: 5).map(Self.number) == Array(20..<25))
            spool.close()
        }
        let spool = try Spool(directory: directory, limits: limits)
        defer { spool.close() }
        #expect(spool.recoveryNotes.isEmpty)
        #expect(spool.depth.records == 30)
        #expect(Self.drain(spool, batch: 4) == Array(20..<50))
        // Appends after a reopen go on after the old records.
        Self.append(50..<60, to: spool)
        #expect(Self.drain(spool) == Array(50..<60))
    }

    @Test func aTornLastFrameIsCutAtReopen() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("spool")
        let limits = Spool.Limits(maximumBytes: 1 << 20)
        do {
            let spool = try Spool(directory: directory, limits: limits)
            Self.append(0..<10, to: spool)
            spool.close()
        }
        let segment = directory + "/00000001.spool"
        let whole = try #require(fileBytes(segment))
        // A write torn by a SIGKILL: the last frame is missing its end.
        Self.overwrite(segment, with: Array(whole.dropLast(5)))
        do {
            let spool = try Spool(directory: directory, limits: limits)
            #expect(spool.recoveryNotes.count == 1)
            #expect(spool.recoveryNotes.first?.contains("'\(segment)'") == true)
            #expect(Self.drain(spool) == Array(0..<9))
            Self.append(100..<102, to: spool)
            spool.close()
        }
        // Garbage after good frames: a plausible header whose payload fails its CRC, then noise.
        var garbage = try #require(fileBytes(segment))
        let good = garbage.count
        garbage += [16, 0, 0, 0, 1, 2, 3, 4] + Array(repeating: 0x41, count: 16) + [0xFF, 0xFE, 0x00]
        Self.overwrite(segment, with: garbage)
        let spool = try Spool(directory: directory, limits: limits)
        defer { spool.close() }
        #expect(spool.recoveryNotes.count == 1)
        #expect(try #require(fileBytes(segment)).count == good)
        #expect(Self.drain(spool) == [100, 101])
    }

    @Test func zeroFilledTailIsNotTakenForRecords() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("spool")
        do {
            let spool = try Spool(directory: directory, limits: .init(maximumBytes: 1 << 20))
            Self.append(0..<3, to: spool)
            spool.close()
        }
        let segment = directory + "/00000001.spool"
        Self.overwrite(segment, with: try #require(fileBytes(segment)) + Array(repeating: 0, count: 4096))
        let spool = try Spool(directory: directory, limits: .init(maximumBytes: 1 << 20))
        defer { spool.close() }
        #expect(Self.drain(spool) == [0, 1, 2])
    }

    /// A SIGKILL can stop `append` at any byte of its `pwrite`. A helper executable to kill is not available
    /// to these tests, so the crash is simulated: the segment is cut at every offset inside its last frames
    /// (and at random ones earlier, with garbage after), and each reopen must keep exactly the whole frames.
    @Test func everyCrashPointKeepsExactlyTheWholeRecords() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let source = tree.path("source")
        var ends: [Int] = []
        do {
            let spool = try Spool(directory: source, limits: .init(maximumBytes: 1 << 20))
            var total = 0
            for n in 0..<40 {
                total += Spool.frameHeaderBytes + Self.record(n).count
                ends.append(total)
            }
            Self.append(0..<40, to: spool)
            spool.close()
        }
        let whole = try #require(fileBytes(source + "/00000001.spool"))
        #expect(whole.count == ends.last)
        var generator = SystemRandomNumberGenerator()
        var cuts = Array((ends[36])...whole.count)
        for _ in 0..<40 { cuts.append(Int.random(in: 0..<whole.count, using: &generator)) }
        for (attempt, cut) in cuts.enumerated() {
            let directory = tree.path("crash\(attempt)")
            tree.makeDirectory("crash\(attempt)", mode: 0o700)
            var bytes = Array(whole[0..<cut])
            if attempt % 3 == 0 { bytes += (0..<Int.random(in: 1...64)).map { _ in UInt8.random(in: 0...255) } }
            let fd = open(directory + "/00000001.spool", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            bytes.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
            close(fd)
            let spool = try Spool(directory: directory, limits: .init(maximumBytes: 1 << 20))
            let kept = ends.filter { $0 <= cut }.count
            let numbers = Self.drain(spool)
            #expect(numbers == Array(0..<kept), "cut at \(cut)")
            Self.append(1000..<1001, to: spool)
            #expect(Self.drain(spool) == [1000], "cut at \(cut)")
            spool.close()
        }
    }

    @Test func aDamagedCursorMeansAtLeastOnceFromTheOldest() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("spool")
        let limits = Spool.Limits(maximumBytes: 1 << 20, segmentBytes: 600)
        do {
            let spool = try Spool(directory: directory, limits: limits)
            Self.append(0..<30, to: spool)
            spool.acknowledge(0)
            #expect(spool.read(upTo: 3).count == 3)
            spool.acknowledge(3)
            spool.close()
        }
        let oldest = try #require(Self.segments(in: directory).first)
        var cursor = try #require(fileBytes(directory + "/cursor"))
        #expect(cursor.count == Spool.cursorBytes)
        cursor[10] ^= 0x40
        Self.overwrite(directory + "/cursor", with: cursor)
        let spool = try Spool(directory: directory, limits: limits)
        defer { spool.close() }
        #expect(spool.recoveryNotes.contains { $0.contains("damaged") })
        // Nothing is lost: the oldest segment is read again from its start, records 0-2 a second time.
        #expect(Self.segments(in: directory).first == oldest)
        #expect(Self.drain(spool) == Array(0..<30))
    }

    @Test func aCursorInsideARecordIsTreatedAsDamaged() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("spool")
        do {
            let spool = try Spool(directory: directory, limits: .init(maximumBytes: 1 << 20))
            Self.append(0..<5, to: spool)
            spool.close()
        }
        Self.overwrite(directory + "/cursor", with: Spool.encodeCursor(.init(segment: 1, offset: 3)))
        let spool = try Spool(directory: directory, limits: .init(maximumBytes: 1 << 20))
        defer { spool.close() }
        #expect(spool.recoveryNotes.count == 1)
        #expect(Self.drain(spool) == Array(0..<5))
    }

    @Test func fullWritesNothingAndSpaceComesBackAfterAcknowledging() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("spool")
        let frame = Int64(Spool.frameHeaderBytes + 100)
        let payload = [UInt8](repeating: 0x61, count: 99) + [0x0A]
        let spool = try Spool(directory: directory, limits: .init(maximumBytes: 10 * frame, segmentBytes: 3 * frame))
        defer { spool.close() }
        for _ in 0..<10 { #expect(payload.withUnsafeBytes { spool.append($0) } == .appended) }
        let before = spool.depth
        let files = Self.segments(in: directory).map { fileBytes(directory + "/" + $0)?.count ?? -1 }
        #expect(payload.withUnsafeBytes { spool.append($0) } == .full)
        #expect(spool.depth == before)
        #expect(before == Spool.Depth(records: 10, bytes: 10 * frame))
        #expect(Self.segments(in: directory).map { fileBytes(directory + "/" + $0)?.count ?? -1 } == files)
        #expect(spool.read(upTo: 3).count == 3)
        spool.acknowledge(3)
        for _ in 0..<3 { #expect(payload.withUnsafeBytes { spool.append($0) } == .appended) }
        #expect(payload.withUnsafeBytes { spool.append($0) } == .full)
        #expect(spool.depth == before)
    }

    @Test func acknowledgedSegmentsAreDeleted() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("spool")
        let limits = Spool.Limits(maximumBytes: 1 << 20, segmentBytes: 256)
        do {
            let spool = try Spool(directory: directory, limits: limits)
            Self.append(0..<100, to: spool)
            let all = Self.segments(in: directory)
            #expect(all.count > 5)
            // Half way: the segments wholly before the cursor are gone, the rest stay.
            var read = 0
            while read < 50 {
                let records = spool.read(upTo: 50 - read)
                spool.acknowledge(records.count)
                read += records.count
            }
            let left = Self.segments(in: directory)
            #expect(left.count < all.count && left.count > 1)
            #expect(left == Array(all.suffix(left.count)))
            #expect(Self.drain(spool) == Array(50..<100))
            #expect(Self.segments(in: directory) == [all[all.count - 1]])
            spool.close()
        }
        // After a reopen the last segment is appended to, and nothing old comes back.
        let spool = try Spool(directory: directory, limits: limits)
        defer { spool.close() }
        #expect(spool.depth.records == 0)
        Self.append(100..<103, to: spool)
        #expect(Self.drain(spool) == [100, 101, 102])
    }

    @Test func oneAppenderAndOneReaderMoveAHundredThousandRecords() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("spool")
        let spool = try Spool(directory: directory, limits: .init(maximumBytes: 256 << 10, segmentBytes: 16 << 10))
        defer { spool.close() }
        let total = 100_000
        let outcome = Locked((received: 0, firstProblem: String?.none))
        let appender = Threads.spawn(name: "spool-append") {
            var n = 0
            let deadline = Clock.monotonicNanoseconds() + 60_000_000_000
            while n < total && Clock.monotonicNanoseconds() < deadline {
                switch Self.record(n).withUnsafeBytes({ spool.append($0) }) {
                case .appended: n += 1
                case .full: sched_yield()  // the reader frees space; the limit is small on purpose
                case .failed(let message):
                    outcome.withLock { $0.firstProblem = $0.firstProblem ?? message }
                    return
                }
                if n % 5000 == 0 { spool.sync() }
            }
        }
        let reader = Threads.spawn(name: "spool-read") {
            var expected = 0
            let deadline = Clock.monotonicNanoseconds() + 60_000_000_000
            while expected < total && Clock.monotonicNanoseconds() < deadline {
                let records = spool.read(upTo: 64)
                if records.isEmpty {
                    sched_yield()
                    continue
                }
                for record in records {
                    let n = Self.number(record)
                    if n != expected {
                        outcome.withLock {
                            if $0.firstProblem == nil { $0.firstProblem = "got \(n), expected \(expected)" }
                        }
                    }
                    expected = n + 1
                }
                spool.acknowledge(records.count)
                if expected % 4096 < 64 { spool.sync() }
                outcome.withLock { $0.received = expected }
            }
        }
        Threads.join(appender)
        Threads.join(reader)
        let result = outcome.withLock { $0 }
        #expect(result.firstProblem == nil)
        #expect(result.received == total)
        #expect(spool.depth == Spool.Depth(records: 0, bytes: 0))
        #expect(Self.segments(in: directory).count == 1)
        #expect(spool.read(upTo: 1).isEmpty)
    }

    @Test func largeRecordsRoundTripAndOversizedOnesFail() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("spool")
        let spool = try Spool(directory: directory, limits: .init(maximumBytes: 8 << 20, segmentBytes: 64 << 10))
        defer { spool.close() }
        let big = (0..<(300 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(big.withUnsafeBytes { spool.append($0) } == .appended)
        Self.append(0..<3, to: spool)
        let tooBig = [UInt8](repeating: 0x20, count: (1 << 20) + 1)
        let result = tooBig.withUnsafeBytes { spool.append($0) }
        guard case .failed(let message) = result else {
            Issue.record("an over-long record gave \(result)")
            return
        }
        #expect(message.contains("1 MiB") && message.contains(directory))
        #expect([UInt8]().withUnsafeBytes { spool.append($0) } != .appended)
        let records = spool.read(upTo: 10)
        #expect(records.count == 4)
        #expect(records.first == big)
        #expect(records.dropFirst().map(Self.number) == [0, 1, 2])
    }

    @Test func refusedRecordsAreSetAsideWithTheirReason() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        let directory = tree.path("spool")
        let spool = try Spool(directory: directory, limits: .init(maximumBytes: 1 << 20))
        defer { spool.close() }
        Self.append(0..<3, to: spool)
        let records = spool.read(upTo: 2)
        #expect(spool.setAside(records, reason: "HTTP 400 \"bad\"") == nil)
        spool.acknowledge(2)
        #expect(spool.setAside([Array("not json\n".utf8)], reason: "x") == nil)
        let path = directory + "/" + Spool.rejectedName
        #expect(Self.mode(path) == 0o600)
        let lines = String(decoding: try #require(fileBytes(path)), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].contains(#""reason":"HTTP 400 \"bad\"","record":{"n":0,"pad":""}}"#))
        #expect(lines[1].contains(#""record":{"n":1,"pad":"x"}}"#))
        #expect(lines[2].hasSuffix(#""record":"not json"}"#))
        #expect(Self.drain(spool) == [2])
    }

    /// Only the canonical segment names count: other files in the directory are left alone.
    @Test func segmentNamesAreCanonical() throws {
        #expect(Spool.segmentName(1) == "00000001.spool")
        #expect(Spool.segmentName(123_456_789) == "123456789.spool")
        #expect(Spool.segmentNumber("00000042.spool") == 42)
        #expect(Spool.segmentNumber("123456789.spool") == 123_456_789)
        for name in ["1.spool", "000000001.spool", "0000000x.spool", ".spool", "00000001.spool~", "cursor"] {
            #expect(Spool.segmentNumber(name) == nil, "\(name)")
        }
        let tree = TempTree("spool")
        defer { tree.remove() }
        tree.makeDirectory("spool", mode: 0o700)
        tree.write("spool/1.spool", "not a segment")
        let spool = try Spool(directory: tree.path("spool"), limits: .init(maximumBytes: 1 << 20))
        defer { spool.close() }
        Self.append(0..<2, to: spool)
        #expect(Self.drain(spool) == [0, 1])
        #expect(tree.read("spool/1.spool") == "not a segment")
    }

    @Test func aSymlinkUnderASegmentNameIsRefused() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        tree.makeDirectory("spool", mode: 0o700)
        tree.write("elsewhere", "secret")
        tree.symlink("spool/00000001.spool", to: tree.path("elsewhere"))
        let error = #expect(throws: SpoolError.self) {
            _ = try Spool(directory: tree.path("spool"), limits: .init(maximumBytes: 1 << 20))
        }
        #expect(
            error?.message.contains("'\(tree.path("spool/00000001.spool"))'") == true,
            "\(String(describing: error))"
        )
        #expect(tree.read("elsewhere") == "secret")
    }

    @Test func aFullFilesystemFailsWithThePathAndLeavesNoTornFrame() throws {
        let tree = TempTree("spool")
        defer { tree.remove() }
        tree.makeDirectory("small")
        let small = tree.path("small")
        guard mount("tmpfs", small, "tmpfs", 0, "size=64k") == 0 else {
            let code = errno
            if code == EPERM { try Test.cancel("mounting a 64 KiB tmpfs needs root (CAP_SYS_ADMIN)") }
            Issue.record("mounting a 64 KiB tmpfs on '\(small)' failed: errno \(code)")
            return
        }
        defer { umount2(small, Int32(MNT_DETACH)) }
        let directory = small + "/spool"
        let limits = Spool.Limits(maximumBytes: 8 << 20, segmentBytes: 4 << 20)
        var appended = 0
        do {
            let spool = try Spool(directory: directory, limits: limits)
            let payload = [UInt8](repeating: 0x62, count: 1000)
            var failure: String?
            while failure == nil && appended < 1000 {
                switch payload.withUnsafeBytes({ spool.append($0) }) {
                case .appended: appended += 1
                case .full: failure = "full"
                case .failed(let message): failure = message
                }
            }
            let message = try #require(failure)
            #expect(message.contains("'\(directory)/00000001.spool'"), "\(message)")
            #expect(message.contains("No space left on device") || message.contains("ENOSPC"), "\(message)")
            #expect(appended > 10)
            #expect(spool.depth.records == appended)
            #expect(fileBytes(directory + "/00000001.spool")?.count == appended * (1000 + Spool.frameHeaderBytes))
            spool.close()
        }
        let spool = try Spool(directory: directory, limits: limits)
        defer { spool.close() }
        #expect(spool.recoveryNotes.isEmpty)
        #expect(spool.depth.records == appended)
    }
}
