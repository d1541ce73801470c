import Testing
import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil install --destdir`: what goes where, with which owner and mode; upgrades; a broken rule installs
/// nothing; uninstall.
@Suite(
    .enabled(if: VigilBinary.exists, "build the vigil binary first (swift build), or set VIGIL_BINARY"),
    .timeLimit(.minutes(2))
)
struct InstallTests {
    /// A source tree (rules/, systemd/vigil.service, README.md) and an empty staging root.
    struct Trees {
        let source = TempDirectory("install-source")
        let destdir = TempDirectory("install-dest")

        init(rules: [String: String]) {
            mkdir(source.path + "/rules", 0o755)
            mkdir(source.path + "/systemd", 0o755)
            setRules(rules)
            source.write("systemd/vigil.service", "[Service]\nExecStart=/usr/local/bin/vigil run\n")
            source.write("README.md", "# Vigil\n")
        }

        /// Replaces the source tree's rule files.
        func setRules(_ rules: [String: String]) {
            for name in FileTree.names(in: source.path + "/rules") { unlink(source.path + "/rules/" + name) }
            for (name, text) in rules { source.write("rules/" + name, text) }
        }

        /// `vigil install --source SOURCE --destdir DESTDIR ARGUMENTS`.
        func install(_ arguments: [String] = []) throws -> (code: Int32, out: String, err: String) {
            try VigilBinary.run(["install", "--source", source.path, "--destdir", destdir.path] + arguments)
        }

        /// A path below the staging root.
        func staged(_ path: String) -> String { destdir.path + path }

        func remove() {
            source.remove()
            destdir.remove()
        }
    }

    static let ruleA = "- rule: passwd-changed\n  file: /etc/passwd\n"
    static let ruleB = "- rule: tmp-world-writable\n  file: /tmp/x\n"

    /// Owner, group and permission bits of a path (lstat), or nil.
    static func owner(_ path: String) -> (uid: uid_t, gid: gid_t, mode: mode_t, type: mode_t)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (info.st_uid, info.st_gid, info.st_mode & 0o7777, info.st_mode & S_IFMT)
    }

    /// Writes all of `bytes` to `fd`.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }

    /// The file's text, or nil.
    static func text(_ path: String) -> String? { ProcFile.readText(path, limit: 1 << 20) }

    @Test func installPutsEveryFileInPlaceRootOwnedAndNotWritableByOthers() throws {
        let trees = Trees(rules: ["10-a.yaml": Self.ruleA, "20-b.yaml": Self.ruleB])
        defer { trees.remove() }
        let result = try trees.install()
        #expect(result.code == 0, "\(result)")
        let expected: [(String, mode_t, mode_t)] = [
            ("/usr/local/bin/vigil", S_IFREG, 0o755),
            ("/etc/vigil", S_IFDIR, 0o755),
            ("/etc/vigil/rules.d", S_IFDIR, 0o755),
            ("/etc/vigil/rules.d/10-a.yaml", S_IFREG, 0o644),
            ("/etc/vigil/rules.d/20-b.yaml", S_IFREG, 0o644),
            ("/etc/vigil/local.d", S_IFDIR, 0o755),
            ("/etc/vigil/local.d/README.txt", S_IFREG, 0o644),
            ("/etc/systemd/system/vigil.service", S_IFREG, 0o644),
            ("/var/lib/vigil", S_IFDIR, 0o700),
            ("/var/log/vigil", S_IFDIR, 0o750),
            ("/usr/local/share/doc/vigil/README.md", S_IFREG, 0o644),
        ]
        for (path, type, mode) in expected {
            let found = try #require(Self.owner(trees.staged(path)), "\(path) missing: \(result.out)")
            #expect(found.type == type && found.mode == mode, "\(path): mode \(String(found.mode, radix: 8))")
            #expect(found.uid == geteuid() && found.gid == getegid() || found.uid == 0, "\(path) owner \(found.uid)")
        }
        var binary = stat()
        var running = stat()
        #expect(stat(trees.staged("/usr/local/bin/vigil"), &binary) == 0 && stat(VigilBinary.path, &running) == 0)
        #expect(binary.st_size == running.st_size, "the running binary is what was installed")
        #expect(Self.text(trees.staged("/etc/vigil/rules.d/10-a.yaml")) == Self.ruleA)
        #expect(Self.text(trees.staged("/etc/vigil/local.d/README.txt"))?.contains("override: true") == true)
        #expect(Self.text(trees.staged("/etc/vigil/local.d/README.txt"))?.contains("- disable: [") == true)
        #expect(result.out.contains("checked 2 shipped rule files: 2 rules, no errors"), "\(result.out)")
        #expect(result.out.contains("staged under \(trees.destdir.path); nothing was started"), "\(result.out)")
        // Nothing is left behind: no temporary files next to what was installed.
        for directory in ["/usr/local/bin", "/etc/vigil/rules.d", "/etc/systemd/system"] {
            #expect(FileTree.names(in: trees.staged(directory)).allSatisfy { !$0.hasPrefix(".") }, "\(directory)")
        }
        // The installed rules pass vigil's own trust check, as the daemon will run them.
        let check = try VigilBinary.run([
            "check", trees.staged("/etc/vigil/rules.d"), "--local-rules", trees.staged("/etc/vigil/local.d"),
        ])
        #expect(check.code == 0, "\(check)")
    }

    @Test func anUpgradeReplacesShippedRulesAndLeavesLocalRulesAlone() throws {
        let trees = Trees(rules: ["10-a.yaml": Self.ruleA, "20-b.yaml": Self.ruleB])
        defer { trees.remove() }
        #expect(try trees.install().code == 0)
        let local = "- rule: tmp-world-writable\n  override: true\n  file: /tmp/y\n"
        let localPath = trees.staged("/etc/vigil/local.d/mine.yaml")
        let fd = open(localPath, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #expect(Self.writeAll(fd, Array(local.utf8)))
        close(fd)
        let readme = Self.text(trees.staged("/etc/vigil/local.d/README.txt"))

        let changedA = Self.ruleA + "  severity: critical\n"
        trees.setRules(["10-a.yaml": changedA, "30-c.yaml": "- rule: tmp-world-writable\n  file: /tmp/z\n"])
        let upgrade = try trees.install()
        #expect(upgrade.code == 0, "\(upgrade)")
        #expect(Self.text(trees.staged("/etc/vigil/rules.d/10-a.yaml")) == changedA)
        #expect(Self.owner(trees.staged("/etc/vigil/rules.d/20-b.yaml")) == nil, "a file no longer shipped goes")
        #expect(upgrade.out.contains("removed /etc/vigil/rules.d/20-b.yaml (no longer shipped)"), "\(upgrade.out)")
        #expect(Self.text(trees.staged("/etc/vigil/rules.d/30-c.yaml")) != nil)
        #expect(Self.text(localPath) == local)
        #expect(Self.owner(localPath)?.mode == 0o600, "local files keep their mode")
        #expect(Self.text(trees.staged("/etc/vigil/local.d/README.txt")) == readme)
        #expect(upgrade.out.contains("kept /etc/vigil/local.d (local rules are never touched)"), "\(upgrade.out)")
        #expect(
            upgrade.out.contains(
                "shipped rule 'tmp-world-writable' (\(trees.source.path)/rules/30-c.yaml:1:3) is overridden by \(localPath):1:3"
            ),
            "the check ran with the local rules: \(upgrade.out)"
        )
    }

    @Test func aBrokenRuleInTheSourceTreeInstallsNothing() throws {
        let trees = Trees(rules: [
            "10-a.yaml": Self.ruleA, "20-bad.yaml": "- rule: x\n  file: /etc/a\n  then: [chmood]\n",
        ])
        defer { trees.remove() }
        let result = try trees.install()
        #expect(result.code == 1, "\(result)")
        #expect(
            result.err.contains("\(trees.source.path)/rules/20-bad.yaml:3:10: error: unknown action 'chmood'"),
            "diagnostics name the source file: \(result.err)"
        )
        #expect(
            result.err.contains(
                "vigil install: 1 error in the rules; nothing was installed or replaced: fix them and run vigil install again (see docs/operations.md#install-rules-failed)"
            ),
            "\(result.err)"
        )
        #expect(
            FileTree.names(in: trees.destdir.path).isEmpty,
            "nothing staged: \(FileTree.names(in: trees.destdir.path))"
        )
    }

    @Test func anUpgradeWhoseRulesClashWithLocalRulesReplacesNothing() throws {
        let trees = Trees(rules: ["10-a.yaml": Self.ruleA])
        defer { trees.remove() }
        #expect(try trees.install().code == 0)
        let localPath = trees.staged("/etc/vigil/local.d/mine.yaml")
        let fd = open(localPath, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        #expect(Self.writeAll(fd, Array(Self.ruleB.utf8)))
        close(fd)
        trees.setRules(["10-a.yaml": Self.ruleA + "  severity: info\n", "20-b.yaml": Self.ruleB])
        let result = try trees.install()
        #expect(result.code == 1, "\(result)")
        #expect(
            result.err.contains(
                "\(localPath):1:9: error: rule id 'tmp-world-writable' is already a shipped rule (\(trees.source.path)/rules/20-b.yaml:1:3); add override: true"
            ),
            "\(result.err)"
        )
        #expect(Self.text(trees.staged("/etc/vigil/rules.d/10-a.yaml")) == Self.ruleA, "the old rules stay")
        #expect(Self.owner(trees.staged("/etc/vigil/rules.d/20-b.yaml")) == nil)
    }

    @Test func dryRunChangesNothingAndNoUnitSkipsTheUnit() throws {
        let trees = Trees(rules: ["10-a.yaml": Self.ruleA])
        defer { trees.remove() }
        let dry = try trees.install(["--dry-run"])
        #expect(dry.code == 0, "\(dry)")
        #expect(dry.out.contains("would install /usr/local/bin/vigil (0755 root:root)"), "\(dry.out)")
        #expect(dry.out.contains("would create /var/lib/vigil (0700 root:root)"), "\(dry.out)")
        #expect(dry.out.contains("dry run: nothing was changed"))
        #expect(FileTree.names(in: trees.destdir.path).isEmpty)
        #expect(try trees.install(["--no-unit"]).code == 0)
        #expect(Self.owner(trees.staged("/etc/systemd/system/vigil.service")) == nil)
        #expect(Self.owner(trees.staged("/usr/local/bin/vigil")) != nil)
    }

    @Test func uninstallKeepsLocalRulesAndStateUnlessPurged() throws {
        let trees = Trees(rules: ["10-a.yaml": Self.ruleA])
        defer { trees.remove() }
        #expect(try trees.install().code == 0)
        let removed = try VigilBinary.run(["install", "--uninstall", "--destdir", trees.destdir.path])
        #expect(removed.code == 0, "\(removed)")
        for path in ["/usr/local/bin/vigil", "/etc/systemd/system/vigil.service", "/etc/vigil/rules.d"] {
            #expect(Self.owner(trees.staged(path)) == nil, "\(path) removed")
        }
        for path in ["/etc/vigil/local.d/README.txt", "/var/lib/vigil", "/var/log/vigil"] {
            #expect(Self.owner(trees.staged(path)) != nil, "\(path) kept")
        }
        #expect(removed.out.contains("kept /etc/vigil/local.d, /var/lib/vigil, /var/log/vigil (alert files)"))
        let purged = try VigilBinary.run(["install", "--uninstall", "--purge", "--destdir", trees.destdir.path])
        #expect(purged.code == 0, "\(purged)")
        for path in ["/etc/vigil", "/var/lib/vigil"] {
            #expect(Self.owner(trees.staged(path)) == nil, "\(path) purged")
        }
        #expect(Self.owner(trees.staged("/var/log/vigil")) != nil, "alert files are never removed")
    }

    @Test func theSourceTreeIsFoundFromTheBinarysPath() throws {
        guard VigilBinary.path.hasPrefix(VigilBinary.repositoryRoot + "/") else { return }
        let destdir = TempDirectory("install-find")
        defer { destdir.remove() }
        let result = try VigilBinary.run(["install", "--destdir", destdir.path, "--dry-run"])
        #expect(result.code == 0, "\(result)")
        #expect(result.out.contains("installing from \(VigilBinary.repositoryRoot) into"), "\(result.out)")
        let missing = try VigilBinary.run(["install", "--destdir", destdir.path, "--source", destdir.path])
        #expect(missing.code == 1)
        #expect(missing.err.contains("see docs/operations.md#install-source-not-found"), "\(missing.err)")
    }
}
