import Logging
import Testing
import VigilHarness
import VigilRules
import VigilSystem
import VigilTestSupport

@testable import VigilDaemon

#if canImport(Glibc)
import Glibc
#endif

/// `escalation:` rules on a temporary root with a real daemon: programs root runs from crontabs and units
/// that someone else can write, found at start-up and the moment a mode, an owner or a source changes.
@Suite(.timeLimit(.minutes(2)))
struct EscalationRuleTests {
    static let rule = """
        - rule: root-runs-user-writable
          severity: critical
          escalation: any

        """

    /// `etc/passwd` and `etc/group` (aanya 1000, svc 1001, group developers 1002), a root-owned `/home` and
    /// `/home/aanya`, and `/zzcookie`, world-writable, whose scripts are the watcher's cookies.
    static func accounts(_ tree: TempTree) {
        tree.makeDirectory("etc/cron.d")
        tree.write(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\naanya:x:1000:1000::/home/aanya:/bin/bash\nsvc:x:1001:1001::/:/usr/sbin/nologin\n"
        )
        tree.write("etc/group", "root:x:0:\naanya:x:1000:\nsvc:x:1001:\ndevelopers:x:1002:aanya\n")
        tree.makeDirectory("home/aanya")
        tree.makeDirectory("zzcookie")
        chmod(tree.path("zzcookie"), 0o777)
    }

    /// The seed's case: `/etc/crontab` runs `/home/aanya/scripts/maint.sh` as root, and aanya owns the
    /// scripts directory and the script.
    static func seedCrontab(_ tree: TempTree) {
        accounts(tree)
        tree.write(
            "etc/crontab",
            """
            SHELL=/bin/sh
            # m h dom mon dow user  command
            17 *    * * *   root    cd / && run-parts --report /etc/cron.hourly
            0 2 * * * root /home/aanya/scripts/maint.sh
            30 1 * * * aanya /home/aanya/scripts/own-job.sh

            """
        )
        tree.makeDirectory("home/aanya/scripts")
        tree.write("home/aanya/scripts/maint.sh", "#!/bin/sh\n", mode: 0o755)
        tree.write("home/aanya/scripts/own-job.sh", "#!/bin/sh\n", mode: 0o777)
        for path in ["home/aanya/scripts", "home/aanya/scripts/maint.sh", "home/aanya/scripts/own-job.sh"] {
            chown(tree.path(path), 1000, 1000)
        }
    }

    @Test func userWritableRootJobFiresAtStartUpResolvesWhenFixedAndFiresAgainAtOnce() throws {
        let f = try DaemonFixture(rules: Self.rule, label: "esc-seed", prepare: Self.seedCrontab)
        let alert = try #require(f.expect(rule: "root-runs-user-writable", state: "firing"))
        #expect(alert.severity == "critical")
        #expect(alert.kind == "escalation.writable_by_others")
        #expect(alert.path == "/home/aanya/scripts", "the first path on the way that aanya can write")
        #expect(alert.message.contains("root runs /home/aanya/scripts/maint.sh (/etc/crontab:4)"), "\(alert.message)")
        #expect(alert.message.contains("user aanya can write"), "\(alert.message)")
        #expect(alert.message.contains("directory /home/aanya/scripts is aanya:aanya mode 0755"), "\(alert.message)")
        #expect(alert.message.contains("chown root:root /home/aanya/scripts /home/aanya/scripts/maint.sh"))
        // aanya's own job (user field aanya) is not root's, whatever its mode.
        #expect(f.escalationSync().isEmpty)

        // Fixed the way the alert says: the script first (aanya can still write the directory: no new alert).
        let directory = f.tree.path("home/aanya/scripts")
        chown(f.tree.path("home/aanya/scripts/maint.sh"), 0, 0)
        chmod(f.tree.path("home/aanya/scripts/maint.sh"), 0o755)
        chown(directory, 0, 0)
        chmod(directory, 0o755)
        let resolved = try #require(f.expect(rule: "root-runs-user-writable", state: "resolved"))
        #expect(
            resolved.message
                == "Resolved: /home/aanya/scripts/maint.sh: only root can write it and the directories above it"
        )

        // A group that is not root's gets write permission on the directory: at once.
        chown(directory, 0, 1002)
        chmod(directory, 0o775)
        let again = try #require(f.expect(rule: "root-runs-user-writable", state: "firing"))
        #expect(again.message.contains("group developers can write /home/aanya/scripts"), "\(again.message)")
        #expect(again.message.contains("root:developers mode 0775, group-writable"), "\(again.message)")
    }

    @Test func cronDFileSavedByRenameWithAWorldWritableScriptFires() throws {
        let f = try DaemonFixture(rules: Self.rule, label: "esc-crond") { tree in
            Self.accounts(tree)
            tree.makeDirectory("srv/tools")
            tree.write("srv/tools/run.sh", "#!/bin/sh\n", mode: 0o755)
            chmod(tree.path("srv/tools/run.sh"), 0o777)
        }
        #expect(f.escalationSync().isEmpty, "nothing root runs at start-up")
        f.tree.writeReplacing(
            "etc/cron.d/backup",
            "MAILTO=root\n@daily root /usr/bin/env bash /srv/tools/run.sh >/dev/null 2>&1\n"
        )
        let alert = try #require(f.expect(rule: "root-runs-user-writable", state: "firing"))
        #expect(alert.path == "/srv/tools/run.sh")
        #expect(
            alert.message.contains("(/etc/cron.d/backup:2)") && alert.message.contains("everyone can write"),
            "\(alert.message)"
        )
        #expect(alert.message.contains("world-writable"), "\(alert.message)")
        // The job removed: root no longer runs it.
        f.tree.unlinkFile("etc/cron.d/backup")
        let resolved = try #require(f.expect(rule: "root-runs-user-writable", state: "resolved"))
        #expect(resolved.message == "Resolved: /srv/tools/run.sh: root no longer runs it")
    }

    @Test func aScriptChangedRightAfterTheCrontabThatNamesItIsStillSeen() throws {
        // The crontab now names a new, sound script: the old one's resolution is sent while the watcher is
        // still placing the new script's watches, and a chmod made the moment it arrives raises no event on
        // a watch not yet there; the watcher checks again once watching. Twenty rounds, as the demo does it.
        let f = try DaemonFixture(rules: Self.rule, label: "esc-race") { tree in
            Self.accounts(tree)
            tree.makeDirectory("srv/jobs")
            tree.write("srv/jobs/job0.sh", "#!/bin/sh\n", mode: 0o755)
            chmod(tree.path("srv/jobs/job0.sh"), 0o777)
            tree.write("etc/cron.d/job", "0 3 * * * root /srv/jobs/job0.sh\n")
        }
        #expect(f.expect(rule: "root-runs-user-writable", state: "firing")?.path == "/srv/jobs/job0.sh")
        for round in 1...20 {
            f.tree.write("srv/jobs/job\(round).sh", "#!/bin/sh\n", mode: 0o755)
            f.tree.writeReplacing("etc/cron.d/job", "0 3 * * * root /srv/jobs/job\(round).sh\n")
            let resolved = try #require(f.expect(rule: "root-runs-user-writable", state: "resolved"), "round \(round)")
            #expect(resolved.path == "/srv/jobs/job\(round - 1).sh")
            chmod(f.tree.path("srv/jobs/job\(round).sh"), 0o777)
            let alert = try #require(f.expect(rule: "root-runs-user-writable", state: "firing"), "round \(round)")
            #expect(alert.path == "/srv/jobs/job\(round).sh", "\(alert.message)")
        }
    }

    @Test func userCronLinesNeverFire() throws {
        let f = try DaemonFixture(rules: Self.rule, label: "esc-user") { tree in
            Self.accounts(tree)
            tree.makeDirectory("home/aanya/scripts")
            tree.write("home/aanya/scripts/m.sh", "#!/bin/sh\n", mode: 0o777)
            chown(tree.path("home/aanya/scripts"), 1000, 1000)
            tree.write("etc/crontab", "0 2 * * * aanya /home/aanya/scripts/m.sh\n")
            tree.makeDirectory("var/spool/cron/crontabs")
            tree.write("var/spool/cron/crontabs/aanya", "* * * * * /home/aanya/scripts/m.sh\n")
        }
        #expect(f.escalationSync().isEmpty)
        f.tree.writeReplacing("etc/cron.d/aanya", "*/5 * * * * 1000 bash /home/aanya/scripts/m.sh\n")
        #expect(f.escalationSync().isEmpty, "a job of uid 1000 is not root's")
        // Root's own crontab (no user field) is root's.
        f.tree.writeReplacing(
            "var/spool/cron/crontabs/root",
            "# root\n* * * * * /bin/sh -c '/home/aanya/scripts/m.sh'\n"
        )
        let alert = try #require(f.expect(rule: "root-runs-user-writable", state: "firing"))
        #expect(alert.message.contains("(/var/spool/cron/crontabs/root:2)"), "\(alert.message)")
    }

    @Test func unitsWithUserAreIgnoredAndUnitsWithoutAreChecked() throws {
        let unit = { (user: String) in
            """
            [Unit]
            Description=x

            [Service]
            \(user)
            ExecStartPre=-/usr/bin/true
            ExecStart=/opt/x/run.sh --serve

            [Install]
            WantedBy=multi-user.target

            """
        }
        let f = try DaemonFixture(rules: Self.rule, label: "esc-unit") { tree in
            Self.accounts(tree)
            tree.makeDirectory("opt/x")
            tree.write("opt/x/run.sh", "#!/bin/sh\n", mode: 0o755)
            chown(tree.path("opt/x"), 1001, 1001)
            tree.makeDirectory("etc/systemd/system")
            tree.write("etc/systemd/system/x.service", unit("User=svc"))
        }
        #expect(f.escalationSync().isEmpty, "x.service runs as svc")
        f.tree.writeReplacing("etc/systemd/system/x.service", unit("# runs as root"))
        let alert = try #require(f.expect(rule: "root-runs-user-writable", state: "firing"))
        #expect(alert.path == "/opt/x")
        #expect(alert.message.contains("root runs /opt/x/run.sh (/etc/systemd/system/x.service:7)"), "\(alert.message)")
        #expect(alert.message.contains("user svc can write"), "\(alert.message)")
    }

    @Test func aUnitLinkedFromEtcIsReadAgainWhenItsTargetChanges() throws {
        let f = try DaemonFixture(rules: Self.rule, label: "esc-unitlink") { tree in
            Self.accounts(tree)
            tree.makeDirectory("opt/y")
            chown(tree.path("opt/y"), 1000, 1000)
            tree.makeDirectory("etc/systemd/system")
            tree.makeDirectory("lib/systemd/system")
            tree.write("lib/systemd/system/y.service", "[Service]\nUser=svc\nExecStart=/opt/y/run\n")
            tree.symlink("etc/systemd/system/y.service", to: "/lib/systemd/system/y.service")
        }
        #expect(f.escalationSync().isEmpty, "y.service runs as svc")
        f.tree.writeReplacing("lib/systemd/system/y.service", "[Service]\nExecStart=/opt/y/run\n")
        let alert = try #require(f.expect(rule: "root-runs-user-writable", state: "firing"))
        #expect(alert.message.contains("root runs /opt/y/run (/etc/systemd/system/y.service:2)"), "\(alert.message)")
        #expect(alert.message.contains("the program does not exist"), "\(alert.message)")
    }

    @Test func alsoNamesProgramsNoSourceLists() throws {
        let rules = """
            - rule: extra
              escalation: cron
              also: [/opt/z/tool]

            """
        let f = try DaemonFixture(rules: rules, label: "esc-also") { tree in
            Self.accounts(tree)
            tree.makeDirectory("opt/z")
            chmod(tree.path("opt/z"), 0o1777)
            tree.write("opt/z/tool", "#!/bin/sh\n", mode: 0o755)
        }
        // Sticky and world-writable, but the tool is root's: no one else can replace it.
        #expect(f.escalationSync().isEmpty)
        chown(f.tree.path("opt/z/tool"), 1000, 1000)
        let alert = try #require(f.expect(rule: "extra", state: "firing"))
        #expect(alert.message.contains("(also: in rule 'extra')"), "\(alert.message)")
        #expect(alert.message.contains("everyone, user aanya can write /opt/z"), "\(alert.message)")
    }

    @Test func aSymlinkIsCheckedWhereItIsAndWhereItPoints() throws {
        let f = try DaemonFixture(rules: Self.rule, label: "esc-link") { tree in
            Self.accounts(tree)
            tree.makeDirectory("usr/local/bin")
            tree.makeDirectory("home/aanya/bin")
            chown(tree.path("home/aanya/bin"), 1000, 1000)
            tree.write("home/aanya/bin/job.sh", "#!/bin/sh\n", mode: 0o755)
            tree.symlink("usr/local/bin/job", to: "/home/aanya/bin/job.sh")
            tree.write("etc/crontab", "0 3 * * * root /usr/local/bin/job\n")
        }
        let alert = try #require(f.expect(rule: "root-runs-user-writable", state: "firing"))
        #expect(alert.path == "/home/aanya/bin")
        #expect(
            alert.message.contains("through symlink /usr/local/bin/job -> /home/aanya/bin/job.sh"),
            "\(alert.message)"
        )
        // The target made root's: resolved; then the link's own directory opened to a group: fires.
        chown(f.tree.path("home/aanya/bin"), 0, 0)
        f.expect(rule: "root-runs-user-writable", state: "resolved")
        chown(f.tree.path("usr/local/bin"), 0, 1002)
        chmod(f.tree.path("usr/local/bin"), 0o775)
        let again = try #require(f.expect(rule: "root-runs-user-writable", state: "firing"))
        #expect(again.path == "/usr/local/bin", "\(again.message)")
    }

    /// The seed sandbox with the seed's `/etc/crontab` line (as the seed shows it, without a user field) and
    /// aanya's script: found at start-up; the log line gives what start-up cost (read by the benchmark notes).
    @Test func seedSandboxRootJobIsFoundAtStartUp() throws {
        let sandbox = try SeedSandbox(label: "esc-seed")
        defer { sandbox.remove() }
        try sandbox.write("/etc/crontab", "SHELL=/bin/sh\n0 2 * * * /home/aanya/scripts/analytics_maintenance.sh\n")
        try sandbox.makeDirectories("/home/aanya/scripts")
        try sandbox.write("/home/aanya/scripts/analytics_maintenance.sh", "#!/bin/sh\n")
        for path in ["/home/aanya", "/home/aanya/scripts", "/home/aanya/scripts/analytics_maintenance.sh"] {
            chown(sandbox.hostPath(path), 1013, 1013)
        }
        let compilation = RuleCompiler.compile(sources: [(file: "seed.yaml", text: Self.rule)])
        let ruleSet = try #require(compilation.ruleSet)
        let alerts = sandbox.hostPath("/alerts.jsonl")
        let follower = try LineFollower(path: alerts)
        let (logger, store) = InMemoryLogHandler.logger()
        let daemon = try Daemon(
            options: Daemon.Options(ruleSet: ruleSet, root: sandbox.root, extraAlertFiles: [alerts]),
            logger: logger
        )
        let started = Clock.monotonicNanoseconds()
        try daemon.start()
        let startNanoseconds = Clock.monotonicNanoseconds() &- started
        defer { daemon.stop() }
        let line = try #require(follower.next(timeoutMilliseconds: 5000)).line
        let alert = SeenAlert(line: line)
        #expect(alert.state == "firing" && alert.path == "/home/aanya", "\(alert)")
        #expect(alert.message.contains("(/etc/crontab:2)") && alert.message.contains("user aanya"), "\(alert.message)")
        #expect(alert.message.contains("the line has no user field"), "\(alert.message)")
        let cost = store.messages.map(\.message).first { $0.hasPrefix("Escalation rules:") }
        #expect(cost != nil, "\(store.messages)")
        // Fixed (the script, then its directories); the last chown resolves it, and the time from that
        // chown to the resolution is the reaction latency.
        let paths = ["/home/aanya/scripts/analytics_maintenance.sh", "/home/aanya/scripts", "/home/aanya"]
        for path in paths.dropLast() { chown(sandbox.hostPath(path), 0, 0) }
        let fixedAt = Clock.monotonicNanoseconds()
        chown(sandbox.hostPath("/home/aanya"), 0, 0)
        let resolved = try #require(follower.next(timeoutMilliseconds: 5000)).line
        let latency = Clock.monotonicNanoseconds() &- fixedAt
        #expect(SeenAlert(line: resolved).state == "resolved", "\(resolved)")
        print("[escalation cost] chown to resolved alert \(latency / 1000) µs")
        print("[escalation cost] daemon.start() \(startNanoseconds / 1000) µs; \(cost ?? "")")
    }

    @Test func commandsAreReadLikeCronAndSystemdReadThem() {
        #expect(RootPrograms.programs(inShellCommand: "/usr/bin/env bash /x.sh arg") == ["/usr/bin/env", "/x.sh"])
        #expect(RootPrograms.programs(inShellCommand: "bash -e /x.sh") == ["/x.sh"])
        #expect(RootPrograms.programs(inShellCommand: "/bin/sh -c '/a.sh; /b.sh'") == ["/bin/sh", "/a.sh", "/b.sh"])
        #expect(RootPrograms.programs(inShellCommand: "cd /srv && ./x.sh") == [], "relative programs are out of scope")
        #expect(
            RootPrograms.programs(inShellCommand: "LANG=C /usr/bin/python3 /opt/j.py > /dev/null") == [
                "/usr/bin/python3", "/opt/j.py",
            ]
        )
        let cron = RootPrograms.systemCrontab(
            "# c\nPATH=/bin\n0 2 * * * root /a.sh %stdin\n@reboot 0 /b.sh\n",
            file: "/etc/crontab"
        )
        #expect(
            cron == [
                RootProgram(path: "/a.sh", source: "/etc/crontab:3"),
                RootProgram(path: "/b.sh", source: "/etc/crontab:4"),
            ]
        )
        let seed = RootPrograms.systemCrontab(
            "0 2 * * * /home/aanya/scripts/analytics_maintenance.sh\n",
            file: "/etc/crontab"
        )
        #expect(seed.map(\.path) == ["/home/aanya/scripts/analytics_maintenance.sh"] && seed.first?.note != nil)
        let unit = RootPrograms.unit(
            "[Service]\nUser=svc\nExecStart=/srv/run\nExecStartPre=+/srv/pre \\\n  --flag\n",
            file: "u"
        )
        #expect(unit == [RootProgram(path: "/srv/pre", source: "u:4")], "+ runs as root whatever User= says")
    }
}

extension DaemonFixture {
    /// Adds a root job running a new script in the world-writable `/zzcookie` and returns every other alert
    /// before the cookie's own: the watcher handles events in order, and within one batch reports programs
    /// in path order, so `/zzcookie/…` comes last.
    func escalationSync(sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [SeenAlert] {
        let name = "c\(Clock.monotonicNanoseconds())"
        tree.writeReplacing("etc/cron.d/zzcookie-\(name)", "* * * * * root /zzcookie/\(name).sh\n")
        var others: [SeenAlert] = []
        while let alert = next() {
            if alert.message.contains("/zzcookie/\(name).sh (") { return others }
            if alert.rule != "cookie" && !alert.message.contains("/zzcookie/") { others.append(alert) }
        }
        Issue.record(
            "escalation cookie \(name) never arrived; alerts seen: \(others); log: \(logs.messages)",
            sourceLocation: sourceLocation
        )
        return others
    }
}
