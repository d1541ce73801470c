import Logging
import Synchronization
import Testing
import VigilDaemon
import VigilHarness
import VigilRules
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Mode and owner rules on real trees with a real daemon: drift put right as the kernel reports it, trees
/// created later, overlapping rules, audit, and the attacks a root daemon changing modes must survive.
@Suite(.timeLimit(.minutes(2)))
struct PermissionTests {
    /// The permission watcher's cookie: a file created 0644 in `/perm-cookies/` is put right to 0600 and
    /// alerted; since the watcher handles events in order, every change before it has been judged.
    static let cookieRule = """
        - rule: perm-cookie
          file: /perm-cookies/*
          mode: "0600"
          then: [alert, chmod]

        """

    /// `etc/passwd` and `etc/group` of the test root: the names rules use resolve from them.
    static func accounts(_ tree: TempTree) {
        tree.makeDirectory("perm-cookies")
        tree.makeDirectory("etc")
        tree.write(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nanalytics:x:1234:1234::/var/lib/analytics:/usr/sbin/nologin\n"
        )
        tree.write("etc/group", "root:x:0:\nanalytics:x:1234:\nlog-readers:x:1235:fatima,jin\n")
    }

    static func stat(_ path: String) -> (mode: UInt32, uid: UInt32, gid: UInt32)? {
        var info = Glibc.stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (UInt32(info.st_mode) & 0o7777, UInt32(info.st_uid), UInt32(info.st_gid))
    }

    /// The seed's log tree: analytics:log-readers, directories 0750, files 0640, `alerts/` 0700 and 0600.
    static let seedRules = """
        - rule: analytics-log-tree
          file: /var/log/analytics
          recursive: true
          owner: analytics
          group: log-readers
          dir_mode: "0750"
          file_mode: "0640"
          then: [alert, chmod, chown]
        - rule: analytics-alerts-private
          file: /var/log/analytics/alerts
          recursive: true
          owner: analytics
          group: log-readers
          dir_mode: "0700"
          file_mode: "0600"
          then: [alert, chmod, chown]

        """

    static func seedTree(_ tree: TempTree) {
        accounts(tree)
        tree.makeDirectory("perm-cookies")
        tree.makeDirectory("var/log/analytics/unified", mode: 0o750)
        tree.makeDirectory("var/log/analytics/alerts", mode: 0o700)
        for dir in ["var/log/analytics", "var/log/analytics/unified", "var/log/analytics/alerts"] {
            chown(tree.path(dir), 1234, 1235)
        }
        chmod(tree.path("var/log/analytics"), 0o750)
        tree.write("var/log/analytics/unified/unified_20261127.log", "line\n", mode: 0o640)
        chown(tree.path("var/log/analytics/unified/unified_20261127.log"), 1234, 1235)
        tree.write("var/log/analytics/alerts/a.json", "{}\n", mode: 0o600)
        chown(tree.path("var/log/analytics/alerts/a.json"), 1234, 1235)
    }

    @Test func chmod777IsRestoredAtOnceWithOneAlertAndNoLoop() throws {
        let f = try DaemonFixture(rules: Self.cookieRule + Self.seedRules, label: "perm-777", prepare: Self.seedTree)
        #expect(f.permissionSync().isEmpty, "a correct tree raises nothing at start-up")
        let log = f.tree.path("var/log/analytics/unified/unified_20261127.log")
        chmod(log, 0o777)
        let alert = try #require(f.expect(rule: "analytics-log-tree", state: "event"))
        #expect(alert.kind == "file.permissions_restored")
        #expect(alert.path == "/var/log/analytics/unified/unified_20261127.log")
        #expect(alert.message.contains("mode 0777") && alert.message.contains("mode 0640"), "\(alert.message)")
        #expect(Self.stat(log)?.mode == 0o640)
        // Vigil's own chmod comes back as IN_ATTRIB: it finds the file right and says nothing (the only
        // restore in between is the cookie's).
        let restored = f.daemon.counters.permissionsRestored.load(ordering: .relaxed)
        #expect(f.permissionSync().isEmpty)
        #expect(f.daemon.counters.permissionsRestored.load(ordering: .relaxed) == restored + 1)
    }

    @Test func driftFoundAtStartUpIsPutRight() throws {
        let f = try DaemonFixture(rules: Self.cookieRule + Self.seedRules, label: "perm-start") { tree in
            Self.seedTree(tree)
            chmod(tree.path("var/log/analytics/unified/unified_20261127.log"), 0o666)
            chown(tree.path("var/log/analytics/alerts/a.json"), 0, 0)
            chmod(tree.path("var/log/analytics/alerts"), 0o755)
        }
        let alerts = f.permissionSync()
        #expect(alerts.count == 3, "\(alerts)")
        #expect(Self.stat(f.tree.path("var/log/analytics/unified/unified_20261127.log"))?.mode == 0o640)
        let json = Self.stat(f.tree.path("var/log/analytics/alerts/a.json"))
        #expect(json?.uid == 1234 && json?.gid == 1235 && json?.mode == 0o600)
        #expect(Self.stat(f.tree.path("var/log/analytics/alerts"))?.mode == 0o700, "the deeper rule wins")
        let owner = alerts.first { $0.path.hasSuffix("a.json") }
        #expect(owner?.message.contains("owner root, group root") == true, "\(owner?.message ?? "")")
        #expect(owner?.rule == "analytics-alerts-private")
    }

    @Test func directoriesCreatedLaterAreWatchedAndWhatIsInsideIsPutRight() throws {
        let f = try DaemonFixture(rules: Self.cookieRule + Self.seedRules, label: "perm-new", prepare: Self.seedTree)
        _ = f.permissionSync()
        // mkdir -p with files at once: the files may be created before Vigil's watch on the new directory.
        f.tree.makeDirectory("var/log/analytics/reports/2026/11", mode: 0o777)
        f.tree.write("var/log/analytics/reports/2026/11/daily.csv", "a,b\n", mode: 0o666)
        var restored: Set<String> = []
        let deadline = Clock.monotonicNanoseconds() + 5_000_000_000
        while restored.count < 4 && Clock.monotonicNanoseconds() < deadline, let alert = f.next() {
            if alert.kind == "file.permissions_restored" { restored.insert(alert.path) }
        }
        for dir in ["reports", "reports/2026", "reports/2026/11"] {
            let found = Self.stat(f.tree.path("var/log/analytics/" + dir))
            #expect(
                found?.mode == 0o750 && found?.uid == 1234 && found?.gid == 1235,
                "\(dir): \(String(describing: found))"
            )
        }
        let csv = Self.stat(f.tree.path("var/log/analytics/reports/2026/11/daily.csv"))
        #expect(csv?.mode == 0o640 && csv?.uid == 1234)
        // And later changes deep in the new tree are seen as they happen.
        _ = f.permissionSync()
        chmod(f.tree.path("var/log/analytics/reports/2026/11/daily.csv"), 0o604)
        let alert = f.expect(rule: "analytics-log-tree", state: "event")
        #expect(alert?.path == "/var/log/analytics/reports/2026/11/daily.csv")
    }

    @Test func treesMovedInAndRenamedInsideAreFollowed() throws {
        let f = try DaemonFixture(rules: Self.cookieRule + Self.seedRules, label: "perm-move") { tree in
            Self.seedTree(tree)
            tree.makeDirectory("outside/incoming/sub", mode: 0o777)
            tree.write("outside/incoming/sub/batch.log", "x", mode: 0o666)
        }
        _ = f.permissionSync()
        // A tree moved in from outside (IN_MOVED_TO of a directory): watched, walked, put right.
        #expect(rename(f.tree.path("outside/incoming"), f.tree.path("var/log/analytics/incoming")) == 0)
        _ = f.permissionSync()
        #expect(Self.stat(f.tree.path("var/log/analytics/incoming/sub"))?.mode == 0o750)
        #expect(Self.stat(f.tree.path("var/log/analytics/incoming/sub/batch.log"))?.mode == 0o640)
        // Renamed inside the tree: changes deep inside are reported under the new name.
        #expect(rename(f.tree.path("var/log/analytics/incoming"), f.tree.path("var/log/analytics/renamed")) == 0)
        _ = f.permissionSync()
        chmod(f.tree.path("var/log/analytics/renamed/sub/batch.log"), 0o606)
        let alert = f.expect(rule: "analytics-log-tree", state: "event")
        #expect(alert?.path == "/var/log/analytics/renamed/sub/batch.log")
        // Moved out of the tree: no longer Vigil's business.
        #expect(rename(f.tree.path("var/log/analytics/renamed"), f.tree.path("outside/gone")) == 0)
        _ = f.permissionSync()
        chmod(f.tree.path("outside/gone/sub/batch.log"), 0o666)
        #expect(f.permissionSync().isEmpty)
        #expect(Self.stat(f.tree.path("outside/gone/sub/batch.log"))?.mode == 0o666)
    }

    /// A rule may name a path through a symlink the administrator made (`/var/run` → `/run`): it is resolved
    /// once at start-up; below it nothing is followed.
    @Test func aRulePathThroughAnAdministratorsSymlinkIsResolvedOnce() throws {
        let rules = """
            - rule: spool-tree
              file: /var/spool/reports
              recursive: true
              file_mode: "0600"
              then: [alert, chmod]

            """
        let f = try DaemonFixture(rules: Self.cookieRule + rules, label: "perm-admin-link") { tree in
            Self.accounts(tree)
            tree.makeDirectory("data/reports")
            tree.write("data/reports/r.csv", "x", mode: 0o600)
            tree.makeDirectory("var/spool")
            tree.symlink("var/spool/reports", to: "../../data/reports")
        }
        _ = f.permissionSync()
        chmod(f.tree.path("data/reports/r.csv"), 0o644)
        let alert = f.expect(rule: "spool-tree", state: "event")
        #expect(alert?.path == "/data/reports/r.csv")
        #expect(Self.stat(f.tree.path("data/reports/r.csv"))?.mode == 0o600)
    }

    @Test func aClaimedDirectoryThatAppearsLaterIsWatched() throws {
        let rules = """
            - rule: later-tree
              file: /srv/later/data
              recursive: true
              file_mode: "0600"
              then: [alert, chmod]

            """
        let f = try DaemonFixture(rules: Self.cookieRule + rules, label: "perm-later") { Self.accounts($0) }
        _ = f.permissionSync()
        // mkdir -p and a file at once: every level appears while Vigil moves its watch down the path.
        f.tree.makeDirectory("srv/later/data/deep")
        f.tree.write("srv/later/data/deep/x.csv", "x", mode: 0o644)
        let alert = f.expect(rule: "later-tree", state: "event")
        #expect(alert?.path == "/srv/later/data/deep/x.csv")
        #expect(Self.stat(f.tree.path("srv/later/data/deep/x.csv"))?.mode == 0o600)
    }

    /// The tree's owner replaced `alerts/` with a link to a decoy `/etc` while Vigil was down: at start-up the
    /// rule path is resolved, but only through links root made, so the decoy is never walked or changed.
    @Test func aSymlinkPlantedWhileVigilWasDownIsNotFollowed() throws {
        let f = try DaemonFixture(rules: Self.cookieRule + Self.seedRules, label: "perm-planted") { tree in
            Self.seedTree(tree)
            tree.makeDirectory("etc-decoy")
            tree.write("etc-decoy/shadow", "x", mode: 0o644)
            FileTree.remove(tree.path("var/log/analytics/alerts"))
            tree.symlink("var/log/analytics/alerts", to: tree.path("etc-decoy"))
            lchown(tree.path("var/log/analytics/alerts"), 1234, 1235)
        }
        _ = f.permissionSync()
        #expect(Self.stat(f.tree.path("etc-decoy/shadow"))?.mode == 0o644)
        #expect(Self.stat(f.tree.path("etc-decoy"))?.mode == 0o755)
        #expect(Self.stat(f.tree.path("etc-decoy"))?.uid == 0)
    }

    @Test func aDirectorySwappedForASymlinkIsNeverFollowed() throws {
        let f = try DaemonFixture(rules: Self.cookieRule + Self.seedRules, label: "perm-swap") { tree in
            Self.seedTree(tree)
            tree.makeDirectory("etc-decoy")
            tree.write("etc-decoy/shadow", "x", mode: 0o644)
        }
        _ = f.permissionSync()
        // The app user renames its log directory away and plants a symlink to /etc in its place.
        #expect(rename(f.tree.path("var/log/analytics/unified"), f.tree.path("var/log/analytics/old")) == 0)
        f.tree.symlink("var/log/analytics/unified", to: f.tree.path("etc-decoy"))
        chmod(f.tree.path("etc-decoy/shadow"), 0o666)
        f.tree.write("etc-decoy/new", "x")
        chmod(f.tree.path("etc-decoy/new"), 0o666)
        _ = f.permissionSync()
        #expect(Self.stat(f.tree.path("etc-decoy/shadow"))?.mode == 0o666, "the target of the symlink is untouched")
        #expect(Self.stat(f.tree.path("etc-decoy/new"))?.mode == 0o666)
        #expect(Self.stat(f.tree.path("etc-decoy"))?.mode == 0o755)
    }

    @Test func symlinksAndHardlinksPlantedInTheTreeLeaveTheDecoyUntouched() throws {
        let f = try DaemonFixture(rules: Self.cookieRule + Self.seedRules, label: "perm-attack") { tree in
            Self.seedTree(tree)
            tree.makeDirectory("etc-decoy")
            tree.write("etc-decoy/shadow", "root:*:19000:0:99999:7:::\n", mode: 0o640)
        }
        _ = f.permissionSync()
        let decoy = f.tree.path("etc-decoy/shadow")
        let before = try #require(Self.stat(decoy))
        // A symlink to the decoy, a symlinked directory, and a hard link to the decoy, all inside the tree.
        f.tree.symlink("var/log/analytics/unified/shadow-link.log", to: decoy)
        f.tree.symlink("var/log/analytics/linked-dir", to: f.tree.path("etc-decoy"))
        #expect(link(decoy, f.tree.path("var/log/analytics/unified/hard.log")) == 0)
        chmod(f.tree.path("var/log/analytics/unified/hard.log"), 0o666)  // the decoy's mode, through the link
        let refused = f.expect(rule: "analytics-log-tree", state: "firing")
        #expect(refused?.message.contains("hard link") == true, "\(refused?.message ?? "")")
        _ = f.permissionSync()
        let after = try #require(Self.stat(decoy))
        #expect(after.mode == 0o666, "the hard-linked decoy keeps the attacker's mode; Vigil refused to touch it")
        #expect(after.uid == before.uid && after.gid == before.gid, "the decoy's owner is untouched")
        #expect(Self.stat(f.tree.path("etc-decoy"))?.mode == 0o755, "the symlinked directory's target is untouched")
        // A rescan (what an overflow triggers) leaves them untouched too.
        chmod(decoy, 0o640)
        _ = f.permissionSync()
        #expect(Self.stat(decoy)?.mode == 0o640 && Self.stat(decoy)?.uid == before.uid)
    }

    @Test func auditReportsAndResolvesWithoutChangingAnything() throws {
        let rules = """
            - rule: archive-audit
              file: /var/log/archive/*.gz
              mode: "0600"
              owner: analytics

            """
        let f = try DaemonFixture(rules: Self.cookieRule + rules, label: "perm-audit") { tree in
            Self.accounts(tree)
            tree.makeDirectory("var/log/archive")
            tree.write("var/log/archive/a.log-20261101.gz", "x", mode: 0o600)
            chown(tree.path("var/log/archive/a.log-20261101.gz"), 1234, 1234)
        }
        _ = f.permissionSync()
        let path = f.tree.path("var/log/archive/a.log-20261101.gz")
        chmod(path, 0o644)
        let firing = f.expect(rule: "archive-audit", state: "firing")
        #expect(firing?.message.contains("mode 0644") == true)
        #expect(Self.stat(path)?.mode == 0o644, "audit changes nothing")
        // Wrong in another way: the firing alert is updated (same fingerprint); the same drift again is not
        // reported twice.
        chmod(path, 0o640)
        let updated = f.expect(rule: "archive-audit", state: "firing")
        #expect(updated?.message.contains("mode 0640") == true && updated?.fingerprint == firing?.fingerprint)
        chmod(path, 0o640)
        #expect(f.permissionSync().isEmpty)
        chmod(path, 0o600)
        f.expect(rule: "archive-audit", state: "resolved")
        // A file not matching the glob is not judged.
        f.tree.write("var/log/archive/notes.txt", "x", mode: 0o666)
        #expect(f.permissionSync().isEmpty)
    }

    @Test func unknownUsersAndGroupsStopTheStartWithTheirPosition() throws {
        let rules = """
            - rule: bad-owner
              file: /srv/data
              owner: analytx
              group: log-readerz
              then: [chown]

            """
        #expect {
            _ = try DaemonFixture(rules: Self.cookieRule + rules, label: "perm-unknown") { Self.accounts($0) }
        } throws: { error in
            let text = "\(error)"
            return text.contains("test.yaml:") && text.contains("user 'analytx' is not in")
                && text.contains("group 'log-readerz' is not in") && text.contains("/etc/group")
        }
    }

    @Test func directoriesBeyondTheWatchLimitArePutRightAndReported() throws {
        let f = try DaemonFixture(
            rules: Self.cookieRule + Self.seedRules,
            label: "perm-limit",
            prepare: { tree in
                Self.seedTree(tree)
                for i in 0..<6 { tree.makeDirectory("var/log/analytics/reports/r\(i)", mode: 0o777) }
            },
            configure: { $0.permissionWatchBudget = 4 }
        )
        var sawLimit = false
        for alert in f.permissionSync() where alert.kind == "vigil.watch_limit" {
            sawLimit = true
            #expect(
                alert.message.contains("--max-watches") && alert.message.contains("not watched"),
                "\(alert.message)"
            )
        }
        #expect(sawLimit)
        for i in 0..<6 { #expect(Self.stat(f.tree.path("var/log/analytics/reports/r\(i)"))?.mode == 0o750) }
    }

    /// A burst of mode changes far beyond the kernel's queue (lowered to 64 for this daemon): the overflow
    /// is alerted and the rescan leaves every file right. `benchmarks/` runs the same with 50,000 changes.
    @Test(
        .enabled(if: OverflowTests.canLowerQueue, "needs write access to /proc/sys/fs/inotify/max_queued_events (root)")
    )
    func aBurstThatOverflowsTheQueueEndsWithEveryFileRight() throws {
        let f: DaemonFixture = try DaemonFixture.startLock.withLock { _ in
            let original = ProcFile.readText(OverflowTests.limitPath)?.filter { $0.isNumber } ?? "16384"
            try OverflowTests.writeLimit("64")
            defer { try? OverflowTests.writeLimit(original) }
            return try DaemonFixture(rules: Self.cookieRule + Self.seedRules, label: "perm-burst", lock: false) {
                tree in
                Self.seedTree(tree)
                for d in 0..<20 {
                    tree.makeDirectory("var/log/analytics/unified/d\(d)", mode: 0o750)
                    chown(tree.path("var/log/analytics/unified/d\(d)"), 1234, 1235)
                    for i in 0..<100 {
                        let file = "var/log/analytics/unified/d\(d)/f\(i).log"
                        tree.write(file, "x", mode: 0o640)
                        chown(tree.path(file), 1234, 1235)
                    }
                }
            }
        }
        _ = f.permissionSync()
        for d in 0..<20 {
            for i in 0..<100 { chmod(f.tree.path("var/log/analytics/unified/d\(d)/f\(i).log"), 0o666) }
        }
        var sawLoss = false
        let deadline = Clock.monotonicNanoseconds() + 20_000_000_000
        while !sawLoss && Clock.monotonicNanoseconds() < deadline, let alert = f.next() {
            if alert.kind == "vigil.events_lost" { sawLoss = true }
        }
        #expect(sawLoss, "the overflow must be alerted")
        // Each overflow's rescan walks the trees in order (the cookie's directory first), so a cookie is no
        // barrier here: wait, with a deadline, for the last rescan to have put everything right.
        var wrong: [String] = []
        repeat {
            _ = f.permissionSync()
            wrong = []
            for d in 0..<20 {
                for i in 0..<100 {
                    let file = "var/log/analytics/unified/d\(d)/f\(i).log"
                    if Self.stat(f.tree.path(file))?.mode != 0o640 { wrong.append(file) }
                }
            }
        } while !wrong.isEmpty && Clock.monotonicNanoseconds() < deadline
        #expect(wrong.count == 0, "\(wrong.count) files left wrong, such as \(wrong.prefix(3))")
        #expect(f.daemon.counters.overflows.load(ordering: .relaxed) >= 1)
    }
}

extension DaemonFixture {
    /// Creates a permission cookie and returns every other alert that arrived before its alert.
    func permissionSync(sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [SeenAlert] {
        let name = "p\(Clock.monotonicNanoseconds())"
        tree.write("perm-cookies/\(name)", "x", mode: 0o644)
        var others: [SeenAlert] = []
        while let alert = next() {
            if alert.rule == "perm-cookie" && alert.path == "/perm-cookies/\(name)" { return others }
            if alert.rule != "cookie" && alert.rule != "perm-cookie" { others.append(alert) }
        }
        Issue.record(
            "permission cookie \(name) never arrived; alerts seen: \(others); log: \(logs.messages)",
            sourceLocation: sourceLocation
        )
        return others
    }
}
