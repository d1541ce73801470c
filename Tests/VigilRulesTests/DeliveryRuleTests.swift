import Testing
import VigilRules

/// The one sink compiled from `text`, which must compile without any diagnostic.
func onlySink(_ text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> SinkSpec {
    let compilation = compileText(text)
    #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)", sourceLocation: sourceLocation)
    let sinks = try #require(compilation.ruleSet?.sinks, sourceLocation: sourceLocation)
    #expect(sinks.count == 1, sourceLocation: sourceLocation)
    return try #require(sinks.first, sourceLocation: sourceLocation)
}

/// A template as the parser builds it from `source`, for comparisons.
func template(_ source: String) throws -> MessageTemplate {
    try MessageTemplate(parsing: source)
}

@Suite struct DeliveryExampleTests {
    /// The example of docs/rules.md: one sink of each type, and rules with noise control. (Not a file in
    /// Fixtures/valid, which are also compiled as one directory, where its sink names would clash.)
    static let text = #"""
        # One sink of each type, with the delivery keys, and rules with noise control (docs/rules.md#sinks).
        - sink: alerts-file
          type: jsonl
          path: /var/log/vigil/alerts.jsonl

        - sink: journal
          type: syslog
          min_severity: warning
          facility: local3
          app_name: vigil

        - sink: ops-mail
          type: email
          min_severity: error
          to: [ops@example.com, oncall@example.com]
          from: vigil@example.com
          subject: "[{severity}] {host}: {rule}"
          digest: 50
          retry: { initial: 30s, max: 1h }

        - sink: chat
          type: webhook
          url: https://hooks.example.com/vigil
          headers: { X-Team: platform }
          secret_file: /etc/vigil/webhook.key
          timeout: 10s

        - sink: alertmanager
          type: alertmanager
          url: http://127.0.0.1:9093
          labels: { env: prod }
          resend: 60s
          spool: 128M
          heartbeat: 60s

        - rule: upload-service-running
          severity: critical
          process: { name: upload-service }
          expect: running
          remind: 30m
          then: [{ alert: [alerts-file, alertmanager, ops-mail] }]

        - rule: ssh-failed-logins
          log: /var/log/auth.log
          match: 'Failed password for (?<user>\S+)'
          dedup: { key: "{user}", window: 10m, max: 3 }
          then: [{ alert: [alerts-file, chat, journal] }]

        - rule: hosts-file-changed
          file: /etc/hosts
          dedup: 60s
        """#

    @Test func theDocumentedExampleCompilesToItsValues() throws {
        let compilation = compileText(Self.text, file: "delivery.yaml")
        #expect(compilation.diagnostics.isEmpty, "\(compilation.diagnostics)")
        let set = try #require(compilation.ruleSet)
        #expect(set.sinks.map(\.name) == ["alerts-file", "journal", "ops-mail", "chat", "alertmanager"])
        #expect(set.sinks.map(\.kind.isLocal) == [true, false, false, false, false])
        #expect(set.sinks.map(\.minimumSeverity) == [.info, .warning, .error, .info, .info])
        #expect(set.sinks[1].kind == .syslog(SyslogSink(facility: 19)))
        #expect(
            set.sinks[2].kind
                == .email(
                    EmailSink(
                        to: ["ops@example.com", "oncall@example.com"],
                        from: "vigil@example.com",
                        subject: try template("[{severity}] {host}: {rule}"),
                        digest: 50
                    )
                )
        )
        #expect(
            set.sinks[2].delivery
                == DeliveryPolicy(retryInitialMilliseconds: 30_000, retryMaximumMilliseconds: 3_600_000)
        )
        #expect(
            set.sinks[3].kind
                == .webhook(
                    WebhookSink(
                        url: "https://hooks.example.com/vigil",
                        headers: ["X-Team": "platform"],
                        secretFile: "/etc/vigil/webhook.key"
                    )
                )
        )
        #expect(set.sinks[3].delivery == DeliveryPolicy(timeoutMilliseconds: 10_000))
        #expect(
            set.sinks[4].kind == .alertmanager(AlertmanagerSink(url: "http://127.0.0.1:9093", labels: ["env": "prod"]))
        )
        #expect(set.sinks[4].delivery == DeliveryPolicy(spoolMaximumBytes: 128 << 20, heartbeatMilliseconds: 60_000))

        #expect(set.rules.map(\.id) == ["upload-service-running", "ssh-failed-logins", "hosts-file-changed"])
        #expect(set.rules.map(\.remindMilliseconds) == [1_800_000, nil, nil])
        #expect(set.rules[0].dedup == nil)
        #expect(
            set.rules[1].dedup
                == NoiseControl(
                    key: try template("{user}"),
                    windowMilliseconds: 600_000,
                    maximum: 3,
                    location: SourceLocation(file: "delivery.yaml", line: 46, column: 3)
                )
        )
        #expect(set.rules[2].dedup?.key == (try template("{fingerprint}")))
        #expect(set.rules[2].dedup?.windowMilliseconds == 60_000)
    }
}

@Suite struct SinkParsingTests {
    @Test func syslogSinkTakesEveryKey() throws {
        let sink = try onlySink(
            """
            - sink: journal
              type: syslog
              min_severity: warning
              socket: /run/systemd/journal//dev-log
              facility: local3
              app_name: vigil-prod
              timeout: 2s
              retry: { initial: 500ms, max: 10m }
              spool: 16M
              heartbeat: 30s
            """
        )
        #expect(sink.name == "journal")
        #expect(sink.location == SourceLocation(file: "test.yaml", line: 1, column: 3))
        #expect(sink.minimumSeverity == .warning)
        #expect(
            sink.kind
                == .syslog(SyslogSink(socket: "/run/systemd/journal/dev-log", facility: 19, appName: "vigil-prod"))
        )
        #expect(
            sink.delivery
                == DeliveryPolicy(
                    timeoutMilliseconds: 2000,
                    retryInitialMilliseconds: 500,
                    retryMaximumMilliseconds: 600_000,
                    spoolMaximumBytes: 16 << 20,
                    heartbeatMilliseconds: 30_000
                )
        )
        #expect(!sink.kind.isLocal)
    }

    @Test func syslogSinkDefaults() throws {
        let sink = try onlySink("- sink: journal\n  type: syslog\n")
        #expect(sink.kind == .syslog(SyslogSink(socket: "/dev/log", facility: 3, appName: "vigil")))
        #expect(sink.minimumSeverity == .info)
        #expect(sink.delivery == DeliveryPolicy())
        #expect(sink.delivery.heartbeatMilliseconds == nil)
    }

    @Test(
        arguments: [
            ("kern", 0), ("user", 1), ("mail", 2), ("daemon", 3), ("auth", 4), ("syslog", 5), ("lpr", 6), ("news", 7),
            ("uucp", 8), ("cron", 9), ("authpriv", 10), ("ftp", 11), ("local0", 16), ("local1", 17), ("local2", 18),
            ("local3", 19), ("local4", 20), ("local5", 21), ("local6", 22), ("local7", 23),
        ] as [(String, Int)]
    )
    func facilitiesHaveTheirRFC5424Numbers(_ name: String, _ number: Int) throws {
        let sink = try onlySink("- sink: s\n  type: syslog\n  facility: \(name)\n")
        guard case .syslog(let syslog) = sink.kind else {
            Issue.record("not a syslog sink: \(sink.kind)")
            return
        }
        #expect(syslog.facility == number)
    }

    @Test func emailSinkTakesEveryKey() throws {
        let sink = try onlySink(
            """
            - sink: ops-mail
              type: email
              min_severity: error
              to: [ops@example.com, oncall@example.org]
              from: vigil@example.com
              sendmail: [/usr/bin/msmtp, -t, --read-envelope-from]
              subject: "[{severity}] {host}: {rule}"
              body: "{message} ({custom_label})"
              digest: 20
              timeout: 30s
            """
        )
        #expect(sink.minimumSeverity == .error)
        #expect(
            sink.kind
                == .email(
                    EmailSink(
                        to: ["ops@example.com", "oncall@example.org"],
                        from: "vigil@example.com",
                        sendmail: ["/usr/bin/msmtp", "-t", "--read-envelope-from"],
                        subject: try template("[{severity}] {host}: {rule}"),
                        body: try template("{message} ({custom_label})"),
                        digest: 20
                    )
                )
        )
        #expect(sink.delivery == DeliveryPolicy(timeoutMilliseconds: 30_000))
    }

    @Test func emailSinkDefaultsAndTheShortForms() throws {
        let sink = try onlySink("- sink: m\n  type: email\n  to: ops@example.com\n")
        #expect(sink.kind == .email(EmailSink(to: ["ops@example.com"])))
        guard case .email(let email) = sink.kind else { return }
        #expect(email.sendmail == ["/usr/sbin/sendmail", "-t", "-oi"])
        #expect(email.from == nil && email.subject == nil && email.body == nil && email.digest == 100)

        let program = try onlySink("- sink: m\n  type: email\n  to: [a@b]\n  sendmail: /usr/local//bin/sendmail\n")
        #expect(
            program.kind == .email(EmailSink(to: ["a@b"], sendmail: ["/usr/local/bin/sendmail", "-t", "-oi"]))
        )
    }

    @Test func webhookSinkTakesEveryKey() throws {
        let sink = try onlySink(
            """
            - sink: hook
              type: webhook
              url: https://hooks.example.com/vigil?team=ops
              headers: { Authorization: "Bearer abc", X-Team: ops, X-Count: 3 }
              secret_file: /etc/vigil/./webhook.key
              signature_header: X-Hub-Signature-256
              retry: { initial: 2s }
              heartbeat: 1m
            """
        )
        #expect(
            sink.kind
                == .webhook(
                    WebhookSink(
                        url: "https://hooks.example.com/vigil?team=ops",
                        headers: ["Authorization": "Bearer abc", "X-Team": "ops", "X-Count": "3"],
                        secretFile: "/etc/vigil/webhook.key",
                        signatureHeader: "X-Hub-Signature-256"
                    )
                )
        )
        #expect(
            sink.delivery == DeliveryPolicy(retryInitialMilliseconds: 2000, heartbeatMilliseconds: 60_000)
        )
    }

    @Test func webhookSinkDefaults() throws {
        let sink = try onlySink("- sink: hook\n  type: webhook\n  url: http://[::1]:8080\n")
        #expect(sink.kind == .webhook(WebhookSink(url: "http://[::1]:8080")))
        guard case .webhook(let webhook) = sink.kind else { return }
        #expect(webhook.headers.isEmpty && webhook.secretFile == nil)
        #expect(webhook.signatureHeader == "X-Vigil-Signature")
    }

    @Test func alertmanagerSinkTakesEveryKey() throws {
        let sink = try onlySink(
            """
            - sink: am
              type: alertmanager
              url: http://127.0.0.1:9093/
              labels: { env: prod, team_2: ops }
              event_ttl: 10m
              resend: 30s
              generator_url: https://wiki.example.com/vigil
              spool: 64k
            """
        )
        #expect(
            sink.kind
                == .alertmanager(
                    AlertmanagerSink(
                        url: "http://127.0.0.1:9093",
                        labels: ["env": "prod", "team_2": "ops"],
                        eventTTLMilliseconds: 600_000,
                        resendMilliseconds: 30_000,
                        generatorURL: "https://wiki.example.com/vigil"
                    )
                )
        )
        #expect(sink.delivery == DeliveryPolicy(spoolMaximumBytes: 64 << 10))
    }

    @Test func alertmanagerSinkDefaults() throws {
        let sink = try onlySink("- sink: am\n  type: alertmanager\n  url: https://am.example.com/prefix\n")
        #expect(sink.kind == .alertmanager(AlertmanagerSink(url: "https://am.example.com/prefix")))
        guard case .alertmanager(let alertmanager) = sink.kind else { return }
        #expect(alertmanager.labels.isEmpty && alertmanager.generatorURL == nil)
        #expect(alertmanager.eventTTLMilliseconds == 300_000 && alertmanager.resendMilliseconds == 60_000)
    }

    @Test func localSinksTakeMinSeverityAndKeepTheirKinds() throws {
        let file = try onlySink("- sink: f\n  type: jsonl\n  path: /var/log//vigil/a.jsonl\n  min_severity: critical\n")
        #expect(file.kind == .jsonl(path: "/var/log/vigil/a.jsonl"))
        #expect(file.minimumSeverity == .critical && file.kind.isLocal)
        let console = try onlySink("- sink: c\n  type: stdout\n")
        #expect(console.kind == .stdout && console.minimumSeverity == .info && console.delivery == DeliveryPolicy())
    }

    @Test func aResendOfFiveMinutesOrMoreIsAWarningAndTheSinkLoads() throws {
        let compilation = compileText("- sink: am\n  type: alertmanager\n  url: http://am:9093\n  resend: 5m\n")
        #expect(compilation.errorCount == 0)
        #expect(compilation.diagnostics.map(\.severity) == [.warning])
        let warning = try #require(compilation.diagnostics.first)
        #expect(warning.location == SourceLocation(file: "test.yaml", line: 4, column: 11))
        #expect(warning.message.contains("Alertmanager's default resolve_timeout of 5m"))
        #expect(warning.message.contains("use a shorter resend: such as 60s"))
        let sink = try #require(compilation.ruleSet?.sinks.first)
        #expect(sink.kind == .alertmanager(AlertmanagerSink(url: "http://am:9093", resendMilliseconds: 300_000)))
    }

    @Test func rulesStillNameSinksOfTheNewTypes() throws {
        let sink = "- sink: hook\n  type: webhook\n  url: https://hooks.example.com/x\n"
        #expect(
            compileText(sink + "- rule: r\n  file: /etc/a\n  then: [{ alert: [hook, hoook] }]\n").diagnostics
                .map(\.description) == [
                    "test.yaml:6:26: error: unknown sink 'hoook'; did you mean 'hook'? (expected one of: hook)"
                ]
        )
        let fixed = compileText(sink + "- rule: r\n  file: /etc/a\n  then: [{ alert: [hook] }]\n")
        #expect(fixed.diagnostics.isEmpty)
        let rule = try #require(fixed.ruleSet?.rules.first)
        guard case .alert(let sinks, _) = rule.actions.first else {
            Issue.record("not an alert action: \(rule.actions)")
            return
        }
        #expect(sinks == ["hook"])
    }
}

@Suite struct SinkErrorTests {
    @Test(
        arguments: [
            (
                "- sink: a\n  type: webhok\n",
                [
                    "test.yaml:2:9: error: sink type 'webhok' is not known; did you mean 'webhook'? (expected one of: stdout, jsonl, syslog, email, webhook, alertmanager)"
                ]
            ),
            (
                "- sink: a\n  url: http://x\n",
                [
                    "test.yaml:1:3: error: sink 'a' has no type:; expected one of: stdout, jsonl, syslog, email, webhook, alertmanager"
                ]
            ),
            (
                "- sink: a\n  type: stdout\n  min_severity: warn\n",
                [
                    "test.yaml:3:17: error: min_severity 'warn' is not known; expected one of: critical, error, warning, info"
                ]
            ),
            (
                "- sink: a\n  type: jsonl\n  path: /var/log/a.jsonl\n  timeout: 5s\n  spool: 1M\n",
                [
                    "test.yaml:4:3: error: 'timeout' applies only to sinks delivered through a spool (syslog, email, webhook, alertmanager); this sink is a jsonl sink, written in place, so remove timeout:",
                    "test.yaml:5:3: error: 'spool' applies only to sinks delivered through a spool (syslog, email, webhook, alertmanager); this sink is a jsonl sink, written in place, so remove spool:",
                ]
            ),
            (
                "- sink: a\n  type: stdout\n  retry: { initial: 1s }\n  heartbeat: 1m\n  colour: red\n",
                [
                    "test.yaml:3:3: error: 'retry' applies only to sinks delivered through a spool (syslog, email, webhook, alertmanager); this sink is a stdout sink, written in place, so remove retry:",
                    "test.yaml:4:3: error: 'heartbeat' applies only to sinks delivered through a spool (syslog, email, webhook, alertmanager); this sink is a stdout sink, written in place, so remove heartbeat:",
                    "test.yaml:5:3: error: unknown key 'colour' in sink 'a'; expected one of: sink, type, min_severity, override",
                ]
            ),
            (
                "- sink: a\n  type: webhook\n  url: http://x\n  digest: 5\n  url_path: /x\n",
                [
                    "test.yaml:4:3: error: 'digest' is a key of email sinks; this sink is a webhook, so remove digest: (or change type:)",
                    "test.yaml:5:3: error: unknown key 'url_path' in sink 'a'; expected one of: sink, type, min_severity, override, timeout, retry, spool, heartbeat, url, headers, secret_file, signature_header",
                ]
            ),
            (
                "- sink: a\n  type: email\n  to: a@b\n  url: http://x\n  path: /x\n",
                [
                    "test.yaml:4:3: error: 'url' is a key of webhook and alertmanager sinks; this sink is an email sink, so remove url: (or change type:)",
                    "test.yaml:5:3: error: 'path' is a key of jsonl sinks; this sink is an email sink, so remove path: (or change type:)",
                ]
            ),
            (
                "- sink: a\n  type: stdout\n  path: /x\n",
                ["test.yaml:3:3: error: 'path' does not apply to stdout sinks; remove it, or use type: jsonl"]
            ),
            (
                "- sink: a\n  type: syslog\n  timeout: 50ms\n",
                [
                    "test.yaml:3:12: error: 'timeout' is 50ms, shorter than the minimum of 100ms; expected a duration from 100ms to 5m"
                ]
            ),
            (
                "- sink: a\n  type: syslog\n  timeout: 6m\n",
                [
                    "test.yaml:3:12: error: 'timeout' is 6m, longer than the maximum of 5m; expected a duration from 100ms to 5m"
                ]
            ),
            (
                "- sink: a\n  type: syslog\n  retry: { initial: 5ms, max: 25h }\n",
                [
                    "test.yaml:3:21: error: 'initial' is 5ms, shorter than the minimum of 10ms; expected a duration of at least 10ms",
                    "test.yaml:3:31: error: 'max' is 25h, longer than the limit of 24h; write a shorter duration",
                ]
            ),
            (
                "- sink: a\n  type: syslog\n  retry: { initial: 10m }\n",
                [
                    "test.yaml:3:21: error: retry max: 5m (the default) is shorter than initial: 10m; raise max: to at least 10m, or lower initial:"
                ]
            ),
            (
                "- sink: a\n  type: syslog\n  retry: { initial: 2s, max: 1s, maximum: 1h }\n",
                [
                    "test.yaml:3:30: error: retry max: 1s is shorter than initial: 2s; raise max: to at least 2s, or lower initial:",
                    "test.yaml:3:34: error: unknown key 'maximum' in retry:; expected one of: initial, max",
                ]
            ),
            (
                "- sink: a\n  type: syslog\n  retry: 5s\n",
                ["test.yaml:3:10: error: 'retry' is a string; expected a map such as { initial: 1s, max: 5m }"]
            ),
            (
                "- sink: a\n  type: syslog\n  spool: 1k\n  heartbeat: 500ms\n",
                [
                    "test.yaml:3:10: error: spool 1k is smaller than the minimum of 64k; expected a size of at least 64k, such as 64M",
                    "test.yaml:4:14: error: 'heartbeat' is 500ms, shorter than the minimum of 1s; expected a duration of at least 1s",
                ]
            ),
            (
                "- sink: a\n  type: syslog\n  spool: 64MB\n",
                [
                    "test.yaml:3:10: error: spool '64MB' is not a size; did you mean '64M'? (expected a number of bytes, or a number followed by k, M or G (1024-based, as in logrotate), such as 64M)"
                ]
            ),
            (
                "- sink: a\n  type: syslog\n  socket: dev/log\n  facility: deamon\n  app_name: \"my app\"\n",
                [
                    "test.yaml:3:11: error: path 'dev/log' is not absolute; write it from the root, such as '/dev/log'",
                    "test.yaml:4:13: error: facility 'deamon' is not known; did you mean 'daemon'? (expected one of: kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0, local1, local2, local3, local4, local5, local6, local7)",
                    "test.yaml:5:13: error: app_name 'my app' has a space; expected 1 to 48 printable ASCII characters without spaces, such as vigil",
                ]
            ),
            (
                "- sink: a\n  type: syslog\n  app_name: \(String(repeating: "a", count: 49))\n",
                [
                    "test.yaml:3:13: error: app_name '\(String(repeating: "a", count: 49))' is 49 characters long; expected 1 to 48 printable ASCII characters without spaces, such as vigil"
                ]
            ),
            (
                "- sink: a\n  type: syslog\n  app_name: vigilé\n",
                [
                    "test.yaml:3:13: error: app_name 'vigilé' has a character that is not printable ASCII; expected 1 to 48 printable ASCII characters without spaces, such as vigil"
                ]
            ),
            (
                "- sink: a\n  type: email\n",
                [
                    "test.yaml:1:3: error: sink 'a' of type email has no to:; add to: ops@example.com (or a list of addresses)"
                ]
            ),
            (
                "- sink: a\n  type: email\n  to: [\"Bob <bob@x.org>\", \"a,b@x\", nobody, x@, \"a b@c\", \"a\\r\\nBcc: e@x\", a@b@c, \"@x\"]\n",
                [
                    "test.yaml:3:8: error: address 'Bob <bob@x.org>' in to: contains '<' (display names and several addresses in one entry are not supported); expected a bare address local@domain such as ops@example.com, one per entry",
                    "test.yaml:3:27: error: address 'a,b@x' in to: contains ',' (display names and several addresses in one entry are not supported); expected a bare address local@domain such as ops@example.com, one per entry",
                    "test.yaml:3:36: error: address 'nobody' in to: has no '@'; expected a bare address local@domain such as ops@example.com, one per entry",
                    "test.yaml:3:44: error: address 'x@' in to: has no domain after the '@'; expected a bare address local@domain such as ops@example.com, one per entry",
                    "test.yaml:3:48: error: address 'a b@c' in to: contains a blank; expected a bare address local@domain such as ops@example.com, one per entry",
                    "test.yaml:3:57: error: address 'a\r\nBcc: e@x' in to: contains a line break or a control character; expected a bare address local@domain such as ops@example.com, one per entry",
                    "test.yaml:3:74: error: address 'a@b@c' in to: has more than one '@'; expected a bare address local@domain such as ops@example.com, one per entry",
                    "test.yaml:3:81: error: address '@x' in to: has nothing before the '@'; expected a bare address local@domain such as ops@example.com, one per entry",
                ]
            ),
            (
                "- sink: a\n  type: email\n  to: []\n  from: [x@y]\n",
                [
                    "test.yaml:3:7: error: 'to' is an empty list; expected at least one entry",
                    "test.yaml:4:9: error: 'from' is a list; expected an e-mail address",
                ]
            ),
            (
                "- sink: a\n  type: email\n  to: a@b\n  from: root\n  sendmail: sendmail\n",
                [
                    "test.yaml:4:9: error: address 'root' in from: has no '@'; expected a bare address local@domain such as ops@example.com, one per entry",
                    "test.yaml:5:13: error: sendmail program 'sendmail' is not an absolute path; write the full path, such as /usr/sbin/sendmail",
                ]
            ),
            (
                "- sink: a\n  type: email\n  to: a@b\n  sendmail: [msmtp, -t]\n",
                [
                    "test.yaml:4:14: error: sendmail program 'msmtp' is not an absolute path; write the full path, such as /usr/sbin/sendmail"
                ]
            ),
            (
                "- sink: a\n  type: email\n  to: a@b\n  sendmail: { path: /usr/sbin/sendmail }\n",
                [
                    "test.yaml:4:13: error: 'sendmail' is a map; expected a program path such as /usr/sbin/sendmail, or a whole command such as [/usr/bin/msmtp, -t, --read-envelope-from]"
                ]
            ),
            (
                "- sink: a\n  type: email\n  to: a@b\n  subject: \"hi\\n{rule}\"\n  body: \"{a-b} {ok}\"\n  digest: 0\n",
                [
                    "test.yaml:4:12: error: 'subject' has a line break; a mail subject is one line, so write it on one line",
                    "test.yaml:5:10: error: field '{a-b}' in body is not a field name; use letters, digits and '_', such as {rule}, or write '{{' for a literal brace",
                    "test.yaml:6:11: error: digest 0 is out of range; expected a whole number from 1 to 1000",
                ]
            ),
            (
                "- sink: a\n  type: email\n  to: a@b\n  body: \"{message\"\n  digest: 1001\n",
                [
                    "test.yaml:4:10: error: unclosed '{' in body; close the field with '}' or write '{{' for a literal brace",
                    "test.yaml:5:11: error: digest 1001 is out of range; expected a whole number from 1 to 1000",
                ]
            ),
            (
                "- sink: a\n  type: webhook\n",
                ["test.yaml:1:3: error: sink 'a' of type webhook has no url:; add url: https://hooks.example.com/vigil"]
            ),
            (
                "- sink: a\n  type: webhook\n  url: ftp://x\n",
                [
                    "test.yaml:3:8: error: url 'ftp://x' is not an http:// or https:// URL; write e.g. https://hooks.example.com/vigil"
                ]
            ),
            (
                "- sink: a\n  type: webhook\n  url: \"http://:80/x\"\n",
                ["test.yaml:3:8: error: url 'http://:80/x' has no host; write e.g. https://hooks.example.com/vigil"]
            ),
            (
                "- sink: a\n  type: webhook\n  url: \"http://h/a b\"\n",
                [
                    "test.yaml:3:8: error: url 'http://h/a b' contains a blank, a line break or a control character (encode a space as %20); write e.g. https://hooks.example.com/vigil"
                ]
            ),
            (
                "- sink: a\n  type: webhook\n  url: http://h:99999/\n",
                [
                    "test.yaml:3:8: error: url 'http://h:99999/' has port '99999', which is not a number from 1 to 65535; write e.g. https://hooks.example.com/vigil"
                ]
            ),
            (
                "- sink: a\n  type: webhook\n  url: http://h\n  headers: { Content-Type: text/plain, X-Vigil-Signature: x, \"Bad Header\": y, X-A: \"a\\nb\", x-a: c, Host: h }\n",
                [
                    "test.yaml:4:14: error: header 'Content-Type' is set by vigil (application/json, the body is the alert's JSON record); remove it",
                    "test.yaml:4:40: error: header 'X-Vigil-Signature' is the signature header, which vigil computes from secret_file:; remove it, or set signature_header: to another name",
                    "test.yaml:4:62: error: header name 'Bad Header' is not a valid HTTP header name; use letters, digits and '-', such as X-Api-Key",
                    "test.yaml:4:84: error: the value of header 'X-A' has a line break or a control character; write it on one line",
                    "test.yaml:4:92: error: header 'x-a' is given twice ('X-A' and 'x-a'; header names ignore case); remove one",
                    "test.yaml:4:100: error: header 'Host' is set by vigil for each request; remove it",
                ]
            ),
            (
                "- sink: a\n  type: webhook\n  url: http://h\n  signature_header: X-Sig\n  headers: { x-sig: v }\n",
                [
                    "test.yaml:5:14: error: header 'x-sig' is the signature header, which vigil computes from secret_file:; remove it, or set signature_header: to another name"
                ]
            ),
            (
                "- sink: a\n  type: webhook\n  url: http://h\n  headers: [a]\n  signature_header: \"X Sig\"\n  secret_file: key\n",
                [
                    "test.yaml:4:12: error: 'headers' is a list; expected a map of header names to values, such as { Authorization: \"Bearer …\" }",
                    "test.yaml:5:21: error: signature_header 'X Sig' is not a header name; use letters, digits and '-', such as X-Vigil-Signature",
                    "test.yaml:6:16: error: path 'key' is not absolute; write it from the root, such as '/key'",
                ]
            ),
            (
                "- sink: a\n  type: webhook\n  url: http://h\n  signature_header: content-type\n",
                [
                    "test.yaml:4:21: error: signature_header 'content-type' is a header vigil sets itself; choose another name, such as X-Vigil-Signature"
                ]
            ),
            (
                "- sink: a\n  type: alertmanager\n",
                ["test.yaml:1:3: error: sink 'a' of type alertmanager has no url:; add url: http://127.0.0.1:9093"]
            ),
            (
                "- sink: a\n  type: alertmanager\n  url: http://am:9093/api/v2/alerts/\n",
                [
                    "test.yaml:3:8: error: url 'http://am:9093/api/v2/alerts/' ends in /api/v2/alerts; give the Alertmanager's base URL only, such as http://127.0.0.1:9093 (vigil posts to its /api/v2/alerts)"
                ]
            ),
            (
                "- sink: a\n  type: alertmanager\n  url: http://am:9093/api/v1/alerts\n",
                [
                    "test.yaml:3:8: error: url 'http://am:9093/api/v1/alerts' ends in /api/v1/alerts; give the Alertmanager's base URL only, such as http://127.0.0.1:9093 (vigil posts to its /api/v2/alerts)"
                ]
            ),
            (
                "- sink: a\n  type: alertmanager\n  url: http://am/x?y=1\n",
                [
                    "test.yaml:3:8: error: url 'http://am/x?y=1' has a query or a fragment; give the Alertmanager's base URL only, such as http://127.0.0.1:9093"
                ]
            ),
            (
                "- sink: a\n  type: alertmanager\n  url: http://am\n  labels: { alertname: x, vigil_rule: y, 1x: z, host: h, severity: s, ok: [1] }\n",
                [
                    "test.yaml:4:13: error: label 'alertname' is set by vigil on every alert (alertname, host, severity and vigil_*); choose another name",
                    "test.yaml:4:27: error: label 'vigil_rule' is set by vigil on every alert (alertname, host, severity and vigil_*); choose another name",
                    "test.yaml:4:42: error: label name '1x' is not a Prometheus label name; use letters, digits and '_', not starting with a digit, such as env",
                    "test.yaml:4:49: error: label 'host' is set by vigil on every alert (alertname, host, severity and vigil_*); choose another name",
                    "test.yaml:4:58: error: label 'severity' is set by vigil on every alert (alertname, host, severity and vigil_*); choose another name",
                    "test.yaml:4:75: error: 'ok' is a list; expected the label's value as a string",
                ]
            ),
            (
                "- sink: a\n  type: alertmanager\n  url: http://am\n  labels: env\n  event_ttl: 500ms\n  resend: 0s\n  generator_url: /runbook\n",
                [
                    "test.yaml:4:11: error: 'labels' is a string; expected a map of label names to values, such as { env: prod }",
                    "test.yaml:5:14: error: 'event_ttl' is 500ms, shorter than the minimum of 1s; expected a duration of at least 1s",
                    "test.yaml:6:11: error: 'resend' is 0s; expected a duration longer than zero, such as 5s",
                    "test.yaml:7:18: error: generator_url '/runbook' is not an http:// or https:// URL; write e.g. https://wiki.example.com/vigil",
                ]
            ),
        ] as [(String, [String])]
    )
    func errorsSayWhatIsWrongAndTheFix(_ text: String, _ expected: [String]) {
        let compilation = compileText(text)
        #expect(compilation.diagnostics.map(\.description) == expected)
        #expect(compilation.ruleSet == nil)
    }

    @Test func everyErrorOfASinkIsReportedAtOnce() {
        let compilation = compileText(
            "- sink: a\n  type: webhook\n  url: ftp://x\n  timeout: 1ms\n  headers: { Host: x }\n  labels: {}\n"
        )
        #expect(compilation.diagnostics.map(\.location.line) == [3, 4, 5, 6])
        #expect(compilation.errorCount == 4)
    }
}

@Suite struct NoiseControlTests {
    @Test func dedupTakesKeyWindowAndMax() throws {
        let rule = try onlyRule(
            "- rule: r\n  file: /etc/a\n  dedup: { key: \"{path}/{change}\", window: 60s, max: 3 }\n"
        )
        #expect(
            rule.dedup
                == NoiseControl(
                    key: try template("{path}/{change}"),
                    windowMilliseconds: 60_000,
                    maximum: 3,
                    location: SourceLocation(file: "test.yaml", line: 3, column: 3)
                )
        )
        #expect(rule.remindMilliseconds == nil)
    }

    @Test func dedupShorthandIsAWindowWithTheDefaultKeyAndMax() throws {
        let rule = try onlyRule("- rule: r\n  file: /etc/a\n  dedup: 500ms\n")
        let dedup = try #require(rule.dedup)
        #expect(dedup.key == (try template("{fingerprint}")))
        #expect(dedup.windowMilliseconds == 500 && dedup.maximum == 1)
        #expect(dedup.location == SourceLocation(file: "test.yaml", line: 3, column: 3))
    }

    @Test func dedupMapDefaults() throws {
        let rule = try onlyRule("- rule: r\n  file: /etc/a\n  dedup: { window: 24h }\n")
        #expect(
            rule.dedup
                == NoiseControl(
                    key: try template("{fingerprint}"),
                    windowMilliseconds: 86_400_000,
                    location: SourceLocation(file: "test.yaml", line: 3, column: 3)
                )
        )
    }

    @Test func aRuleWithoutNoiseControlHasNone() throws {
        let rule = try onlyRule("- rule: r\n  file: /etc/a\n")
        #expect(rule.dedup == nil && rule.remindMilliseconds == nil)
    }

    @Test(
        arguments: [
            "- rule: r\n  config: /etc/a.conf\n  when: { key: a, is: b }\n",
            "- rule: r\n  file: /etc/a\n",
            "- rule: r\n  process: { name: app }\n  expect: running\n",
            "- rule: r\n  log: /var/log/a.log\n  match: 'error (?<code>[0-9]+)'\n",
            "- rule: r\n  file: /etc/a\n  mode: \"0640\"\n",
            "- rule: r\n  rotate: /var/log/a.log\n  size: 1M\n",
        ]
    )
    func everyRuleKindTakesDedup(_ text: String) throws {
        let compilation = compileText(
            text + "  dedup: { key: \"{rule} {host} {kind} {message} {fingerprint}\", window: 1s }\n"
        )
        #expect(compilation.errorCount == 0, "\(compilation.diagnostics)")
        let rule = try #require(compilation.ruleSet?.rules.first)
        #expect(rule.dedup?.windowMilliseconds == 1000)
        #expect(rule.dedup?.key.fieldNames == ["rule", "host", "kind", "message", "fingerprint"])
    }

    @Test func aDedupKeyMayUseTheFieldsOfTheRulesMessage() throws {
        let log = try onlyRule(
            "- rule: r\n  log: /var/log/a.log\n  match: 'denied for (?<user>[a-z]+)'\n  dedup: { key: \"{user}@{path}\", window: 1m }\n"
        )
        #expect(log.dedup?.key.fieldNames == ["user", "path"])
        let process = try onlyRule(
            "- rule: r\n  process: { name: app }\n  on: [exit]\n  dedup: { key: \"{exe} {code}\", window: 1m }\n"
        )
        #expect(process.dedup?.key.fieldNames == ["exe", "code"])
    }

    @Test func remindOnAStateRule() throws {
        let rule = try onlyRule("- rule: r\n  process: { name: app }\n  expect: running\n  remind: 2h\n  dedup: 1s\n")
        #expect(rule.remindMilliseconds == 7_200_000)
        #expect(rule.dedup?.windowMilliseconds == 1000)
    }

    @Test func remindOnAnEventRuleIsAWarningAndTheRuleLoads() throws {
        let compilation = compileText("- rule: r\n  file: /etc/a\n  remind: 1h\n")
        #expect(compilation.errorCount == 0)
        #expect(
            compilation.diagnostics.map(\.description) == [
                "test.yaml:3:3: warning: 'remind' repeats the alerts of state rules while they stay firing, but this is an event rule, which never stays firing; remove remind: (dedup: limits how often event alerts pass)"
            ]
        )
        #expect(compilation.ruleSet?.rules.first?.remindMilliseconds == 3_600_000)
    }

    @Test(
        arguments: [
            (
                "- rule: r\n  file: /etc/a\n  dedup: 5ms\n  remind: 500ms\n",
                [
                    "test.yaml:3:10: error: 'dedup' is 5ms, shorter than the minimum of 10ms; expected a duration of at least 10ms",
                    "test.yaml:4:11: error: 'remind' is 500ms, shorter than the minimum of 1s; expected a duration of at least 1s",
                ]
            ),
            (
                "- rule: r\n  file: /etc/a\n  dedup: 25h\n  remind: soon\n",
                [
                    "test.yaml:3:10: error: 'dedup' is 25h, longer than the limit of 24h; write a shorter duration",
                    "test.yaml:4:11: error: 'remind' is 'soon'; expected a duration such as 5s, 500ms, 2m, 1h, or a whole number of seconds",
                ]
            ),
            (
                "- rule: r\n  file: /etc/a\n  dedup: { key: \"{nope}\", max: 0, windw: 1s }\n",
                [
                    "test.yaml:3:10: error: dedup: has no window:; add window: such as 60s (or write dedup: 60s)",
                    "test.yaml:3:18: error: unknown field '{nope}' in dedup key; expected one of: rule, severity, host, path, file, change, kind, message, fingerprint, tags",
                    "test.yaml:3:32: error: max 0 is out of range; expected a whole number from 1 to 1000000",
                    "test.yaml:3:35: error: unknown key 'windw' in dedup:; did you mean 'window'? (expected one of: key, window, max)",
                ]
            ),
            (
                "- rule: r\n  file: /etc/a\n  dedup: { window: 1s, max: 1000001, key: [a] }\n",
                [
                    "test.yaml:3:29: error: max 1000001 is out of range; expected a whole number from 1 to 1000000",
                    "test.yaml:3:43: error: 'key' is a list; expected a template such as \"{path}\"",
                ]
            ),
            (
                "- rule: r\n  file: /etc/a\n  dedup: { window: 1s, key: \"{path\" }\n",
                [
                    "test.yaml:3:30: error: unclosed '{' in dedup key; close the field with '}' or write '{{' for a literal brace"
                ]
            ),
            (
                "- rule: r\n  process: app\n  expect: running\n  dedup: [1s]\n  remind: {}\n",
                [
                    "test.yaml:4:10: error: 'dedup' is a list; expected a duration such as 60s, or a map such as { key: \"{path}\", window: 60s, max: 1 }",
                    "test.yaml:5:11: error: 'remind' is a map; expected a duration such as 5s, 500ms, 2m, 1h, or a whole number of seconds",
                ]
            ),
        ] as [(String, [String])]
    )
    func errorsSayWhatIsWrongAndTheFix(_ text: String, _ expected: [String]) {
        let compilation = compileText(text)
        #expect(compilation.diagnostics.map(\.description) == expected)
        #expect(compilation.ruleSet == nil)
    }
}
