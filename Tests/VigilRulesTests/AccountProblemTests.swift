import Testing
import VigilRules

/// `RuleSet.accountProblems`: every user and group name the rules give, checked against the server's.
@Suite struct AccountProblemTests {
    static let text = """
        - rule: tree
          file: /var/log/analytics
          owner: analytx
          group: log-readers
        - rule: rotation
          rotate: /var/log/analytics/*.log
          size: 1M
          olddir: { path: /var/log/archive, owner: analytics, group: archivists }
          create: { owner: 1001, group: nogroup }
          postrotate: { signal: HUP, to: { user: [analytics, ghost] } }
        - rule: upload
          process: { name: upload-service, user: [analytics, 0, uploader] }
          on: [exit]
          then: [{ restart: { signal: USR1, to: { user: supervisor } } }]
        """

    @Test func everyUnknownNameIsAnErrorAtItsPosition() throws {
        let set = try #require(compileText(Self.text).ruleSet)
        let problems = set.accountProblems(
            knownUser: { ["analytics", "root"].contains($0) },
            knownGroup: { ["log-readers", "adm"].contains($0) },
            passwdPath: "/srv/root/etc/passwd",
            groupPath: "/srv/root/etc/group"
        )
        #expect(
            problems.map(\.description) == [
                "test.yaml:3:10: error: user 'analytx' is not in /srv/root/etc/passwd; use a user name from that file or a uid",
                "test.yaml:8:62: error: group 'archivists' is not in /srv/root/etc/group; use a group name from that file or a gid",
                "test.yaml:9:33: error: group 'nogroup' is not in /srv/root/etc/group; use a group name from that file or a gid",
                "test.yaml:10:54: error: user 'ghost' is not in /srv/root/etc/passwd; use a user name from that file or a uid",
                "test.yaml:12:57: error: user 'uploader' is not in /srv/root/etc/passwd; use a user name from that file or a uid",
                "test.yaml:14:49: error: user 'supervisor' is not in /srv/root/etc/passwd; use a user name from that file or a uid",
            ]
        )
    }

    @Test func knownNamesAndIdsAreFine() throws {
        let set = try #require(compileText(Self.text).ruleSet)
        #expect(
            set.accountProblems(knownUser: { _ in true }, knownGroup: { _ in true }, passwdPath: "", groupPath: "")
                .isEmpty
        )
    }
}
