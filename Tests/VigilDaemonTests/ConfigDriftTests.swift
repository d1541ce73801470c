import Logging
import Testing
import VigilHarness
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Config drift on real inotify: every way a file gets written gives exactly the alerts its final content implies.
@Suite(.timeLimit(.minutes(2)))
struct ConfigDriftTests {
    private func fixture(initial: String = "true", label: String = "drift") throws -> DaemonFixture {
        try DaemonFixture(rules: sslRule, label: label) { tree in
            tree.makeDirectory("etc/analytics")
            tree.write("etc/analytics/upload-service.conf", uploadConfig(initial))
        }
    }

    @Test func conditionTrueAtStartFiresOnceAtStartUp() throws {
        let f = try fixture(initial: "false")
        let alert = f.expect(rule: "ssl-off", state: "firing")
        #expect(alert?.path == "/etc/analytics/upload-service.conf")
        #expect(alert?.message == "verify_ssl is false in /etc/analytics/upload-service.conf")
        #expect(f.sync().isEmpty)
    }

    @Test func nothingFiresAtStartWhenConditionIsFalse() throws {
        let f = try fixture()
        #expect(f.sync().isEmpty)
    }

    @Test func inPlaceWriteFiresThenResolves() throws {
        let f = try fixture()
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("false"))
        let firing = f.expect(rule: "ssl-off", state: "firing")
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("true"))
        let resolved = f.expect(rule: "ssl-off", state: "resolved")
        #expect(firing?.fingerprint == resolved?.fingerprint)
        #expect(firing?.id != resolved?.id)
        #expect(f.sync().isEmpty)
    }

    @Test func resolutionUsesTheResolvedMessage() throws {
        let rules = """
            - rule: ssl-off
              config: /etc/analytics/upload-service.conf
              when: { key: verify_ssl, is: false }
              message: "off: {key} = {value}"
              resolved_message: "on again: {key} = {value} (was {old})"

            """
        let f = try DaemonFixture(rules: rules, label: "resolvedmsg") { tree in
            tree.makeDirectory("etc/analytics")
            tree.write("etc/analytics/upload-service.conf", uploadConfig("false"))
        }
        #expect(f.expect(rule: "ssl-off", state: "firing")?.message == "off: verify_ssl = false")
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("yes"))
        #expect(f.expect(rule: "ssl-off", state: "resolved")?.message == "on again: verify_ssl = yes (was false)")
    }

    @Test func renameOverFiresThenResolves() throws {
        let f = try fixture()
        f.tree.writeReplacing("etc/analytics/upload-service.conf", uploadConfig("false"))
        f.expect(rule: "ssl-off", state: "firing")
        f.tree.writeReplacing("etc/analytics/upload-service.conf", uploadConfig("true"))
        f.expect(rule: "ssl-off", state: "resolved")
        #expect(f.sync().isEmpty)
    }

    @Test func vimStyleSaveGivesExactlyOneAlert() throws {
        let f = try fixture()
        f.tree.writeLikeVim("etc/analytics/upload-service.conf", uploadConfig("false"))
        f.expect(rule: "ssl-off", state: "firing")
        f.tree.writeLikeVim("etc/analytics/upload-service.conf", uploadConfig("true"))
        f.expect(rule: "ssl-off", state: "resolved")
        #expect(f.sync().isEmpty)
    }

    @Test func deleteKeepsStateAndRecreateIsJudged() throws {
        let f = try fixture(initial: "false")
        f.expect(rule: "ssl-off", state: "firing")
        f.tree.unlinkFile("etc/analytics/upload-service.conf")
        #expect(f.sync().isEmpty, "a missing file is unknown, not a resolution")
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("false"))
        #expect(f.sync().isEmpty, "still false: no second firing")
        f.tree.unlinkFile("etc/analytics/upload-service.conf")
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("yes"))
        f.expect(rule: "ssl-off", state: "resolved")
    }

    @Test func directoryCreatedLaterIsWatchedFromItsAncestor() throws {
        let f = try DaemonFixture(rules: sslRule, label: "late") { _ in }
        #expect(f.sync().isEmpty)
        f.tree.makeDirectory("etc")
        f.tree.makeDirectory("etc/analytics")
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("off"))
        f.expect(rule: "ssl-off", state: "firing")
        // The directory goes away and comes back: the watch follows.
        f.tree.unlinkFile("etc/analytics/upload-service.conf")
        #expect(rmdir(f.tree.path("etc/analytics")) == 0)
        #expect(f.sync().isEmpty)
        f.tree.makeDirectory("etc/analytics")
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("on"))
        f.expect(rule: "ssl-off", state: "resolved")
    }

    @Test func directoryTreeCreatedAtOnceBeforeTheWatchIsScanned() throws {
        let f = try DaemonFixture(rules: sslRule, label: "mkdirp") { tree in tree.makeDirectory("etc") }
        // mkdir -p and the file appear faster than a watch can be added on each level.
        f.tree.makeDirectory("etc/analytics")
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("0"))
        f.expect(rule: "ssl-off", state: "firing")
    }

    @Test(arguments: ["false", "False", "FALSE", "no", "No", "off", "OFF", "0", "\"false\"", "'no'"])
    func everySpellingOfFalseFires(spelling: String) throws {
        let f = try fixture(label: "spell")
        f.tree.writeReplacing("etc/analytics/upload-service.conf", uploadConfig(spelling))
        let alert = f.expect(rule: "ssl-off", state: "firing")
        #expect(alert?.message.hasPrefix("verify_ssl is ") == true)
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("true"))
        f.expect(rule: "ssl-off", state: "resolved")
    }

    @Test func rewritingWithVerifySSLUnchangedGivesNoAlert() throws {
        let f = try fixture(initial: "false")
        f.expect(rule: "ssl-off", state: "firing")
        let same = uploadConfig("false")
        f.tree.write("etc/analytics/upload-service.conf", same)
        f.tree.writeReplacing("etc/analytics/upload-service.conf", same)
        f.tree.writeLikeVim("etc/analytics/upload-service.conf", same)
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("false", extra: "timeout = 30"))
        f.tree.writeReplacing("etc/analytics/upload-service.conf", uploadConfig("no", extra: "timeout = 31"))
        f.tree.chmodFile("etc/analytics/upload-service.conf", 0o600)
        #expect(f.sync().isEmpty)
    }

    /// The issue's acceptance check: 1,000 flips, half in place and half editor-style (rename over, and vim's
    /// rename-away-and-rewrite), each waited for: exactly one alert per flip, none missed, none doubled.
    @Test func thousandFlipsGiveExactlyOneAlertEach() throws {
        let f = try fixture(label: "flips")
        var missed = 0
        for flip in 0..<1000 {
            let toFalse = flip % 2 == 0
            let content = uploadConfig(toFalse ? "false" : "true")
            switch flip % 4 {
            case 0, 1: f.tree.write("etc/analytics/upload-service.conf", content)
            case 2: f.tree.writeReplacing("etc/analytics/upload-service.conf", content)
            default: f.tree.writeLikeVim("etc/analytics/upload-service.conf", content)
            }
            guard let alert = f.next() else {
                missed += 1
                break
            }
            #expect(alert.rule == "ssl-off")
            #expect(alert.state == (toFalse ? "firing" : "resolved"), "flip \(flip): \(alert)")
        }
        #expect(missed == 0)
        #expect(f.sync().isEmpty, "no doubled alerts")
    }

    /// 10,000 rapid rewrites without waiting: the alerts alternate and end in the file's final state.
    @Test func tenThousandRapidChangesEndInTheFinalState() throws {
        let f = try fixture(label: "rapid")
        for i in 0..<10_000 {
            let content = uploadConfig(i % 2 == 0 ? "false" : "true", extra: "n = \(i)")
            if i % 3 == 0 {
                f.tree.writeReplacing("etc/analytics/upload-service.conf", content)
            } else {
                f.tree.write("etc/analytics/upload-service.conf", content)
            }
        }
        f.tree.write("etc/analytics/upload-service.conf", uploadConfig("false", extra: "n = final"))
        let alerts = f.sync()
        #expect(!alerts.isEmpty)
        #expect(alerts.last?.state == "firing", "final state false must be firing")
        for (a, b) in zip(alerts, alerts.dropFirst()) {
            #expect(a.state != b.state, "states must alternate: \(a.state) then \(b.state)")
        }
        #expect(f.logs.messages(atLeast: .error).isEmpty, "\(f.logs.messages(atLeast: .error))")
    }

    @Test func symlinkedConfigIsFollowedAndItsTargetWatched() throws {
        let f = try DaemonFixture(rules: sslRule, label: "symlink") { tree in
            tree.makeDirectory("etc/analytics")
            tree.makeDirectory("opt/app")
            tree.write("opt/app/real.conf", uploadConfig("true"))
            tree.write("opt/app/other.conf", uploadConfig("false"))
            // Absolute target: resolved inside the root, like every rule path.
            tree.symlink("etc/analytics/upload-service.conf", to: "/opt/app/real.conf")
        }
        #expect(f.sync().isEmpty)
        f.tree.write("opt/app/real.conf", uploadConfig("false"))
        f.expect(rule: "ssl-off", state: "firing")
        f.tree.writeReplacing("opt/app/real.conf", uploadConfig("true"))
        f.expect(rule: "ssl-off", state: "resolved")
        // Re-point the link at a file that says false.
        f.tree.unlinkFile("etc/analytics/upload-service.conf")
        f.tree.symlink("etc/analytics/upload-service.conf", to: "../../opt/app/other.conf")
        f.expect(rule: "ssl-off", state: "firing")
        // The old target no longer matters.
        f.tree.write("opt/app/real.conf", uploadConfig("false", extra: "x = 1"))
        #expect(f.sync().isEmpty)
    }

    @Test func globConfigPicksUpNewFiles() throws {
        let rules = """
            - rule: conf-d-ssl
              config: /etc/analytics/conf.d/*.conf
              when: { key: verify_ssl, is: false }
              message: "{file}"

            """
        let f = try DaemonFixture(rules: rules, label: "glob") { tree in
            tree.makeDirectory("etc/analytics/conf.d")
            tree.write("etc/analytics/conf.d/a.conf", "verify_ssl = false\n")
        }
        let first = f.expect(rule: "conf-d-ssl", state: "firing")
        #expect(first?.message == "a.conf")
        f.tree.write("etc/analytics/conf.d/b.conf", "verify_ssl = no\n")
        let second = f.expect(rule: "conf-d-ssl", state: "firing")
        #expect(second?.message == "b.conf")
        #expect(first?.fingerprint != second?.fingerprint)
        f.tree.write("etc/analytics/conf.d/b.conf.disabled", "verify_ssl = no\n")
        #expect(f.sync().isEmpty)
    }
}

/// Change rules report the keys that changed, old → new, and never copy a secret into an alert.
@Suite(.timeLimit(.minutes(1)))
struct ConfigChangeTests {
    static let rules = """
        - rule: anything-changed
          config: /etc/analytics/upload-service.conf
          changes: ["*"]
          message: "{changes}"
        - rule: token-set
          config: /etc/analytics/upload-service.conf
          when: { key: api_token, present: true }
          message: "api_token = {value}"

        """

    @Test func changedKeysAreReportedWithSecretsMasked() throws {
        let f = try DaemonFixture(rules: Self.rules, label: "changes") { tree in
            tree.makeDirectory("etc/analytics")
            tree.write("etc/analytics/upload-service.conf", "api_url = https://a\ndb_password = hunter2\n")
        }
        #expect(f.sync().isEmpty, "the first snapshot is not a change")
        f.tree.writeReplacing(
            "etc/analytics/upload-service.conf",
            "api_url = https://b\ndb_password = correct-horse\napi_token = s3cr3t-t0k3n\n"
        )
        var seen: [SeenAlert] = []
        while seen.count < 2, let alert = f.next() {
            if alert.rule != "cookie" { seen.append(alert) }
        }
        let change = try #require(seen.first { $0.rule == "anything-changed" })
        #expect(change.state == "event")
        #expect(change.line.contains(#"{"key":"api_url","old":"https://a","new":"https://b"}"#), "\(change)")
        #expect(change.line.contains(#"{"key":"db_password","old":"****","new":"****"}"#), "\(change)")
        #expect(change.line.contains(#"{"key":"api_token","old":null,"new":"****"}"#), "\(change)")
        let token = try #require(seen.first { $0.rule == "token-set" })
        #expect(token.message == "api_token = ****")
        for alert in seen {
            for secret in ["hunter2", "correct-horse", "s3cr3t-t0k3n"] {
                #expect(!alert.line.contains(secret), "secret '\(secret)' copied into \(alert)")
            }
        }
    }
}
