import Logging
import Testing
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Bad input gets one clear line naming the path and the cause, and every other rule keeps working.
@Suite(.timeLimit(.minutes(1)))
struct BadInputTests {
    /// Rules on five broken configs plus the healthy seed config.
    static let rules =
        sslRule + """
            - rule: dir-config
              config: /etc/bad/is-a-directory.conf
              when: { key: a, present: true }
            - rule: fifo-config
              config: /etc/bad/fifo.conf
              when: { key: a, present: true }
            - rule: binary-config
              config: /etc/bad/binary.conf
              when: { key: a, present: true }
            - rule: huge-config
              config: /etc/bad/huge.conf
              when: { key: a, present: true }
            - rule: loop-config
              config: /etc/bad/loop.conf
              when: { key: a, present: true }

            """

    @Test func eachBrokenConfigIsReportedOnceAndTheRestKeepsWorking() throws {
        let f = try DaemonFixture(rules: Self.rules, label: "bad") { tree in
            tree.makeDirectory("etc/analytics")
            tree.write("etc/analytics/upload-service.conf", uploadConfig("true"))
            tree.makeDirectory("etc/bad/is-a-directory.conf")
            #expect(mkfifo(tree.path("etc/bad/fifo.conf"), 0o644) == 0)
            tree.write("etc/bad/binary.conf", "a = 1\n\u{0}\u{1}\u{2}binary")
            let fd = open(tree.path("etc/bad/huge.conf"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            #expect(ftruncate(fd, 50 << 20) == 0)
            close(fd)
            tree.symlink("etc/bad/loop.conf", to: "/etc/bad/loop2.conf")
            tree.symlink("etc/bad/loop2.conf", to: "/etc/bad/loop.conf")
        }
        #expect(f.sync().isEmpty)
        let errors = f.logs.messages(atLeast: .error)
        func reported(_ fragment: String, _ cause: String) -> Bool {
            errors.filter { $0.contains(fragment) && $0.contains(cause) }.count == 1
        }
        #expect(reported("'/etc/bad/is-a-directory.conf'", "a directory"), "\(errors)")
        #expect(reported("'/etc/bad/fifo.conf'", "a FIFO"), "\(errors)")
        #expect(reported("'/etc/bad/binary.conf'", "NUL byte"), "\(errors)")
        #expect(reported("'/etc/bad/huge.conf'", "52428800 bytes"), "\(errors)")
        #expect(reported("'/etc/bad/loop.conf'", "symlink loop"), "\(errors)")
        // No host path of the sandbox leaks into the messages: they name the server's paths.
        #expect(!errors.contains { $0.contains(f.tree.root) }, "\(errors)")

        // Writing the same broken content again does not repeat its error.
        f.tree.write("etc/bad/binary.conf", "a = 1\n\u{0}\u{1}\u{2}binary")
        #expect(f.sync().isEmpty)
        #expect(f.logs.messages(atLeast: .error).count == errors.count, "\(f.logs.messages(atLeast: .error))")

        // The healthy rule still works, and a broken file that is fixed comes back.
        f.tree.writeReplacing("etc/analytics/upload-service.conf", uploadConfig("false"))
        f.expect(rule: "ssl-off", state: "firing")
        f.tree.write("etc/bad/binary.conf", "a = 3\n")
        f.expect(rule: "binary-config", state: "firing")
    }

    @Test func linesThatAreNotSettingsAreReportedOnceWithTheirNumbers() throws {
        let f = try DaemonFixture(rules: sslRule, label: "typo") { tree in
            tree.makeDirectory("etc/analytics")
            tree.write("etc/analytics/upload-service.conf", "api_url = https://x\nverify_ssl false\n")
        }
        #expect(f.sync().isEmpty, "a key that is not set is not false")
        let warnings = f.logs.messages(atLeast: .warning).filter { $0.contains("not settings") }
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?.contains("'/etc/analytics/upload-service.conf'") == true)
        #expect(warnings.first?.contains("line 2: no '=' in line") == true, "\(warnings)")
        // The same mistake in the next version is not repeated; fixing it is judged as usual.
        f.tree.write("etc/analytics/upload-service.conf", "api_url = https://y\nverify_ssl false\n")
        #expect(f.sync().isEmpty)
        #expect(f.logs.messages(atLeast: .warning).filter { $0.contains("not settings") }.count == 1)
        f.tree.write("etc/analytics/upload-service.conf", "api_url = https://y\nverify_ssl = false\n")
        f.expect(rule: "ssl-off", state: "firing")
    }

    @Test func aHalfWrittenFileIsNotJudgedUntilItsWriterClosesIt() throws {
        let f = try DaemonFixture(rules: sslRule, label: "half") { tree in
            tree.makeDirectory("etc/analytics")
            tree.write("etc/analytics/upload-service.conf", uploadConfig("false"))
        }
        f.expect(rule: "ssl-off", state: "firing")
        // A writer truncates, writes part of the file and keeps it open while the daemon is poked.
        let fd = open(f.tree.path("etc/analytics/upload-service.conf"), O_WRONLY | O_TRUNC)
        #expect(fd >= 0)
        let part = Array("api_url = https://x\nverify_ssl = fal".utf8)
        #expect(part.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == part.count)
        f.tree.chmodFile("etc/analytics/upload-service.conf", 0o640)  // an event while the writer holds it
        #expect(f.sync().isEmpty, "a half-written value must not resolve the alert")
        let rest = Array("se\n".utf8)
        #expect(rest.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == rest.count)
        close(fd)
        #expect(f.sync().isEmpty, "the complete file still says false")
    }
}

/// `file:` rules: created, written, deleted (after the settle time, never for an editor's rename), attributes.
@Suite(.timeLimit(.minutes(1)))
struct FileRuleTests {
    static let rules = """
        - rule: policy
          file: /etc/logrotate.d/analytics
          on: [created, written, deleted, attributes]
          message: "{change}"

        """

    @Test func changesToTheFileItselfAreReported() throws {
        let f = try DaemonFixture(rules: Self.rules, label: "file", settleMilliseconds: 50) { tree in
            tree.makeDirectory("etc/logrotate.d")
        }
        #expect(f.sync().isEmpty)
        f.tree.write("etc/logrotate.d/analytics", "rotate 14\n")
        #expect(f.expect(rule: "policy", state: "event")?.message == "created")
        f.tree.write("etc/logrotate.d/analytics", "rotate 7\n")
        #expect(f.expect(rule: "policy", state: "event")?.message == "written")
        f.tree.chmodFile("etc/logrotate.d/analytics", 0o600)
        #expect(f.expect(rule: "policy", state: "event")?.message == "attributes")
        // vim's save: renamed away and rewritten. Not a deletion.
        f.tree.writeLikeVim("etc/logrotate.d/analytics", "rotate 14\n")
        let afterVim = f.sync()
        #expect(!afterVim.contains { $0.message == "deleted" }, "\(afterVim)")
        #expect(afterVim.contains { $0.message == "written" }, "\(afterVim)")
        f.tree.unlinkFile("etc/logrotate.d/analytics")
        let deleted = f.expect(rule: "policy", state: "event")
        #expect(deleted?.message == "deleted")
        #expect(deleted?.kind == "file.deleted")
    }
}
