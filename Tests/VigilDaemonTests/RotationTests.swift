import Synchronization
import Testing
import VigilDaemon
import VigilHarness
import VigilRules
import VigilSystem
import VigilTestSupport

@testable import VigilDaemon

#if canImport(Glibc)
import Glibc
#endif

// MARK: Helpers

/// A rotate rule built directly (the YAML parser for rotate rules lives on another branch).
func rotateRule(
    _ subject: RotateSubject,
    id: String = "rotate",
    severity: Severity = .info
) -> Rule {
    let location = SourceLocation(file: "test.yaml", line: 90, column: 3)
    return Rule(
        id: id,
        location: location,
        severity: severity,
        description: nil,
        message: try! MessageTemplate(parsing: "{path} rotated to {rotated} ({reason}, {size} bytes); {outcome}"),
        subject: .rotate(subject),
        actions: [.alert(sinks: nil, location: location)],
        enabled: true,
        tags: []
    )
}

/// A server path as a rule's path pattern.
func pathPattern(_ path: String) -> PathPattern {
    let slash = path.lastIndex(of: "/")!
    let directory = slash == path.startIndex ? "/" : String(path[..<slash])
    let name = String(path[path.index(after: slash)...])
    let isGlob = name.contains(where: { "*?[".contains($0) })
    return PathPattern(raw: path, directory: directory, name: isGlob ? .glob(name) : .exact(name))
}

let testLocation = SourceLocation(file: "test.yaml", line: 95, column: 5)

extension DaemonFixture {
    /// A daemon with `rotate` rules (and optional YAML rules), the tree prepared by `prepare`.
    convenience init(
        rotate: [Rule],
        yaml: String = "",
        label: String,
        prepare: (TempTree) -> Void = { _ in },
        configure: @escaping (inout Daemon.Options) -> Void = { _ in }
    ) throws {
        try self.init(rules: yaml, label: label, prepare: prepare) { options in
            options.ruleSet.rules += rotate
            configure(&options)
        }
    }

    /// The next alert of `kind` (about `path`, when given; others skipped, cookies too), or nil after the
    /// deadline.
    func alert(kind: String, path: String? = nil, timeoutMilliseconds: Int = 10_000) -> SeenAlert? {
        alerts(kinds: [kind], path: path, timeoutMilliseconds: timeoutMilliseconds)[kind]
    }

    /// The first alert of each of `kinds` (in any order), waiting until all arrived or the deadline passed.
    func alerts(kinds: Set<String>, path: String? = nil, timeoutMilliseconds: Int = 10_000) -> [String: SeenAlert] {
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        var found: [String: SeenAlert] = [:]
        while found.count < kinds.count {
            let now = Clock.monotonicNanoseconds()
            guard now < deadline, let alert = next(timeoutMilliseconds: Int((deadline - now) / 1_000_000) + 1) else {
                break
            }
            if kinds.contains(alert.kind) && found[alert.kind] == nil && (path == nil || alert.path == path) {
                found[alert.kind] = alert
            }
        }
        return found
    }
}

/// Waits (on inotify) until nothing is under `path`; false at the deadline.
func waitForAbsence(_ path: String, timeoutMilliseconds: Int = 10_000) -> Bool {
    let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
    let slash = path.lastIndex(of: "/")!
    guard let inotify = try? Inotify() else { return false }
    _ = try? inotify.addWatch(String(path[..<slash]), mask: 0x40 | 0x200)  // IN_MOVED_FROM | IN_DELETE
    var buffer = [UInt8](repeating: 0, count: 4096)
    while lstatOf(path) != nil {
        let now = Clock.monotonicNanoseconds()
        if now >= deadline { return false }
        var pfd = pollfd(fd: inotify.descriptor, events: Int16(POLLIN), revents: 0)
        if poll(&pfd, 1, Int32(min((deadline - now) / 1_000_000 + 1, 1000))) > 0 {
            _ = buffer.withUnsafeMutableBytes { read(inotify.descriptor, $0.baseAddress, $0.count) }
        }
    }
    return true
}

/// The whole content of a file, or nil when it cannot be opened.
func contents(of path: String) -> [UInt8]? { fileBytes(path) }

/// `lstat` of a path, nil when missing.
func lstatOf(_ path: String) -> stat? {
    var info = stat()
    return lstat(path, &info) == 0 ? info : nil
}

/// Runs `gzip` with `arguments`; returns its exit code and what it wrote to standard output.
func runGzip(_ arguments: [String], scratch: String) throws -> (code: Int32, output: [UInt8]) {
    let output = scratch + "/gzip-out-\(UInt32.random(in: 0..<UInt32.max))"
    let child = try ChildProcess(executable: "/usr/bin/gzip", arguments: arguments, standardOutput: output)
    let status = child.wait(timeoutMilliseconds: 60_000) ?? -1
    defer { unlink(output) }
    return (ChildProcess.exitCode(status), contents(of: output) ?? [])
}

/// The date extension of now (and a minute ago, in case a test straddles midnight).
func dateSuffixes(_ format: String = "-%Y%m%d") -> [String] {
    let now = Clock.realtime().seconds
    return [LocalClock.format(now, format), LocalClock.format(now - 60, format)]
}

/// Sets a file's mtime (and atime) `seconds` into the past, without following a symlink.
func age(_ path: String, seconds: Int64) {
    let when = timespec(tv_sec: Int(Clock.realtime().seconds - seconds), tv_nsec: 0)
    var times = [when, when]
    precondition(utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0, "utimensat \(path): \(errno)")
}

let runningAsRoot = getuid() == 0

// MARK: Boundaries (pure)

/// The civil time `seconds` after 1970-01-01 00:00 (no zone).
func civilTime(_ seconds: Int64) -> LocalTime {
    let days = Int((seconds >= 0 ? seconds : seconds - 86_399) / 86_400)
    let date = RotationSchedule.civilDate(daysSinceEpoch: days)
    let second = Int(seconds - Int64(days) * 86_400)
    return LocalTime(
        year: date.year,
        month: date.month,
        day: date.day,
        hour: second / 3600,
        minute: second % 3600 / 60,
        second: second % 60
    )
}

/// Seconds after 1970-01-01 00:00 of a civil time (no zone).
func civilSeconds(_ time: LocalTime) -> Int64 {
    Int64(RotationSchedule.daysSinceEpoch(year: time.year, month: time.month, day: time.day)) * 86_400
        + Int64(time.hour * 3600 + time.minute * 60 + time.second)
}

/// Whether Berlin keeps summer time (CEST) at `instant`: 2025-03-30 01:00 UTC to 2025-10-26 01:00 UTC.
func berlinSummer(_ instant: Int64) -> Bool { instant >= 1_743_296_400 && instant < 1_761_440_400 }

/// A zone with Berlin's rules for 2025 (CET, and CEST in summer), built on the pure calendar functions:
/// daylight saving is tested without touching TZ in a test process shared with other tests.
let berlin2025 = RotationSchedule.Zone(
    localTime: { instant in civilTime(instant + (berlinSummer(instant) ? 7200 : 3600)) },
    instant: { time in
        // Like mktime with tm_isdst = -1: a time in the spring gap is moved forward by the gap; an ambiguous
        // autumn time takes summer time (the first occurrence).
        let naive = civilSeconds(time)
        if berlinSummer(naive - 7200) { return naive - 7200 }
        if berlinSummer(naive - 3600) { return naive - 3600 + 3600 }
        return naive - 3600
    }
)

/// UTC.
let utcZone = RotationSchedule.Zone(localTime: { civilTime($0) }, instant: { civilSeconds($0) })

/// Seconds since the epoch of a UTC civil time.
func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Int64 {
    utcZone.instant(LocalTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second))
}

@Suite struct RotationScheduleTests {
    @Test func calendarArithmeticAcrossMonthAndYearEnds() {
        let cases: [(LocalTime, RotationInterval, LocalTime)] = [
            (
                LocalTime(year: 2025, month: 1, day: 31, hour: 23, minute: 59), .hourly,
                LocalTime(year: 2025, month: 2, day: 1)
            ),
            (LocalTime(year: 2025, month: 1, day: 31, hour: 12), .daily, LocalTime(year: 2025, month: 2, day: 1)),
            (LocalTime(year: 2024, month: 2, day: 28, hour: 5), .daily, LocalTime(year: 2024, month: 2, day: 29)),
            (LocalTime(year: 2025, month: 2, day: 28, hour: 5), .daily, LocalTime(year: 2025, month: 3, day: 1)),
            (LocalTime(year: 2025, month: 12, day: 31, hour: 23), .daily, LocalTime(year: 2026, month: 1, day: 1)),
            // 2025-04-13 is a Sunday: the next week starts Monday the 14th; a Monday itself is the start.
            (LocalTime(year: 2025, month: 4, day: 13, hour: 9), .weekly, LocalTime(year: 2025, month: 4, day: 14)),
            (LocalTime(year: 2025, month: 4, day: 14, hour: 0), .weekly, LocalTime(year: 2025, month: 4, day: 21)),
            (LocalTime(year: 2025, month: 12, day: 29), .weekly, LocalTime(year: 2026, month: 1, day: 5)),
            (LocalTime(year: 2025, month: 1, day: 31), .monthly, LocalTime(year: 2025, month: 2, day: 1)),
            (LocalTime(year: 2025, month: 12, day: 15), .monthly, LocalTime(year: 2026, month: 1, day: 1)),
        ]
        for (time, interval, expected) in cases {
            #expect(RotationSchedule.nextPeriodStart(after: time, interval) == expected, "\(time) \(interval)")
        }
        #expect(RotationSchedule.weekday(year: 2025, month: 4, day: 13) == 0)
        #expect(RotationSchedule.weekday(year: 1970, month: 1, day: 1) == 4)
        #expect(
            RotationSchedule.periodStart(containing: LocalTime(year: 2025, month: 3, day: 2, hour: 7), .weekly)
                == LocalTime(year: 2025, month: 2, day: 24)
        )
        for days in [-1000, -1, 0, 1, 59, 365, 10957, 20000, 100_000] {
            let date = RotationSchedule.civilDate(daysSinceEpoch: days)
            #expect(RotationSchedule.daysSinceEpoch(year: date.year, month: date.month, day: date.day) == days)
        }
    }

    @Test func boundariesInUTC() {
        let now = utc(2025, 2, 28, 13, 45, 10)
        #expect(RotationSchedule.nextBoundary(after: now, .hourly, zone: utcZone) == utc(2025, 2, 28, 14))
        #expect(RotationSchedule.lastBoundary(atOrBefore: now, .hourly, zone: utcZone) == utc(2025, 2, 28, 13))
        #expect(RotationSchedule.nextBoundary(after: now, .daily, zone: utcZone) == utc(2025, 3, 1))
        #expect(RotationSchedule.lastBoundary(atOrBefore: now, .daily, zone: utcZone) == utc(2025, 2, 28))
        #expect(RotationSchedule.nextBoundary(after: now, .weekly, zone: utcZone) == utc(2025, 3, 3))
        #expect(RotationSchedule.lastBoundary(atOrBefore: now, .weekly, zone: utcZone) == utc(2025, 2, 24))
        #expect(RotationSchedule.nextBoundary(after: now, .monthly, zone: utcZone) == utc(2025, 3, 1))
        #expect(RotationSchedule.lastBoundary(atOrBefore: now, .monthly, zone: utcZone) == utc(2025, 2, 1))
        // Exactly on a boundary: it is the last one, the next is a period later.
        #expect(RotationSchedule.lastBoundary(atOrBefore: utc(2025, 3, 1), .daily, zone: utcZone) == utc(2025, 3, 1))
        #expect(RotationSchedule.nextBoundary(after: utc(2025, 3, 1), .daily, zone: utcZone) == utc(2025, 3, 2))
    }

    @Test func daylightSavingInBerlin() {
        // Spring forward, 2025-03-30: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let beforeGap = utc(2025, 3, 30, 0, 30)  // 01:30 CET
        #expect(RotationSchedule.nextBoundary(after: beforeGap, .hourly, zone: berlin2025) == utc(2025, 3, 30, 1))
        #expect(berlin2025.localTime(utc(2025, 3, 30, 1)).hour == 3)
        // The day is 23 hours long: midnight CET to midnight CEST.
        let noon = utc(2025, 3, 30, 10)  // 12:00 CEST
        #expect(RotationSchedule.lastBoundary(atOrBefore: noon, .daily, zone: berlin2025) == utc(2025, 3, 29, 23))
        #expect(RotationSchedule.nextBoundary(after: noon, .daily, zone: berlin2025) == utc(2025, 3, 30, 22))
        // The Saturday before: the next day starts at midnight CET.
        #expect(
            RotationSchedule.nextBoundary(after: utc(2025, 3, 29, 11), .daily, zone: berlin2025) == utc(2025, 3, 29, 23)
        )
        // Fall back, 2025-10-26: 03:00 CEST becomes 02:00 CET (01:00 UTC); the repeated hour rotates twice.
        let firstTwoThirty = utc(2025, 10, 26, 0, 30)  // 02:30 CEST
        #expect(RotationSchedule.nextBoundary(after: firstTwoThirty, .hourly, zone: berlin2025) == utc(2025, 10, 26, 1))
        let secondTwoThirty = utc(2025, 10, 26, 1, 30)  // 02:30 CET
        #expect(
            RotationSchedule.lastBoundary(atOrBefore: secondTwoThirty, .hourly, zone: berlin2025)
                == utc(2025, 10, 26, 1)
        )
        #expect(
            RotationSchedule.nextBoundary(after: secondTwoThirty, .hourly, zone: berlin2025) == utc(2025, 10, 26, 2)
        )
        // That day is 25 hours long; the week containing it starts Monday 2025-10-20 00:00 CEST.
        let afternoon = utc(2025, 10, 26, 14)
        #expect(RotationSchedule.lastBoundary(atOrBefore: afternoon, .daily, zone: berlin2025) == utc(2025, 10, 25, 22))
        #expect(RotationSchedule.nextBoundary(after: afternoon, .daily, zone: berlin2025) == utc(2025, 10, 26, 23))
        #expect(
            RotationSchedule.lastBoundary(atOrBefore: afternoon, .weekly, zone: berlin2025) == utc(2025, 10, 19, 22)
        )
        #expect(RotationSchedule.nextBoundary(after: afternoon, .weekly, zone: berlin2025) == utc(2025, 10, 26, 23))
        // A month across the change: October 1st 00:00 CEST to November 1st 00:00 CET.
        #expect(
            RotationSchedule.lastBoundary(atOrBefore: afternoon, .monthly, zone: berlin2025) == utc(2025, 9, 30, 22)
        )
        #expect(RotationSchedule.nextBoundary(after: afternoon, .monthly, zone: berlin2025) == utc(2025, 10, 31, 23))
    }

    @Test func rotationNamesAreParsedBack() {
        let names = RotationNames(dateFormat: "-%Y%m%d")
        let isLog = { (base: String) in base == "app.log" }
        #expect(
            names.parse("app.log-20250413", isBase: isLog)
                == .init(base: "app.log", stem: "app.log-20250413", counter: 0, compressed: false)
        )
        #expect(
            names.parse("app.log-20250413.2.gz", isBase: isLog)
                == .init(base: "app.log", stem: "app.log-20250413.2", counter: 2, compressed: true)
        )
        #expect(names.parse("app.log", isBase: isLog) == nil)
        #expect(names.parse("app.log.bak", isBase: isLog) == nil)
        #expect(names.parse("app.log-old", isBase: isLog) == nil)
        #expect(names.parse("app.log-2025041", isBase: isLog) == nil)
        // A glob base: the rotation of one unified log is not another log.
        let glob = { (base: String) in fnmatch("unified_*.log", base, 0) == 0 }
        #expect(names.parse("unified_20250413.log-20250414.gz", isBase: glob)?.base == "unified_20250413.log")
        // A format ending in digits after a dot is not mistaken for a counter.
        let dotted = RotationNames(dateFormat: ".%Y.%m.%d")
        #expect(dotted.parse("app.log.2025.04.13", isBase: isLog)?.counter == 0)
        #expect(dotted.parse("app.log.2025.04.13.1", isBase: isLog)?.counter == 1)
        #expect(RotationNames(dateFormat: "-%s").parse("app.log-1744531200.gz", isBase: isLog)?.compressed == true)
    }
}

// MARK: The daemon

/// Rotation by the daemon on real files: size and time triggers, rename/create/compress, retention, the sweep,
/// postrotate, failures, and the attacks a root daemon working in other users' directories must survive.
@Suite(.serialized, .enabled(if: runningAsRoot, "rotation sets owners and mounts tmpfs: needs root"))
struct RotationTests {
    static let archiveAttributes = FileAttributes(mode: 0o750, owner: .id(1234), group: .id(1234))

    @Test func sizeTriggerRenamesCreatesCompressesAndAlerts() throws {
        let rule = rotateRule(
            RotateSubject(
                paths: [pathPattern("/var/log/app.log")],
                maximumBytes: 4096,
                oldDirectory: ArchiveDirectory(path: "/var/log/archive", attributes: Self.archiveAttributes),
                create: FileAttributes(mode: 0o640, owner: .id(1234), group: .id(1235))
            )
        )
        let fixture = try DaemonFixture(rotate: [rule], label: "rotate-size") { tree in
            tree.makeDirectory("var/log")
            tree.write("var/log/app.log", "")
        }
        #expect(fixture.daemon.rotateRuleCount == 1)
        let path = fixture.tree.path("var/log/app.log")
        var written: [UInt8] = []
        for i in 0..<100 {
            written += Array("2025-04-13 07:15:\(i % 60) UPLOAD INFO request \(i) served in 12 ms\n".utf8)
        }
        // One write under the limit: nothing.
        let writer = AppendingWriter(path)
        writer.write(bytes: Array(written[0..<1000]))
        #expect(fixture.sync().isEmpty)
        // Past it: rotated at once.
        writer.write(bytes: Array(written[1000...]))
        let alert = try #require(fixture.alert(kind: "log.rotated"), "log: \(fixture.logs.messages)")
        let suffix = try #require(
            dateSuffixes().first { lstatOf(fixture.tree.path("var/log/archive/app.log\($0).gz")) != nil },
            "no compressed rotation in archive: \(FileTreeListing.list(fixture.tree.path("var/log/archive")))"
        )
        let rotated = "/var/log/archive/app.log\(suffix)"
        #expect(alert.rule == "rotate" && alert.state == "event" && alert.path == "/var/log/app.log")
        #expect(JSONField.label(alert.line, "rotated") == rotated)
        #expect(JSONField.label(alert.line, "reason") == "size")
        #expect(JSONField.label(alert.line, "bytes") == String(written.count))
        #expect(JSONField.label(alert.line, "compressed") == rotated + ".gz")
        #expect(JSONField.label(alert.line, "compressed_bytes") != nil)
        #expect(JSONField.label(alert.line, "milliseconds") != nil)
        #expect(
            alert.message.hasPrefix("/var/log/app.log rotated to \(rotated).gz (size, \(written.count) bytes); "),
            "\(alert.message)"
        )

        // The new log: empty, with create:'s mode and owner.
        let fresh = try #require(lstatOf(path))
        #expect(fresh.st_size == 0 && fresh.st_mode & 0o7777 == 0o640)
        #expect(fresh.st_uid == 1234 && fresh.st_gid == 1235)
        // olddir was created with its mode and owner.
        let archive = try #require(lstatOf(fixture.tree.path("var/log/archive")))
        #expect(archive.st_mode & 0o7777 == 0o750 && archive.st_uid == 1234 && archive.st_gid == 1234)
        // The archive: valid gzip, exactly the bytes written, the create mode, the rotation gone.
        let gz = fixture.tree.path(String(rotated.dropFirst()) + ".gz")
        #expect(try runGzip(["-t", gz], scratch: fixture.tree.root).code == 0)
        #expect(try runGzip(["-dc", gz], scratch: fixture.tree.root).output == written)
        #expect(try #require(lstatOf(gz)).st_mode & 0o7777 == 0o640)
        #expect(lstatOf(fixture.tree.path(String(rotated.dropFirst()))) == nil)
        #expect(fixture.daemon.counters.logRotations.load(ordering: .relaxed) == 1)
        #expect(fixture.daemon.counters.logCompressions.load(ordering: .relaxed) == 1)
        #expect(fixture.sync().isEmpty)
    }

    @Test func sameDayRotationsGetCountersKeepDeletesTheOldestDelaycompressKeepsTheNewest() throws {
        let rule = rotateRule(
            RotateSubject(paths: [pathPattern("/var/log/app.log")], maximumBytes: 100, keep: 2, delayCompress: true)
        )
        let fixture = try DaemonFixture(rotate: [rule], label: "rotate-keep") { tree in
            tree.makeDirectory("var/log")
        }
        let path = fixture.tree.path("var/log/app.log")
        let writer = AppendingWriter(path)
        let line = String(repeating: "x", count: 149) + "\n"
        var rotatedNames: [String] = []
        for round in 0..<3 {
            writer.write(line)
            let alert = try #require(fixture.alert(kind: "log.rotated"), "round \(round): \(fixture.logs.messages)")
            let rotated = try #require(JSONField.label(alert.line, "rotated"))
            rotatedNames.append(String(rotated.split(separator: "/").last!))
            #expect(alert.message.contains("compressed at the next rotation (delaycompress)"), "\(alert.message)")
            // The writer reopens its log (the rotation renamed it away).
            writer.reopen()
            if round > 0 {
                // delaycompress: the previous rotation is compressed now, the newest stays as it is.
                let previous = fixture.tree.path("var/log/\(rotatedNames[round - 1]).gz")
                #expect(waitForFile(previous) != nil, "\(previous) never appeared")
                #expect(lstatOf(fixture.tree.path("var/log/\(rotatedNames[round])")) != nil)
            }
        }
        let base = rotatedNames[0]
        #expect(rotatedNames == [base, base + ".1", base + ".2"])
        // The oldest goes once no compression holds it (at once, or when the one in progress ends).
        #expect(
            waitForAbsence(fixture.tree.path("var/log/\(base).gz")),
            "\(FileTreeListing.list(fixture.tree.path("var/log")))"
        )
        // keep: 2 — the oldest (already compressed) was deleted at the third rotation.
        #expect(lstatOf(fixture.tree.path("var/log/\(base).gz")) == nil)
        #expect(lstatOf(fixture.tree.path("var/log/\(base)")) == nil)
        #expect(lstatOf(fixture.tree.path("var/log/\(base).1.gz")) != nil)
        #expect(lstatOf(fixture.tree.path("var/log/\(base).2")) != nil)
        #expect(contents(of: fixture.tree.path("var/log/\(base).2")) == Array(line.utf8))
        // The file goes before the counter moves (it counts unlinks that succeeded): wait for it, with a deadline.
        let deadline = Clock.monotonicNanoseconds() + 5_000_000_000
        while fixture.daemon.counters.logArchivesDeleted.load(ordering: .relaxed) < 1
            && Clock.monotonicNanoseconds() < deadline
        {
            _ = poll(nil, 0, 1)
        }
        #expect(fixture.daemon.counters.logArchivesDeleted.load(ordering: .relaxed) == 1)
    }

    @Test func aLogRuleOnARotatedFileSeesEveryLineExactlyOnce() throws {
        let rule = rotateRule(
            RotateSubject(
                paths: [pathPattern("/var/log/app.log")],
                maximumBytes: 32 << 10,
                keep: 100,
                create: FileAttributes(mode: 0o644)
            )
        )
        let fixture = try DaemonFixture(rotate: [rule], yaml: LogStateTests.everyLine, label: "rotate-tail") { tree in
            tree.makeDirectory("var/log")
        }
        let path = fixture.tree.path("var/log/app.log")
        let count = 3000
        // A writer as many applications are: it opens the name for each line, so it follows a rotation by
        // itself; it appends in bursts of 150 lines (13 KiB) written back to back, so the 32 KiB limit is
        // crossed, and the file renamed away, while it writes. Between bursts the test waits for the alerts
        // of what was written (a tailer cannot follow a file created and rotated away before it saw it; a
        // real log does not rotate every few milliseconds).
        func append(_ i: Int) {
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            precondition(fd >= 0)
            let text = Array(("line \(i) " + String(repeating: "payload ", count: 10) + "\n").utf8)
            _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        var lines: [String] = []
        var rotations = 0
        for burst in stride(from: 0, to: count, by: 150) {
            for i in burst..<min(burst + 150, count) { append(i) }
            while lines.count < min(burst + 150, count), let alert = fixture.next(timeoutMilliseconds: 10_000) {
                if alert.rule == "every-line" { lines.append(alert.message) }
                if alert.kind == "log.rotated" { rotations += 1 }
            }
        }
        let expected = (0..<count).map { "line \($0) " + String(repeating: "payload ", count: 10) }
        #expect(lines.count == count, "\(lines.count) of \(count) lines alerted; log: \(fixture.logs.messages)")
        #expect(Set(lines).count == lines.count, "\(lines.count - Set(lines).count) duplicates")
        let missing = Set(expected).subtracting(lines)
        #expect(missing.isEmpty, "\(missing.count) lines missing, e.g. \(missing.sorted().prefix(5))")
        // The log grew by about 100 KiB per 1,000 lines: several rotations happened while it was written.
        for alert in fixture.sync() where alert.kind == "log.rotated" { rotations += 1 }
        #expect(rotations >= 5, "\(rotations) rotations")
        #expect(fixture.daemon.counters.logRotationFailures.load(ordering: .relaxed) == 0)
    }

    @Test func postrotateSignalsTheWriterOnce() throws {
        let name = uniqueName("vrw")
        let rule = rotateRule(
            RotateSubject(
                paths: [pathPattern("/var/log/app.log")],
                maximumBytes: 1000,
                compress: false,
                postRotate: ServiceAction(
                    location: testLocation,
                    signal: SIGHUP,
                    target: ProcessSelector(executables: ["/usr/local/bin/\(name)"])
                )
            )
        )
        let fixture = try DaemonFixture(rotate: [rule], label: "rotate-hup") { tree in
            tree.makeDirectory("var/log")
            try? StandIn.install("/bin/sh", at: tree.path("usr/local/bin/\(name)"))
        }
        let reopened = fixture.tree.path("reopened.txt")
        let started = fixture.tree.path("started.txt")
        let writer = try ChildProcess(
            executable: fixture.tree.path("usr/local/bin/\(name)"),
            arguments: [
                "-c", "trap 'echo reopened >> \(reopened)' HUP; echo ready > \(started); while :; do sleep 0.05; done",
            ]
        )
        defer {
            writer.signal(SIGKILL)
            _ = writer.wait(timeoutMilliseconds: 5000)
        }
        #expect(waitForFile(started) { !$0.isEmpty } != nil)
        AppendingWriter(fixture.tree.path("var/log/app.log")).write(String(repeating: "y", count: 1500) + "\n")
        let alert = try #require(fixture.alert(kind: "log.rotated"), "\(fixture.logs.messages)")
        #expect(alert.message.contains("SIGHUP sent to pid \(writer.pid)"), "\(alert.message)")
        let content = waitForFile(reopened) { String(decoding: $0, as: UTF8.self).contains("reopened") }
        #expect(content.map { String(decoding: $0, as: UTF8.self) } == "reopened\n")
    }

    @Test func aFullDiskDuringCompressionLeavesTheRotationIntactAndAlerts() throws {
        // The log and its rotations on a 512 KiB tmpfs: 400 KiB of random bytes rename fine, but their .gz
        // (random data does not compress) does not fit beside them.
        var mounted: String?
        var rootToRemove: String?
        // Also when an expectation throws: a lazy unmount works while the daemon still holds descriptors.
        defer {
            if let mounted { umount2(mounted, Int32(MNT_DETACH)) }
            if let rootToRemove { FileTree.remove(rootToRemove) }
        }
        do {
            let rule = rotateRule(
                RotateSubject(
                    paths: [pathPattern("/var/log/app.log")],
                    maximumBytes: 300 << 10,
                    create: FileAttributes()
                )
            )
            let fixture = try DaemonFixture(rotate: [rule], label: "rotate-enospc") { tree in
                tree.makeDirectory("var/log")
                let target = tree.path("var/log")
                if mount("tmpfs", target, "tmpfs", 0, "size=512k") == 0 { mounted = target }
            }
            rootToRemove = fixture.tree.root
            try #require(mounted != nil, "mount tmpfs failed: errno \(errno)")
            var random = [UInt8](repeating: 0, count: 400 << 10)
            let urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
            _ = random.withUnsafeMutableBytes { read(urandom, $0.baseAddress, $0.count) }
            close(urandom)
            AppendingWriter(fixture.tree.path("var/log/app.log")).write(bytes: random)
            let seen = fixture.alerts(kinds: ["log.rotation_failed", "log.rotated"])
            let failure = try #require(seen["log.rotation_failed"], "\(fixture.logs.messages)")
            #expect(JSONField.label(failure.line, "step") == "compress")
            #expect(JSONField.label(failure.line, "errno") == String(ENOSPC))
            #expect(failure.message.contains("free space"), "\(failure.message)")
            #expect(failure.message.contains("stays uncompressed and intact"), "\(failure.message)")
            let rotated = try #require(seen["log.rotated"])
            #expect(rotated.message.contains("compression failed"), "\(rotated.message)")
            let rotatedPath = try #require(JSONField.label(rotated.line, "rotated"))
            #expect(contents(of: fixture.tree.path(String(rotatedPath.dropFirst()))) == random)
            #expect(lstatOf(fixture.tree.path(String(rotatedPath.dropFirst())) + ".gz") == nil)
            #expect(fixture.daemon.counters.logCompressionFailures.load(ordering: .relaxed) == 1)
        }
    }

    @Test func olddirOnAnotherFilesystemIsAlertedNotCopied() throws {
        var mounted: String?
        var rootToRemove: String?
        // Also when an expectation throws: a lazy unmount works while the daemon still holds descriptors.
        defer {
            if let mounted { umount2(mounted, Int32(MNT_DETACH)) }
            if let rootToRemove { FileTree.remove(rootToRemove) }
        }
        do {
            let rule = rotateRule(
                RotateSubject(
                    paths: [pathPattern("/var/log/app.log")],
                    maximumBytes: 100,
                    oldDirectory: ArchiveDirectory(path: "/mnt/archive")
                )
            )
            let fixture = try DaemonFixture(rotate: [rule], label: "rotate-exdev") { tree in
                tree.makeDirectory("var/log")
                tree.makeDirectory("mnt/archive")
                if mount("tmpfs", tree.path("mnt/archive"), "tmpfs", 0, "size=64k") == 0 {
                    mounted = tree.path("mnt/archive")
                }
            }
            rootToRemove = fixture.tree.root
            try #require(mounted != nil)
            AppendingWriter(fixture.tree.path("var/log/app.log")).write(String(repeating: "z", count: 200) + "\n")
            let failure = try #require(fixture.alert(kind: "log.rotation_failed"))
            #expect(JSONField.label(failure.line, "step") == "rename")
            #expect(JSONField.label(failure.line, "errno") == String(EXDEV))
            #expect(failure.message.contains("another filesystem"), "\(failure.message)")
            #expect(failure.path == "/var/log/app.log")
            #expect(contents(of: fixture.tree.path("var/log/app.log"))?.count == 201)
            // A second write over the limit retries later (backoff) and does not alert the same cause again.
            AppendingWriter(fixture.tree.path("var/log/app.log")).write("more\n")
            #expect(fixture.sync().isEmpty)
        }
    }

    @Test func symlinksPlantedAsOlddirOrAsTheLogAreRefused() throws {
        let decoys = TempTree("rotate-decoy")
        defer { decoys.remove() }
        decoys.makeDirectory("etc")
        decoys.write("etc/shadow", String(repeating: "root:secret\n", count: 500), mode: 0o600)
        let rule = rotateRule(
            RotateSubject(
                paths: [pathPattern("/var/log/app.log"), pathPattern("/var/log/other/app.log")],
                maximumBytes: 1000,
                oldDirectory: ArchiveDirectory(path: "archive"),
                create: FileAttributes(mode: 0o644, owner: .id(1234))
            )
        )
        let fixture = try DaemonFixture(rotate: [rule], label: "rotate-symlink") { tree in
            tree.makeDirectory("var/log/other")
            // olddir (relative: below each log's directory) is a link to a directory outside.
            tree.symlink("var/log/archive", to: decoys.path("etc"))
        }
        // 1. olddir is a symlink: refused, nothing moves, the decoy directory is untouched.
        AppendingWriter(fixture.tree.path("var/log/app.log")).write(String(repeating: "a", count: 2000) + "\n")
        let olddir = try #require(fixture.alert(kind: "log.rotation_failed", path: "/var/log/app.log"))
        #expect(JSONField.label(olddir.line, "step") == "olddir")
        #expect(olddir.message.contains("symbolic link"), "\(olddir.message)")
        #expect(contents(of: fixture.tree.path("var/log/app.log"))?.count == 2001)
        #expect(FileTreeListing.list(decoys.path("etc")) == ["shadow"])

        // 2. The log's name is a symlink to a big file outside: refused, the target untouched.
        let shadow = decoys.path("etc/shadow")
        let before = try #require(lstatOf(shadow))
        fixture.tree.symlink("var/log/other/app.log.tmp", to: shadow)
        #expect(rename(fixture.tree.path("var/log/other/app.log.tmp"), fixture.tree.path("var/log/other/app.log")) == 0)
        let planted = try #require(fixture.alert(kind: "log.rotation_failed", path: "/var/log/other/app.log"))
        #expect(JSONField.label(planted.line, "step") == "open")
        #expect(planted.message.contains("symbolic link"), "\(planted.message)")
        let after = try #require(lstatOf(shadow))
        #expect(after.st_ino == before.st_ino && after.st_size == before.st_size && after.st_uid == before.st_uid)
        #expect(after.st_mode == before.st_mode && after.st_nlink == 1)
        #expect(FileTreeListing.list(decoys.path("etc")) == ["shadow"])
        #expect(lstatOf(fixture.tree.path("var/log/other/archive")) == nil)
        #expect(lstatOf(fixture.tree.path("var/log/other/app.log")).map { $0.st_mode & S_IFMT } == S_IFLNK)

        // 3. A hard link to a file of another owner in the log directory: refused (its content would be archived).
        #expect(unlink(fixture.tree.path("var/log/other/app.log")) == 0)
        fixture.tree.write("secret", String(repeating: "k", count: 3000), mode: 0o600)
        #expect(link(fixture.tree.path("secret"), fixture.tree.path("var/log/other/app.log")) == 0)
        let hard = try #require(fixture.alert(kind: "log.rotation_failed", path: "/var/log/other/app.log"))
        #expect(JSONField.label(hard.line, "step") == "links")
        #expect(hard.message.contains("hard links"), "\(hard.message)")
        #expect(try #require(lstatOf(fixture.tree.path("secret"))).st_nlink == 2)
        #expect(fixture.daemon.counters.logRotations.load(ordering: .relaxed) == 0)
    }

    @Test func sweepNarrowsOldArchivesAndDeletesOlderOnesAtStartUp() throws {
        let decoys = TempTree("rotate-sweep-decoy")
        defer { decoys.remove() }
        decoys.write("keep.gz", "decoy", mode: 0o644)
        let rule = rotateRule(
            RotateSubject(
                paths: [pathPattern("/var/log/analytics/unified.log")],
                maximumBytes: 1 << 20,
                oldDirectory: ArchiveDirectory(path: "/var/log/archive"),
                sweep: ArchiveSweep(
                    mode: 0o600,
                    chmodAfterMilliseconds: 30 * 86_400_000,
                    deleteAfterMilliseconds: 90 * 86_400_000
                )
            )
        )
        let fixture = try DaemonFixture(rotate: [rule], label: "rotate-sweep") { tree in
            tree.makeDirectory("var/log/analytics")
            tree.makeDirectory("var/log/archive")
            for name in ["unified.log-20250101.gz", "unified.log-20241001.gz", "unified.log-20250410.gz", "notes.txt"] {
                tree.write("var/log/archive/\(name)", "x", mode: 0o644)
            }
            age(tree.path("var/log/archive/unified.log-20250101.gz"), seconds: 31 * 86_400)
            age(tree.path("var/log/archive/unified.log-20241001.gz"), seconds: 91 * 86_400)
            age(tree.path("var/log/archive/notes.txt"), seconds: 91 * 86_400)
            // An old-looking link to a file outside: never followed, never changed.
            tree.symlink("var/log/archive/evil.gz", to: decoys.path("keep.gz"))
            age(tree.path("var/log/archive/evil.gz"), seconds: 95 * 86_400)
            age(decoys.path("keep.gz"), seconds: 95 * 86_400)
        }
        let archive = fixture.tree.path("var/log/archive/")
        #expect(try #require(lstatOf(archive + "unified.log-20250101.gz")).st_mode & 0o7777 == 0o600)
        #expect(lstatOf(archive + "unified.log-20241001.gz") == nil)
        #expect(try #require(lstatOf(archive + "unified.log-20250410.gz")).st_mode & 0o7777 == 0o644)
        #expect(lstatOf(archive + "notes.txt") != nil)
        #expect(lstatOf(archive + "evil.gz") != nil)
        #expect(try #require(lstatOf(decoys.path("keep.gz"))).st_mode & 0o7777 == 0o644)
        #expect(fixture.daemon.counters.logArchivesDeleted.load(ordering: .relaxed) == 1)
        #expect(fixture.daemon.counters.logArchivesRestricted.load(ordering: .relaxed) == 1)
        #expect(fixture.sync().isEmpty)
    }

    @Test func everyBoundaryRotatesOnTheTimerAndStartUpCatchesUp() throws {
        let daily = rotateRule(
            RotateSubject(paths: [pathPattern("/var/log/timed/*.log")], interval: .daily, compress: false)
        )
        // Start-up catch-up on the calendar: a log last written two days ago missed yesterday's midnight.
        let fixture = try DaemonFixture(rotate: [daily], label: "rotate-startup") { tree in
            tree.makeDirectory("var/log/timed")
            tree.write("var/log/timed/old.log", "from two days ago\n")
            age(tree.path("var/log/timed/old.log"), seconds: 2 * 86_400)
            tree.write("var/log/timed/empty.log", "")
            age(tree.path("var/log/timed/empty.log"), seconds: 2 * 86_400)
        }
        let startup = try #require(fixture.alert(kind: "log.rotated"), "\(fixture.logs.messages)")
        #expect(startup.path == "/var/log/timed/old.log")
        #expect(JSONField.label(startup.line, "reason") == "startup")
        #expect(
            startup.message.contains("(daily, boundary passed while vigil was stopped, 18 bytes)"),
            "\(startup.message)"
        )
        // The empty one is not rotated (if_empty: false), and a file written just now waits for midnight.
        fixture.tree.write("var/log/timed/new.log", "written now\n")
        #expect(fixture.sync().isEmpty)
        #expect(lstatOf(fixture.tree.path("var/log/timed/empty.log")) != nil)

        // The timer path, with the test-only override: boundaries every 300 ms.
        let timed = try DaemonFixture(rotate: [daily], label: "rotate-timer") { tree in
            tree.makeDirectory("var/log/timed")
            tree.write("var/log/timed/app.log", "one line\n")
            tree.write("var/log/timed/quiet.log", "")
        } configure: { options in
            options.rotationIntervalOverrideMilliseconds = 300
        }
        let started = Clock.monotonicNanoseconds()
        let alert = try #require(timed.alert(kind: "log.rotated"), "\(timed.logs.messages)")
        #expect(Clock.monotonicNanoseconds() - started >= 250_000_000)
        #expect(alert.path == "/var/log/timed/app.log")
        #expect(JSONField.label(alert.line, "reason") == "age")
        #expect(alert.message.contains("(daily, 9 bytes)"), "\(alert.message)")
        // The rotation left no log under the name (no create:), and the empty file stays: nothing more.
        #expect(lstatOf(timed.tree.path("var/log/timed/app.log")) == nil)
        #expect(timed.sync().isEmpty)
    }

    @Test func aDirectoryThatAppearsLaterIsWatched() throws {
        let rule = rotateRule(
            RotateSubject(paths: [pathPattern("/var/log/later/*.log")], maximumBytes: 100, compress: false)
        )
        let fixture = try DaemonFixture(rotate: [rule], label: "rotate-later") { tree in
            tree.makeDirectory("var")
        }
        fixture.tree.makeDirectory("var/log/later")
        fixture.tree.write("var/log/later/app.log", String(repeating: "l", count: 150) + "\n")
        let alert = try #require(fixture.alert(kind: "log.rotated"), "\(fixture.logs.messages)")
        #expect(alert.path == "/var/log/later/app.log")
        #expect(JSONField.label(alert.line, "reason") == "size")
    }

    @Test(.enabled(if: OverflowTests.canLowerQueue, "needs write access to max_queued_events (root)"))
    func anOverflowRechecksEveryRuledFile() throws {
        let rule = rotateRule(
            RotateSubject(paths: [pathPattern("/var/log/burst/*.log")], maximumBytes: 100, compress: false)
        )
        // The rotation watcher's inotify queue holds 16 events: bursts of writes to 64 logs overflow it while
        // it renames, and only the re-check after IN_Q_OVERFLOW finds the logs whose events were dropped.
        let fixture: DaemonFixture = try DaemonFixture.startLock.withLock { _ in
            let original = ProcFile.readText(OverflowTests.limitPath)?.filter { $0.isNumber } ?? "16384"
            try OverflowTests.writeLimit("16")
            defer { try? OverflowTests.writeLimit(original) }
            return try DaemonFixture(rules: "", label: "rotate-overflow", lock: false) { tree in
                tree.makeDirectory("var/log/burst")
            } configure: { options in
                options.ruleSet.rules.append(rule)
            }
        }
        var rotated = Set<String>()
        var written = Set<String>()
        for round in 0..<10 where fixture.daemon.counters.overflows.load(ordering: .relaxed) == 0 {
            let line = String(repeating: "b", count: 150) + "\n"
            for i in 0..<64 {
                let name = "r\(round)-\(i).log"
                written.insert("/var/log/burst/" + name)
                AppendingWriter(fixture.tree.path("var/log/burst/" + name)).write(line)
            }
            while rotated.count < written.count, let alert = fixture.alert(kind: "log.rotated") {
                rotated.insert(alert.path)
            }
        }
        #expect(rotated == written, "\(written.subtracting(rotated).sorted().prefix(5)) not rotated")
        #expect(fixture.daemon.counters.overflows.load(ordering: .relaxed) > 0, "no overflow in 10 bursts")
    }

    @Test func copytruncateCopiesThenTruncatesInPlace() throws {
        let rule = rotateRule(
            RotateSubject(paths: [pathPattern("/var/log/app.log")], maximumBytes: 1000, copyTruncate: true)
        )
        let fixture = try DaemonFixture(rotate: [rule], label: "rotate-copytruncate") { tree in
            tree.makeDirectory("var/log")
            tree.write("var/log/app.log", "", mode: 0o640)
        }
        let path = fixture.tree.path("var/log/app.log")
        let before = try #require(lstatOf(path))
        // A writer that never reopens its log: it keeps its descriptor, and copytruncate is for it.
        let writer = AppendingWriter(path)
        let text = String(repeating: "c", count: 1499) + "\n"
        writer.write(text)
        let alert = try #require(fixture.alert(kind: "log.rotated"), "\(fixture.logs.messages)")
        #expect(alert.message.contains("copied and truncated in place"), "\(alert.message)")
        let compressed = try #require(JSONField.label(alert.line, "compressed"))
        let gz = fixture.tree.path(String(compressed.dropFirst()))
        #expect(try runGzip(["-dc", gz], scratch: fixture.tree.root).output == Array(text.utf8))
        // The same inode, now empty, still written by the same descriptor.
        let after = try #require(lstatOf(path))
        #expect(after.st_ino == before.st_ino && after.st_size == 0)
        #expect(try #require(lstatOf(gz)).st_mode & 0o7777 == 0o640)
        writer.write("after\n")
        #expect(contents(of: path) == Array("after\n".utf8))
    }

    @Test func postrotateCommandRunsBeforeTheCompressionAndItsFailureIsAlerted() throws {
        let rule = rotateRule(
            RotateSubject(
                paths: [pathPattern("/var/log/app.log")],
                maximumBytes: 100,
                postRotate: ServiceAction(location: testLocation, command: ["/usr/local/bin/reopen", "--now"])
            )
        )
        let fixture = try DaemonFixture(rotate: [rule], label: "rotate-command") { tree in
            tree.makeDirectory("var/log")
            tree.makeDirectory("usr/local/bin")
            tree.write(
                "usr/local/bin/reopen",
                "#!/bin/sh\necho \"$1 $VIGIL_RULE $VIGIL_PATHS\" > \(tree.path("reopened"))\nexit 3\n",
                mode: 0o755
            )
        }
        AppendingWriter(fixture.tree.path("var/log/app.log")).write(String(repeating: "p", count: 200) + "\n")
        let seen = fixture.alerts(kinds: ["log.rotated", "log.rotation_failed"])
        let failure = try #require(seen["log.rotation_failed"], "\(fixture.logs.messages)")
        #expect(JSONField.label(failure.line, "step") == "postrotate")
        #expect(failure.message.contains("'/usr/local/bin/reopen --now' exited with code 3"), "\(failure.message)")
        let rotated = try #require(seen["log.rotated"])
        #expect(rotated.message.contains("'/usr/local/bin/reopen --now' run"), "\(rotated.message)")
        #expect(JSONField.label(rotated.line, "compressed_bytes") != nil)
        #expect(contents(of: fixture.tree.path("reopened")) == Array("--now rotate /var/log/app.log\n".utf8))
    }

    @Test func maxAgeDeletesOldRotationsWhateverKeepSays() throws {
        let rule = rotateRule(
            RotateSubject(
                paths: [pathPattern("/var/log/app.log")],
                maximumBytes: 100,
                keep: 14,
                maximumAgeMilliseconds: 5 * 86_400_000,
                compress: false
            )
        )
        let fixture = try DaemonFixture(rotate: [rule], label: "rotate-maxage") { tree in
            tree.makeDirectory("var/log")
            tree.write("var/log/app.log-20250101.gz", "old")
            age(tree.path("var/log/app.log-20250101.gz"), seconds: 10 * 86_400)
            tree.write("var/log/app.log-20250110", "recent")
            age(tree.path("var/log/app.log-20250110"), seconds: 2 * 86_400)
            tree.write("var/log/app.log.bak", "not a rotation")
            age(tree.path("var/log/app.log.bak"), seconds: 30 * 86_400)
        }
        // Retention runs after a rotation.
        AppendingWriter(fixture.tree.path("var/log/app.log")).write(String(repeating: "m", count: 200) + "\n")
        _ = try #require(fixture.alert(kind: "log.rotated"))
        #expect(lstatOf(fixture.tree.path("var/log/app.log-20250101.gz")) == nil)
        #expect(lstatOf(fixture.tree.path("var/log/app.log-20250110")) != nil)
        #expect(lstatOf(fixture.tree.path("var/log/app.log.bak")) != nil)
    }

    @Test func theSeedsPolicyWrittenInYAMLRotatesAndArchives() throws {
        // The shape of rules/cloudcrest.yaml's analytics-log-rotation, names resolved from the root's files.
        let yaml = """
            - rule: analytics-log-rotation
              severity: info
              rotate: /var/log/analytics/*.log
              every: daily
              size: 2k
              keep: 14
              olddir: { path: /var/log/archive, mode: "0750", owner: analytics, group: analytics }
              create: { mode: "0640", owner: analytics, group: log-readers }
              delaycompress: true
              sweep: { chmod: "0600", after: 30d, delete_after: 90d }

            """
        let fixture = try DaemonFixture(rules: yaml, label: "rotate-yaml") { tree in
            tree.makeDirectory("etc")
            tree.write("etc/passwd", "root:x:0:0::/root:/bin/sh\nanalytics:x:1234:1234::/:/bin/false\n")
            tree.write("etc/group", "root:x:0:\nanalytics:x:1234:\nlog-readers:x:1240:\n")
            tree.makeDirectory("var/log/analytics")
        }
        #expect(fixture.daemon.rotateRuleCount == 1)
        let writer = AppendingWriter(fixture.tree.path("var/log/analytics/upload.log"))
        writer.write(String(repeating: "2025-04-13 07:15:22 UPLOAD INFO ok\n", count: 100))
        let alert = try #require(fixture.alert(kind: "log.rotated"), "\(fixture.logs.messages)")
        let rotated = try #require(JSONField.label(alert.line, "rotated"))
        #expect(rotated.hasPrefix("/var/log/archive/upload.log-"))
        #expect(alert.message.hasPrefix("/var/log/analytics/upload.log rotated to \(rotated) (size, 3500 bytes); "))
        #expect(alert.message.contains("created anew with mode 0640 owner analytics:log-readers"), "\(alert.message)")
        let fresh = try #require(lstatOf(fixture.tree.path("var/log/analytics/upload.log")))
        #expect(fresh.st_uid == 1234 && fresh.st_gid == 1240 && fresh.st_mode & 0o7777 == 0o640)
        let archive = try #require(lstatOf(fixture.tree.path("var/log/archive")))
        #expect(archive.st_uid == 1234 && archive.st_gid == 1234 && archive.st_mode & 0o7777 == 0o750)
    }

    @Test func unknownUsersAndGroupsStopTheDaemonWithTheirPositions() throws {
        let tree = TempTree("rotate-users")
        defer { tree.remove() }
        tree.makeDirectory("etc")
        tree.write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nanalytics:x:1234:1234::/:/bin/false\n")
        tree.write("etc/group", "root:x:0:\nanalytics:x:1234:\n")
        let at = SourceLocation(file: "rules/rotate.yaml", line: 7, column: 12)
        let rule = rotateRule(
            RotateSubject(
                paths: [pathPattern("/var/log/app.log")],
                maximumBytes: 100,
                oldDirectory: ArchiveDirectory(
                    path: "/var/log/archive",
                    attributes: FileAttributes(owner: .name("analytics", at), group: .name("log-readers", at))
                ),
                create: FileAttributes(mode: 0o640, owner: .name("nobody-here", at), group: .name("analytics", at))
            )
        )
        let options = Daemon.Options(
            ruleSet: RuleSet(rules: [rule]),
            root: tree.root,
            extraAlertFiles: [tree.path("alerts.jsonl")]
        )
        let (logger, _) = InMemoryLogHandler.logger()
        do {
            _ = try Daemon(options: options, logger: logger)
            Issue.record("the daemon started with unknown users")
        } catch {
            let lines = error.message.split(separator: "\n").map(String.init)
            #expect(
                lines.contains(
                    "rules/rotate.yaml:7:12: error: group 'log-readers' is not in \(tree.root)/etc/group; use a group name from that file or a gid"
                ),
                "\(lines)"
            )
            #expect(
                lines.contains(
                    "rules/rotate.yaml:7:12: error: user 'nobody-here' is not in \(tree.root)/etc/passwd; use a user name from that file or a uid"
                ),
                "\(lines)"
            )
            #expect(lines.last == "vigil: rotate rules were not loaded")
        }
    }
}

/// Sorted names in a directory (for messages and checks).
enum FileTreeListing {
    static func list(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

/// Rotating and compressing a 1 GB log through the daemon's path (start-up → compressed file), run by hand:
/// `VIGIL_ROTATION_1G=1 swift test --filter RotationTimingTests`. Not part of the normal suites (it writes
/// 1 GiB and takes tens of seconds).
@Suite(.serialized, .enabled(if: getenv("VIGIL_ROTATION_1G") != nil && runningAsRoot))
struct RotationTimingTests {
    @Test func oneGigabyteLog() throws {
        let tree = TempTree("rotate-1g")
        defer { tree.remove() }
        tree.makeDirectory("var/log")
        let line =
            "2025-04-13 07:15:22 UPLOAD INFO [HTTPClient] Connected to external API https://api.analytics-partner.com in 12 ms status=200 bytes=5123"
        let make = try ChildProcess(
            executable: "/bin/sh",
            arguments: ["-c", "yes '\(line)' | head -c 1G > \(tree.path("var/log/big.log"))"]
        )
        #expect(make.wait(timeoutMilliseconds: 120_000) == 0)
        let rule = rotateRule(RotateSubject(paths: [pathPattern("/var/log/big.log")], maximumBytes: 1 << 30))
        let alerts = tree.path("alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        let (logger, _) = InMemoryLogHandler.logger()
        let started = Clock.monotonicNanoseconds()
        let daemon = try Daemon(
            options: Daemon.Options(ruleSet: RuleSet(rules: [rule]), root: tree.root, extraAlertFiles: [alerts]),
            logger: logger
        )
        try daemon.start()
        let ready = Clock.monotonicNanoseconds()
        defer { daemon.stop() }
        var alert: String?
        while alert == nil, let next = follower.next(timeoutMilliseconds: 300_000) {
            if JSONField.string(next.line, "kind") == "log.rotated" { alert = next.line }
        }
        let done = Clock.monotonicNanoseconds()
        let line1 = try #require(alert)
        let compressed = try #require(JSONField.label(line1, "compressed"))
        let gz = tree.path(String(compressed.dropFirst()))
        print(
            "1 GiB rotation: start-up → ready \(Double(ready - started) / 1e6) ms (the rotation itself runs before ready), start-up → log.rotated with the compressed file \(Double(done - started) / 1e9) s; rename \(JSONField.label(line1, "milliseconds") ?? "?") ms, compression \(JSONField.label(line1, "compress_milliseconds") ?? "?") ms, \(JSONField.label(line1, "compressed_bytes") ?? "?") bytes; gzip file \(lstatOf(gz)?.st_size ?? -1) bytes"
        )
        #expect(try runGzip(["-t", gz], scratch: tree.root).code == 0)
    }
}
