import Foundation
import Testing
import VigilRules

#if canImport(Glibc)
import Glibc
#endif

/// Rule files are trusted input: files and directories others than root can write are refused, each with
/// the path, what is wrong and the fix.
@Suite struct RuleTrustTests {
    static let rule = "- rule: x\n  file: /etc/a\n"
    static let link = "(see docs/troubleshooting.md#rule-file-not-trusted)"

    /// A directory (0755) holding `rules.yaml` with `mode`; removed by the caller.
    static func ruleFile(mode: mode_t = 0o644) throws -> (directory: String, file: String) {
        let directory = try makeTemporaryDirectory().path
        #expect(chmod(directory, 0o755) == 0)
        let file = directory + "/rules.yaml"
        try rule.write(toFile: file, atomically: false, encoding: .utf8)
        #expect(chmod(file, mode) == 0)
        return (directory, file)
    }

    /// The messages of compiling `paths`.
    static func messages(_ paths: [String]) -> [String] {
        RuleCompiler.compile(paths: paths).diagnostics.map(\.description)
    }

    /// The fix printed for a path: with chown when vigil runs as root.
    static func fix(_ path: String) -> String {
        geteuid() == 0 ? "chown root:root '\(path)' && chmod go-w '\(path)'" : "chmod go-w '\(path)'"
    }

    @Test func aRootOwnedFileOnlyRootCanWriteLoads() throws {
        let (directory, file) = try Self.ruleFile()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let compilation = RuleCompiler.compile(paths: [file, directory])
        #expect(compilation.errorCount == 1, "the file twice: a duplicate id, nothing about trust")
        #expect(compilation.diagnostics.allSatisfy { !$0.message.contains("refusing") })
    }

    @Test(.enabled(if: geteuid() == 0, "only root can give a file to another user"))
    func aFileOwnedByAnotherUserIsRefusedWhenRunningAsRoot() throws {
        let (directory, file) = try Self.ruleFile()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(chown(file, 65534, 65534) == 0)
        let name = getpwuid(65534).map { " (\(String(cString: $0.pointee.pw_name)))" } ?? ""
        #expect(
            Self.messages([file]) == [
                "\(file): error: refusing rule file '\(file)': it is owned by uid 65534\(name) rather than root (mode 0644), so others than root could change what vigil does as root; run chown root:root '\(file)' && chmod go-w '\(file)' \(Self.link)"
            ]
        )
    }

    @Test(.enabled(if: geteuid() == 0, "only root can give a file to another user"))
    func aFileOwnedByAnUnknownUidNamesTheUid() throws {
        let (directory, file) = try Self.ruleFile(mode: 0o600)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(chown(file, 1013, 0) == 0)
        let message = try #require(Self.messages([file]).first)
        #expect(message.contains("it is owned by uid 1013"))
        #expect(message.contains("rather than root (mode 0600)"))
    }

    @Test func aGroupWritableFileIsRefused() throws {
        let (directory, file) = try Self.ruleFile(mode: 0o664)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(
            Self.messages([file]) == [
                "\(file): error: refusing rule file '\(file)': it is group-writable (mode 0664), so others than root could change what vigil does as root; run \(Self.fix(file)) \(Self.link)"
            ]
        )
    }

    @Test func aWorldWritableFileIsRefused() throws {
        let (directory, file) = try Self.ruleFile(mode: 0o646)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(
            Self.messages([file]) == [
                "\(file): error: refusing rule file '\(file)': it is world-writable (mode 0646), so others than root could change what vigil does as root; run \(Self.fix(file)) \(Self.link)"
            ]
        )
    }

    @Test func aWritableRuleDirectoryIsRefusedWithoutReadingItsFiles() throws {
        let (directory, _) = try Self.ruleFile()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(chmod(directory, 0o775) == 0)
        #expect(
            Self.messages([directory]) == [
                "\(directory): error: refusing rule directory '\(directory)': it is group-writable (mode 0775), so others than root could add or replace rule files, and vigil does what they say as root; run \(Self.fix(directory)) \(Self.link)"
            ]
        )
    }

    @Test(.enabled(if: geteuid() == 0, "only root can give a directory to another user"))
    func aRuleDirectoryOwnedByAnotherUserIsRefused() throws {
        let (directory, _) = try Self.ruleFile()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(chown(directory, 1013, 1013) == 0)
        let message = try #require(Self.messages([directory]).first)
        #expect(
            message.hasPrefix("\(directory): error: refusing rule directory '\(directory)': it is owned by uid 1013")
        )
        #expect(
            message.hasSuffix(
                "rather than root (mode 0755), so others than root could add or replace rule files, and vigil does what they say as root; run chown root:root '\(directory)' && chmod go-w '\(directory)' \(Self.link)"
            )
        )
    }

    @Test func aFileInAStickyWorldWritableDirectoryLikeTmpIsRefused() throws {
        let (directory, file) = try Self.ruleFile()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(chmod(directory, 0o1777) == 0)
        #expect(
            Self.messages([file]) == [
                "\(file): error: refusing rule file '\(file)': its directory '\(directory)' is group-writable and world-writable (mode 1777; the sticky bit does not stop anyone creating a file in it), so others than root could replace the file; run \(Self.fix(directory)), or move the file to a directory only root can write \(Self.link)"
            ]
        )
        #expect(chmod(directory, 0o1757) == 0)
        let sticky = try #require(Self.messages([directory]).first)
        #expect(
            sticky.contains(
                "it is world-writable (mode 1757; the sticky bit does not stop anyone creating a file in it)"
            )
        )
    }

    @Test func aSymlinkToAWritableFileIsRefusedNamingTheTarget() throws {
        let (directory, target) = try Self.ruleFile(mode: 0o666)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let links = try makeTemporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: links) }
        #expect(chmod(links, 0o755) == 0)
        let link = links + "/10-link.yaml"
        #expect(symlink(target, link) == 0)
        let expected =
            "\(link): error: refusing rule file '\(link)' (a symlink to '\(target)'): '\(target)' is group-writable and world-writable (mode 0666), so others than root could change what vigil does as root; run \(Self.fix(target)) \(Self.link)"
        #expect(Self.messages([link]) == [expected])
        #expect(Self.messages([links]) == [expected], "a symlink found in a rule directory is judged the same")
    }

    @Test func aSymlinkIntoAWritableDirectoryIsRefused() throws {
        let (directory, target) = try Self.ruleFile()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(chmod(directory, 0o777) == 0)
        let links = try makeTemporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: links) }
        let link = links + "/link.yaml"
        #expect(symlink(target, link) == 0)
        #expect(
            Self.messages([link]) == [
                "\(link): error: refusing rule file '\(link)' (a symlink to '\(target)'): its directory '\(directory)' is group-writable and world-writable (mode 0777), so others than root could replace the file; run \(Self.fix(directory)), or move the file to a directory only root can write \(Self.link)"
            ]
        )
    }

    @Test func aSymlinkToATrustedFileLoads() throws {
        let (directory, target) = try Self.ruleFile()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let link = directory + "/link.yaml"
        #expect(symlink(target, link) == 0)
        let compilation = RuleCompiler.compile(paths: [link])
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        #expect(compilation.ruleSet?.rules.map(\.id) == ["x"])
    }
}
