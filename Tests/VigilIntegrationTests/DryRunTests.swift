import Foundation
import Testing
import VigilHarness
import VigilReceivers
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `vigil run --dry-run`, from outside: on a root where a mode rule, an owner rule, a sanitize rule, a
/// rotation past its size and two process rules (restart by command, reload by SIGHUP to another process) all have something
/// to do, each action is reported on stdout with its `dry_run` text, and afterwards the host is as it was:
/// modes, owners, the secret, the log, no marker, the signalled process alive, no sink file, no webhook
/// request, nothing new in the state directory. The same rules without `--dry-run` do act.
@Suite(
    .serialized,
    .enabled(
        if: VigilBinary.exists && getuid() == 0 && access("/usr/bin/python3", X_OK) == 0,
        "needs root (chown, the proc connector), python3 (the webhook receiver) and the built binary"
    ),
    .timeLimit(.minutes(2))
)
struct DryRunTests {
    static let secretLine =
        "2025-04-13 07:20:01 UPLOAD ERROR [DBPool] connection refused: password=Hunter2! user=analytics\n"

    /// The sandbox: accounts, drifted files, a log with a secret, a log over its size, the stand-in
    /// programs and the action scripts (each writes a marker file when it runs).
    static func makeTree(_ label: String, webhook: WebhookReceiver) -> TempTree {
        let tree = TempTree(label)
        tree.makeDirectory("etc/analytics")
        tree.write("etc/passwd", "root:x:0:0::/root:/bin/sh\nanalytics:x:1001:1001::/:/bin/sh\n")
        tree.write("etc/group", "root:x:0:\nanalytics:x:1001:\n")
        tree.write("etc/analytics/upload-service.conf", "endpoint = https://upload.example\n", mode: 0o640)
        tree.write("etc/analytics/owned.conf", "retention = 30d\n", mode: 0o640)
        chown(tree.path("etc/analytics/owned.conf"), 0, 0)
        tree.makeDirectory("var/log/analytics")
        tree.write("var/log/analytics/upload.log", secretLine, mode: 0o640)
        let line = "2025-04-13 07:20:00 UPLOAD INFO [Uploader] batch uploaded 512 records in 143 ms\n"
        tree.write("var/log/app.log", String(repeating: line, count: 30_000), mode: 0o640)
        // A rotation left uncompressed by an earlier run: compressed at start-up.
        tree.write("var/log/app.log-20261120", line, mode: 0o640)
        tree.makeDirectory("var/lib/vigil", mode: 0o700)
        tree.makeDirectory("run")
        try? StandIn.install("/bin/sleep", at: tree.path("usr/local/bin/vq-dry-restart"))
        try? StandIn.install("/bin/sleep", at: tree.path("usr/local/bin/vq-dry-hup"))
        try? StandIn.install("/bin/sleep", at: tree.path("usr/local/bin/vq-dry-trig"))
        try? StandIn.install("/bin/sleep", at: tree.path("usr/local/bin/vq-dry-cookie"))
        tree.write("usr/local/bin/restart-upload", "#!/bin/sh\ntouch \(tree.path("restart.marker"))\n", mode: 0o755)
        tree.write("usr/local/bin/reopen-app", "#!/bin/sh\ntouch \(tree.path("postrotate.marker"))\n", mode: 0o755)
        tree.write(
            "rules.yaml",
            """
            - sink: file
              type: jsonl
              path: /var/log/vigil/alerts.jsonl
            - sink: hook
              type: webhook
              url: \(webhook.url)/vigil
              retry: { initial: 100ms, max: 1s }
            - rule: upload-config-mode
              file: /etc/analytics/upload-service.conf
              mode: "0640"
              then: [alert, chmod]
            - rule: owned-config-owner
              file: /etc/analytics/owned.conf
              owner: analytics
              group: analytics
              then: [alert, chown]
            - rule: mask-secrets
              severity: info
              log: /var/log/analytics/upload.log
              from: start
              then:
                - sanitize: { copy_to: /var/log/analytics/sanitized }
            - rule: rotate-app
              rotate: /var/log/app*.log
              size: 1M
              compress: true
              postrotate: { command: [/usr/local/bin/reopen-app] }
            - rule: restart-upload
              process: { name: vq-dry-restart }
              on: [exit]
              then:
                - alert
                - restart: { command: [/usr/local/bin/restart-upload] }
            - rule: reload-on-hup
              process: { name: vq-dry-trig }
              on: [exit]
              then:
                - alert
                - reload: { signal: HUP, to: { name: vq-dry-hup } }
            - rule: process-cookie
              severity: info
              process: { name: vq-dry-cookie }
              on: [exec]

            """
        )
        return tree
    }

    static func stat(_ path: String) -> (mode: UInt32, uid: UInt32, gid: UInt32, size: Int64)? {
        var info = Glibc.stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (UInt32(info.st_mode) & 0o7777, UInt32(info.st_uid), UInt32(info.st_gid), Int64(info.st_size))
    }

    /// The programs of the process rules: `vq-dry-hup` (the SIGHUP target) runs on; `vq-dry-restart` and
    /// `vq-dry-trig` end once Vigil has seen them start (a cookie program's exec alert, after theirs in the
    /// proc connector's order), so their exits fire the restart and the reload. Lines read are kept.
    static func startPrograms(
        _ tree: TempTree,
        _ follower: LineFollower,
        lines: inout [String]
    ) throws -> (restartTarget: ChildProcess, hupTarget: ChildProcess) {
        let restartTarget = try ChildProcess(executable: tree.path("usr/local/bin/vq-dry-restart"), arguments: ["60"])
        let hupTarget = try ChildProcess(executable: tree.path("usr/local/bin/vq-dry-hup"), arguments: ["60"])
        let trigger = try ChildProcess(executable: tree.path("usr/local/bin/vq-dry-trig"), arguments: ["60"])
        let cookie = try ChildProcess(executable: tree.path("usr/local/bin/vq-dry-cookie"), arguments: ["60"])
        defer { cookie.terminate(graceMilliseconds: 1000) }
        var seen = false
        while !seen, let line = follower.next(timeoutMilliseconds: 15_000)?.line {
            lines.append(line)
            seen = JSONField.string(line, "rule") == "process-cookie"
        }
        #expect(seen, "the cookie program's exec was not alerted: \(lines)")
        restartTarget.signal(SIGTERM)
        trigger.signal(SIGTERM)
        _ = restartTarget.wait(timeoutMilliseconds: 5000)
        _ = trigger.wait(timeoutMilliseconds: 5000)
        return (restartTarget, hupTarget)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func names(in directory: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory))?.sorted() ?? []
    }

    @Test func everyActionIsReportedAndNothingOnTheHostChanges() throws {
        let webhook = WebhookReceiver()
        let hookDirectory = TempDirectory("dryrun-hook")
        defer {
            webhook.stop()
            hookDirectory.remove()
        }
        try webhook.start(directory: hookDirectory.path)
        let tree = Self.makeTree("dryrun", webhook: webhook)
        defer { tree.remove() }
        let stdout = tree.path("run/stdout.jsonl")
        let follower = try LineFollower(path: stdout)
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules.yaml"), "--root", tree.root, "--dry-run"],
            workDirectory: tree.path("run"),
            standardOutput: stdout
        )
        var stopped = false
        defer { if !stopped { daemon.stop() } }

        // Drift after start-up: a mode change, and programs that end.
        chmod(tree.path("etc/analytics/upload-service.conf"), 0o666)
        var lines: [String] = []
        let (restartTarget, hupTarget) = try Self.startPrograms(tree, follower, lines: &lines)
        defer {
            restartTarget.terminate(graceMilliseconds: 1000)
            hupTarget.terminate(graceMilliseconds: 1000)
        }

        let expected: [(rule: String, text: String)] = [
            ("upload-config-mode", "would chmod 0640 /etc/analytics/upload-service.conf (now 0666)"),
            ("owned-config-owner", "would chown analytics:analytics /etc/analytics/owned.conf (now root:root)"),
            ("mask-secrets", "would mask 1 secret (8 bytes) in /var/log/analytics/upload.log at offset 0"),
            ("rotate-app", "would rotate /var/log/app.log (size "),
            ("rotate-app", "would gzip /var/log/app.log-20261120 to app.log-20261120.gz"),
            ("restart-upload", "would run /usr/local/bin/restart-upload (argv /usr/local/bin/restart-upload)"),
            ("reload-on-hup", "would send SIGHUP to pid \(hupTarget.pid) (vq-dry-hup)"),
        ]
        var found: [Int: String] = [:]
        func note(_ line: String) {
            guard let text = JSONField.label(line, "dry_run"), let rule = JSONField.string(line, "rule") else {
                return
            }
            if let index = expected.firstIndex(where: { $0.rule == rule && text.contains($0.text) }) {
                found[index] = text
            }
        }
        for line in lines { note(line) }
        while found.count < expected.count, let line = follower.next(timeoutMilliseconds: 15_000)?.line {
            lines.append(line)
            note(line)
        }
        for (index, item) in expected.enumerated() {
            #expect(found[index] != nil, "\(item.rule): \(item.text)\n\(lines)\n\(daemon.log())")
        }
        let rotation = found[3] ?? ""
        #expect(rotation.contains("≥ 1 MiB) to /var/log/app.log-") && rotation.contains("and gzip it"), "\(rotation)")
        #expect(rotation.contains("postrotate: would run '/usr/local/bin/reopen-app'"), "\(rotation)")

        // A log still over its size is not reported again on its next write: app.log grows, then app2.log
        // passes its size; the rotation watcher handles events in order, so app2.log's report comes after
        // whatever app.log's write caused.
        let append = open(tree.path("var/log/app.log"), O_WRONLY | O_APPEND | O_CLOEXEC)
        #expect(append >= 0 && write(append, "one more line\n", 14) == 14)
        close(append)
        let appLogSize = Self.stat(tree.path("var/log/app.log"))?.size
        tree.write("var/log/app2.log", String(repeating: "x", count: 1_200_000) + "\n")
        var second: String?
        while second == nil, let line = follower.next(timeoutMilliseconds: 15_000)?.line {
            lines.append(line)
            if let text = JSONField.label(line, "dry_run"), text.contains("would rotate /var/log/app2.log") {
                second = text
            }
        }
        #expect(second != nil, "\(lines)")
        let appReports = lines.filter { JSONField.label($0, "dry_run")?.contains("rotate /var/log/app.log ") == true }
        #expect(appReports.count == 1, "\(appReports)")

        // The signal would have been sent when its report was written: the process is still running.
        #expect(hupTarget.wait(timeoutMilliseconds: 200) == nil, "the SIGHUP target exited")
        let log = daemon.log()
        #expect(daemon.stop() == 0, "\(log)")
        stopped = true

        #expect(log.contains("Dry run: nothing on the host is changed"), "\(log)")
        #expect(
            log.contains(
                "sinks left out: file (JSON Lines /var/log/vigil/alerts.jsonl), hook (webhook \(webhook.url)/vigil)"
            ),
            "\(log)"
        )
        #expect(log.contains("Dry run: rule 'upload-config-mode' would chmod 0640"), "\(log)")
        let capabilities = log.split(separator: "\n").first { $0.contains("Capabilities kept:") }.map(String.init) ?? ""
        for dropped in ["CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE", "CAP_KILL"] {
            #expect(!capabilities.contains(dropped), "\(capabilities)")
        }
        // Reported once: the file stays 0666, and the report is not repeated on the events it causes.
        #expect(lines.filter { JSONField.string($0, "rule") == "upload-config-mode" }.count == 1, "\(lines)")

        // Nothing on the host changed.
        #expect(Self.stat(tree.path("etc/analytics/upload-service.conf"))?.mode == 0o666)
        let owned = Self.stat(tree.path("etc/analytics/owned.conf"))
        #expect(owned?.uid == 0 && owned?.gid == 0)
        let upload = String(decoding: fileBytes(tree.path("var/log/analytics/upload.log")) ?? [], as: UTF8.self)
        #expect(upload == Self.secretLine)
        #expect(!Self.exists(tree.path("var/log/analytics/sanitized")))
        #expect(Self.stat(tree.path("var/log/app.log"))?.size == appLogSize)
        #expect(Self.names(in: tree.path("var/log")) == ["analytics", "app.log", "app.log-20261120", "app2.log"])
        #expect(!Self.exists(tree.path("restart.marker")))
        #expect(!Self.exists(tree.path("postrotate.marker")))
        #expect(!Self.exists(tree.path("var/log/vigil/alerts.jsonl")))
        #expect(webhook.requests().isEmpty)
        #expect(Self.names(in: tree.path("var/lib/vigil")).isEmpty)
    }

    /// The same rules without `--dry-run` act: so the dry run's test cannot pass because nothing works.
    @Test func withoutDryRunTheSameRulesAct() throws {
        let webhook = WebhookReceiver()
        let hookDirectory = TempDirectory("dryrun-real-hook")
        defer {
            webhook.stop()
            hookDirectory.remove()
        }
        try webhook.start(directory: hookDirectory.path)
        let tree = Self.makeTree("dryrun-real", webhook: webhook)
        defer { tree.remove() }
        tree.makeDirectory("var/log/vigil")
        let follower = try LineFollower(path: tree.path("var/log/vigil/alerts.jsonl"))
        let daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: ["--rules", tree.path("rules.yaml"), "--root", tree.root],
            workDirectory: tree.path("run"),
            standardOutput: tree.path("run/stdout.jsonl")
        )
        defer { daemon.stop() }
        chmod(tree.path("etc/analytics/upload-service.conf"), 0o666)
        var lines: [String] = []
        let (restartTarget, hupTarget) = try Self.startPrograms(tree, follower, lines: &lines)
        defer {
            restartTarget.terminate(graceMilliseconds: 1000)
            hupTarget.terminate(graceMilliseconds: 1000)
        }
        func isRestored(_ line: String) -> Bool {
            JSONField.string(line, "kind") == "file.permissions_restored"
                && JSONField.string(line, "path") == "/etc/analytics/upload-service.conf"
        }
        var restored = lines.contains(where: isRestored)
        while !restored, let line = follower.next(timeoutMilliseconds: 15_000)?.line {
            lines.append(line)
            restored = isRestored(line)
        }
        for line in lines { #expect(JSONField.label(line, "dry_run") == nil, "\(line)") }
        #expect(restored, "\(daemon.log())")
        #expect(Self.stat(tree.path("etc/analytics/upload-service.conf"))?.mode == 0o640)
        let status = hupTarget.wait(timeoutMilliseconds: 15_000)
        #expect(status.map { $0 & 0x7f } == SIGHUP, "\(String(describing: status))")
        // The commands write their markers after the alerts: wait for each on inotify, with a deadline.
        waitForFile(tree.path("restart.marker"), timeoutMilliseconds: 15_000)
        waitForFile(tree.path("postrotate.marker"), timeoutMilliseconds: 15_000)
        #expect(Self.exists(tree.path("restart.marker")), "\(daemon.log())")
        #expect(Self.exists(tree.path("postrotate.marker")), "\(daemon.log())")
        #expect(Self.stat(tree.path("etc/analytics/owned.conf"))?.uid == 1001)
        let upload = String(decoding: fileBytes(tree.path("var/log/analytics/upload.log")) ?? [], as: UTF8.self)
        #expect(upload.contains("password=******** "), "\(upload)")
    }
}
