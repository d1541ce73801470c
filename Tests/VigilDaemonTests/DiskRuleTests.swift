import Logging
import Testing
import VigilDaemon
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `disk:` rules on a real 8 MiB tmpfs mounted inside the test's `--root`: a write that crosses 85 % fires
/// the rule (through the inotify watch, not the slow recheck, which is left at its default of 60 s), and a
/// deletion resolves it. The latency from the write to the alert is printed, not asserted (the benchmark
/// measures it).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct DiskRuleTests {
    /// A tmpfs of `size` mounted on `relative` of the fixture's tree, unmounted (lazily) by `unmount()`.
    final class SmallMount {
        let point: String
        private(set) var mounted = false
        private(set) var failure: String?

        init(_ tree: TempTree, _ relative: String, size: String) {
            tree.makeDirectory(relative)
            point = tree.path(relative)
            if mount("tmpfs", point, "tmpfs", 0, "size=\(size)") == 0 {
                mounted = true
            } else {
                failure = String(cString: strerror(errno))
            }
        }

        func unmount() {
            if mounted { umount2(point, Int32(MNT_DETACH)) }
            mounted = false
        }
    }

    /// Starts a daemon on `rules` with an 8 MiB tmpfs at `/mnt/small`; cancels the test when mounting is
    /// not allowed here.
    static func start(_ rules: String, prepare: (TempTree) -> Void = { _ in }) throws -> (DaemonFixture, SmallMount) {
        var small: SmallMount?
        let fixture = try DaemonFixture(rules: rules, label: "disk") { tree in
            small = SmallMount(tree, "mnt/small", size: "8m")
            if small?.mounted == true { prepare(tree) }
        }
        guard let small, small.mounted else {
            try Test.cancel(
                "mounting an 8 MiB tmpfs failed (\(small?.failure ?? "?")): this test needs CAP_SYS_ADMIN"
            )
        }
        return (fixture, small)
    }

    /// Writes `bytes` bytes to `path` and returns the monotonic time the write completed.
    static func fill(_ path: String, bytes: Int) -> UInt64 {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "open \(path): \(String(cString: strerror(errno)))")
        let chunk = [UInt8](repeating: 0x78, count: 64 * 1024)
        var left = bytes
        while left > 0 {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, min(left, $0.count)) }
            precondition(n > 0, "write \(path): \(String(cString: strerror(errno)))")
            left -= n
        }
        let done = Clock.monotonicNanoseconds()
        close(fd)
        return done
    }

    /// Waits (up to `seconds`) for an alert of `rule` in `state`, skipping cookies and others.
    static func await(
        _ fixture: DaemonFixture,
        rule: String,
        state: String,
        seconds: Int = 10,
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) -> SeenAlert? {
        let deadline = Clock.monotonicNanoseconds() + UInt64(seconds) * 1_000_000_000
        while Clock.monotonicNanoseconds() < deadline {
            guard let alert = fixture.next(timeoutMilliseconds: 500) else { continue }
            if alert.rule == rule && alert.state == state { return alert }
        }
        Issue.record(
            "no \(rule)/\(state) alert within \(seconds) s; log: \(fixture.logs.messages)",
            sourceLocation: sourceLocation
        )
        return nil
    }

    @Test func aWriteCrossingTheThresholdInTheMountFiresAndTheDeletionResolves() throws {
        let (fixture, small) = try Self.start(
            """
            - rule: small-disk
              severity: warning
              disk: /mnt/small
              above: 85%
            - rule: not-yet-there
              severity: info
              disk: /mnt/small/not-yet
              above: 85%
            """
        )
        defer { small.unmount() }
        #expect(fixture.daemon.systemRuleCount == 2)
        let warnings = fixture.logs.messages(atLeast: .warning)
        #expect(
            warnings.contains {
                $0.hasPrefix("test.yaml:")
                    && $0.contains("rule 'not-yet-there': disk: path '/mnt/small/not-yet' does not exist")
            },
            "\(warnings)"
        )
        #expect(fixture.sync().isEmpty, "nothing fires below the threshold")

        // 7 MiB of 8: 87.5 %.
        let written = Self.fill(small.point + "/fill", bytes: 7 * 1024 * 1024)
        let alert = try #require(Self.await(fixture, rule: "small-disk", state: "firing"))
        let latency = Double(Clock.monotonicNanoseconds() - written) / 1e6
        print("disk: write → alert seen by the test: \(latency) ms (includes the follower's wake-up)")
        #expect(alert.message.hasPrefix("/mnt/small (tmpfs) is 8"), "\(alert.message)")
        #expect(alert.message.contains("above: 85%") && alert.message.contains("of 8.0M"), "\(alert.message)")
        #expect(alert.path == "/mnt/small")
        // The missing path's rule checks the filesystem of its nearest existing ancestor: the same tmpfs.
        #expect(Self.await(fixture, rule: "not-yet-there", state: "firing") != nil)

        unlink(small.point + "/fill")
        let resolved = try #require(Self.await(fixture, rule: "small-disk", state: "resolved"))
        #expect(resolved.message.hasPrefix("/mnt/small (tmpfs) is 0"), "\(resolved.message)")
        #expect(resolved.fingerprint == alert.fingerprint)
    }

    @Test func aFilesystemMountedOnTheRulePathAfterStartUpIsTheOneChecked() throws {
        // The rule's directory is on the tree's own filesystem at start-up; a small tmpfs is mounted on it
        // later (a volume attached to a running host): the mount table's change moves the rule onto it.
        let fixture = try DaemonFixture(
            rules: """
                - rule: volume
                  severity: warning
                  disk: /srv/volume
                  above: 85%
                """,
            label: "disk-remount"
        ) { tree in tree.makeDirectory("srv/volume") }
        let small = SmallMount(fixture.tree, "srv/volume", size: "4m")
        defer { small.unmount() }
        guard small.mounted else {
            try Test.cancel("mounting a 4 MiB tmpfs failed (\(small.failure ?? "?")): this test needs CAP_SYS_ADMIN")
        }
        // The watcher moves the rule when the kernel flags the mount table; until then a write lands where
        // its old watch cannot see it. Write again (a different size each time) until the alert comes.
        let deadline = Clock.monotonicNanoseconds() + 10_000_000_000
        var alert: SeenAlert?
        var attempt = 0
        while alert == nil && Clock.monotonicNanoseconds() < deadline {
            attempt += 1
            _ = Self.fill(small.point + "/fill", bytes: 3_700_000 + attempt)
            if let next = fixture.next(timeoutMilliseconds: 500), next.rule == "volume" { alert = next }
        }
        let firing = try #require(alert, "no alert after the tmpfs was mounted and filled")
        #expect(firing.state == "firing")
        #expect(firing.message.contains("(tmpfs)"), "\(firing.message)")
        unlink(small.point + "/fill")
        #expect(Self.await(fixture, rule: "volume", state: "resolved") != nil)
    }

    @Test func aWriteInASubdirectoryTheRuleNamesFiresToo() throws {
        let (fixture, small) = try Self.start(
            """
            - rule: small-subdir
              severity: warning
              disk: [/mnt/small/sub/deeper, /mnt/small]
              above: 85%
              message: "{mount} at {usage} ({threshold}) {path}: {used} of {size}, {available} left, {fstype}"
            """
        ) { tree in tree.makeDirectory("mnt/small/sub/deeper") }
        defer { small.unmount() }
        #expect(fixture.sync().isEmpty)

        let written = Self.fill(small.point + "/sub/deeper/fill", bytes: 7 * 1024 * 1024)
        let alert = try #require(Self.await(fixture, rule: "small-subdir", state: "firing"))
        let latency = Double(Clock.monotonicNanoseconds() - written) / 1e6
        print("disk (subdirectory): write → alert seen by the test: \(latency) ms")
        // One instance per filesystem: both paths are on the tmpfs, the first one listed names it.
        #expect(alert.message.hasPrefix("/mnt/small at 8"), "\(alert.message)")
        #expect(alert.message.contains("(85%) /mnt/small/sub/deeper:"), "\(alert.message)")
        // What is left depends on the blocks the tmpfs holds for its directories at that moment (1.0M or
        // 1.1M as df rounds up): the size and the type are exact.
        #expect(alert.message.contains("of 8.0M, 1.") && alert.message.hasSuffix("M left, tmpfs"), "\(alert.message)")

        // Growing further does not fire again; shrinking below resolves once.
        _ = Self.fill(small.point + "/sub/deeper/more", bytes: 256 * 1024)
        unlink(small.point + "/sub/deeper/more")
        unlink(small.point + "/sub/deeper/fill")
        #expect(Self.await(fixture, rule: "small-subdir", state: "resolved") != nil)
        let rest = fixture.sync()
        #expect(rest.allSatisfy { $0.rule != "small-subdir" }, "\(rest)")
    }
}
