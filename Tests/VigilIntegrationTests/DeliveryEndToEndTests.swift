import Foundation
import Testing
import VigilHarness
import VigilReceivers
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Issue 6's "Done when", from outside: the built `vigil run` with every kind of sink pointed at real
/// receivers on 127.0.0.1 (aiosmtpd behind Debian's msmtp, a webhook receiver, Debian's Alertmanager, a
/// syslog socket, a JSON Lines file), a burst of 10,000 alerts, the SMTP server down for 30 s in the middle,
/// and vigil killed with SIGKILL and started again: every alert arrives at every sink, checked by id.
@Suite(.serialized) struct DeliveryEndToEndTests {
    /// Every receiver, started in `directory`.
    final class Receivers {
        let directory: String
        let smtp = SMTPServer()
        let webhook = WebhookReceiver()
        let alertmanager = AlertmanagerServer()
        let syslog: SyslogReceiver

        init(directory: String, syslogSocket: String) throws {
            self.directory = directory
            try FileManager.default.createDirectory(atPath: directory + "/smtp", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory + "/hook", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory + "/am", withIntermediateDirectories: true)
            try smtp.start(directory: directory + "/smtp")
            try webhook.start(directory: directory + "/hook")
            try alertmanager.start(directory: directory + "/am")
            syslog = try SyslogReceiver(path: syslogSocket)
        }

        func stop() {
            smtp.stop()
            webhook.stop()
            alertmanager.stop()
            syslog.close()
        }
    }

    /// The sinks, one of each kind, with quick retries so a test does not wait minutes for a backoff.
    static func sinks(_ receivers: Receivers) -> String {
        """
        - sink: file
          type: jsonl
          path: /var/log/vigil/alerts.jsonl
        - sink: syslog
          type: syslog
          socket: /run/syslog.sock
          retry: { initial: 20ms, max: 500ms }
        - sink: mail
          type: email
          to: sre-team@cloudcrest.example
          from: vigil@analytics-prod-03.example
          subject: "[{severity}] {host}: {rule}"
          retry: { initial: 200ms, max: 2s }
        - sink: hook
          type: webhook
          url: \(receivers.webhook.url)/vigil
          secret_file: /etc/vigil/webhook.key
          retry: { initial: 100ms, max: 1s }
        - sink: am
          type: alertmanager
          url: \(receivers.alertmanager.url)
          labels: { env: test }
          retry: { initial: 100ms, max: 1s }

        """
    }

    /// Ids in the JSON Lines file (the reference: the local sink has every alert).
    static func fileIDs(_ path: String, rule: String) -> Set<String> {
        let text = String(decoding: fileBytes(path) ?? [], as: UTF8.self)
        var ids: Set<String> = []
        for line in text.split(separator: "\n") where JSONField.string(String(line), "rule") == rule {
            if let id = JSONField.string(String(line), "id") { ids.insert(id) }
        }
        return ids
    }

    static func webhookIDs(_ receiver: WebhookReceiver) -> Set<String> {
        Set(receiver.requests().compactMap { $0.headers["x-vigil-id"] })
    }

    static func syslogIDs(_ receiver: SyslogReceiver) -> Set<String> {
        var ids: Set<String> = []
        for datagram in receiver.datagrams() {
            guard let start = datagram.range(of: " id=\"") else { continue }
            ids.insert(String(datagram[start.upperBound...].prefix(32)))
        }
        return ids
    }

    static func mailIDs(_ server: SMTPServer) -> Set<String> {
        var ids: Set<String> = []
        for message in server.messages() {
            for line in message.body.split(separator: "\n") where line.hasPrefix("id: ") {
                ids.insert(String(line.dropFirst(4)))
            }
        }
        return ids
    }

    static func alertmanagerIDs(_ server: AlertmanagerServer) -> Set<String> {
        guard let alerts = try? server.alerts() else { return [] }
        return Set(alerts.compactMap { ($0["labels"] as? [String: Any])?["vigil_id"] as? String })
    }

    /// Waits until `ids` reached every sink, or the deadline; returns what each sink is missing. Looks every
    /// 2 s, and only at the sinks still missing some (reading 10,000 records back is work that would
    /// otherwise starve the daemon and the receivers on a 2-core machine).
    static func missing(
        _ ids: Set<String>,
        receivers: Receivers,
        timeoutSeconds: Double
    ) -> [String: Int] {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        let sinks: [(name: String, read: () -> Set<String>)] = [
            ("syslog", { syslogIDs(receivers.syslog) }),
            ("email", { mailIDs(receivers.smtp) }),
            ("webhook", { webhookIDs(receivers.webhook) }),
            ("alertmanager", { alertmanagerIDs(receivers.alertmanager) }),
        ]
        var gaps: [String: Int] = Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, ids.count) })
        while true {
            for sink in sinks where gaps[sink.name] != nil {
                let missing = ids.subtracting(sink.read()).count
                gaps[sink.name] = missing == 0 ? nil : missing
            }
            if gaps.isEmpty || Date() >= deadline { return gaps }
            // The syslog socket is drained meanwhile, as a syslog daemon would, so the sink is not pushed back.
            _ = receivers.syslog.waitForDatagrams(count: Int.max, timeoutSeconds: 2)
        }
    }

    @Test(.enabled(if: VigilBinary.exists && DeliveryEndToEndTests.receiversInstalled))
    func tenThousandAlertsReachEverySinkThroughAnSMTPOutageAndASIGKILL() throws {
        let tree = TempTree("delivery-e2e")
        defer { tree.remove() }
        tree.makeDirectory("var/log")
        tree.makeDirectory("run")
        tree.makeDirectory("etc/vigil")
        tree.write("etc/vigil/webhook.key", "s3cret-shared-key\n", mode: 0o600)
        tree.write("var/log/jobs.log", "")
        let receivers = try Receivers(directory: tree.path("receivers"), syslogSocket: tree.path("run/syslog.sock"))
        defer { receivers.stop() }
        // The host's sendmail interface, as on a server: /usr/sbin/sendmail (inside the root), here msmtp
        // pointed at the test's SMTP server.
        tree.makeDirectory("usr/sbin")
        try MSMTP.installSendmail(
            at: tree.path("usr/sbin/sendmail"),
            directory: receivers.directory + "/smtp",
            port: receivers.smtp.port
        )
        tree.makeDirectory("rules")
        tree.write("rules/delivery.yaml", Self.sinks(receivers) + JobLog.rule)
        let arguments = ["--rules", tree.path("rules"), "--root", tree.root, "--no-process-rules"]
        var vigil = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: arguments,
            workDirectory: tree.path("run")
        )
        let writer = AppendLog(tree.path("var/log/jobs.log"))
        let alerts = tree.path("var/log/vigil/alerts.jsonl")

        // 3,000 with every sink up, then the SMTP server goes away.
        writer.append(jobs: 0..<3000)
        #expect(Self.waitForFile(alerts, count: 3000, rule: "job-failed"))
        let outage = Date()
        receivers.smtp.stop()
        // 4,000 more while it is down, then vigil is killed outright and started again.
        writer.append(jobs: 3000..<7000)
        _ = Self.waitForFile(alerts, count: 5000, rule: "job-failed")
        vigil.process.signal(SIGKILL)
        _ = vigil.process.wait(timeoutMilliseconds: 5000)
        vigil = try DaemonProcess(executable: VigilBinary.path, arguments: arguments, workDirectory: tree.path("run"))
        defer { vigil.stop() }
        writer.append(jobs: 7000..<10_000)
        #expect(Self.waitForFile(alerts, count: 10_000, rule: "job-failed"), "\(vigil.log().suffix(2000))")
        // The SMTP server comes back 30 s after it went away.
        let down = Date().timeIntervalSince(outage)
        if down < 30 { _ = poll(nil, 0, CInt((30 - down) * 1000)) }
        try receivers.smtp.restart()

        let ids = Self.fileIDs(alerts, rule: "job-failed")
        #expect(ids.count == 10_000, "the JSON Lines file has \(ids.count) distinct alerts of 10,000")
        let gaps = Self.missing(ids, receivers: receivers, timeoutSeconds: 180)
        #expect(gaps.isEmpty, "alerts missing per sink: \(gaps); vigil's log: \(vigil.log().suffix(3000))")
        // The outage was seen and reported on the other sinks, and cleared.
        let health = String(decoding: fileBytes(alerts) ?? [], as: UTF8.self).split(separator: "\n")
            .filter { JSONField.string(String($0), "kind") == "vigil.sink_failing" }
        #expect(health.contains { JSONField.string(String($0), "state") == "firing" }, "no sink_failing alert")
        #expect(health.contains { JSONField.string(String($0), "state") == "resolved" }, "sink_failing never resolved")
        // Signed webhooks: the signature is HMAC-SHA256 of the body with the shared key.
        let request = try #require(receivers.webhook.requests().first)
        let signature = request.headers["x-vigil-signature"] ?? ""
        #expect(
            signature == "sha256="
                + HMAC.hex(HMAC.sha256(key: Array("s3cret-shared-key".utf8), message: Array(request.body.utf8)))
        )
    }

    /// Waits until the JSON Lines file holds `count` distinct alerts of `rule`.
    static func waitForFile(_ path: String, count: Int, rule: String, timeoutSeconds: Double = 120) -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            if fileIDs(path, rule: rule).count >= count { return true }
            _ = poll(nil, 0, 50)
        }
        return false
    }

    static let receiversInstalled: Bool =
        access("/usr/bin/msmtp", X_OK) == 0 && access("/usr/bin/prometheus-alertmanager", X_OK) == 0
}

/// Appends job lines to the log in large writes, as a busy service would.
struct AppendLog {
    let path: String
    init(_ path: String) { self.path = path }

    func append(jobs: Range<Int>) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        precondition(fd >= 0, "cannot open \(path)")
        defer { close(fd) }
        var chunk = ""
        for job in jobs {
            chunk += JobLog.line(job)
            if chunk.utf8.count > 60_000 {
                _ = chunk.withCString { write(fd, $0, strlen($0)) }
                chunk = ""
            }
        }
        _ = chunk.withCString { write(fd, $0, strlen($0)) }
    }
}
