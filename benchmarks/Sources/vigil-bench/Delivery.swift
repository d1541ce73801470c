import Foundation
import VigilCore
import VigilHarness
import VigilReceivers
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Alert delivery (issue 6): an appended log line → the alert at each remote receiver, on 127.0.0.1, with
/// `vigil run` (release) feeding every kind of sink at once:
/// - syslog: RFC 5424 datagrams to a socket this harness reads (the arrival is when its `poll` returns);
/// - e-mail: `/usr/sbin/sendmail` (inside the sandbox root) → Debian's msmtp → an aiosmtpd server, which
///   stamps each message when it has it whole;
/// - webhook: a Python HTTP server, which stamps each request when it has read it whole;
/// - Alertmanager: Debian's prometheus-alertmanager; the arrival is the alert's `updatedAt` (milliseconds).
/// Trials are sequential (one alert in flight), so each figure is one alert's path, not a queue's. Then a
/// burst: `burst` alerts appended at once, and the time until each receiver has every one, checked by id.
struct DeliveryResult {
    /// Latency samples per sink, nanoseconds.
    var latencies: [String: [UInt64]] = [:]
    /// The one-shot peers (a command spawned per alert, as the seed's `mail -s` is): samples per sink.
    var peerLatencies: [String: [UInt64]] = [:]
    var trials = 0
    /// Burst: alerts, and per sink the time until the last one arrived (nil: not all arrived).
    var burst = 0
    var burstNanoseconds: [String: UInt64?] = [:]
    var burstMissing: [String: Int] = [:]
    var failures: [String] = []

    static let sinks = ["syslog", "email", "webhook", "alertmanager"]

    var detectedEverything: Bool {
        failures.isEmpty && Self.sinks.allSatisfy { latencies[$0, default: []].count == trials }
            && burstMissing.values.allSatisfy { $0 == 0 }
    }
}

enum DeliveryBench {

    static func run(vigil: String, trials: Int, burst: Int) -> DeliveryResult {
        var result = DeliveryResult()
        let base = (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp") + "/vigil-bench-delivery-\(getpid())"
        let root = base + "/root"
        defer { FileTree.remove(base) }
        for directory in ["/smtp", "/hook", "/am", "/root/var/log", "/root/run", "/root/usr/sbin", "/rules"] {
            FileTree.makeDirectories(base + directory, mode: 0o755)
        }
        let smtp = SMTPServer()
        let webhook = WebhookReceiver()
        let alertmanager = AlertmanagerServer()
        defer {
            smtp.stop()
            webhook.stop()
            alertmanager.stop()
        }
        let syslog: SyslogReceiver
        do {
            try smtp.start(directory: base + "/smtp")
            try webhook.start(directory: base + "/hook")
            try alertmanager.start(directory: base + "/am")
            syslog = try SyslogReceiver(path: root + "/run/syslog.sock")
            try MSMTP.installSendmail(at: root + "/usr/sbin/sendmail", directory: base + "/smtp", port: smtp.port)
            let rules = """
                - sink: syslog
                  type: syslog
                  socket: /run/syslog.sock
                  retry: { initial: 10ms, max: 200ms }
                - sink: mail
                  type: email
                  to: sre-team@cloudcrest.example
                  retry: { initial: 100ms, max: 1s }
                - sink: hook
                  type: webhook
                  url: \(webhook.url)/vigil
                  retry: { initial: 50ms, max: 500ms }
                - sink: am
                  type: alertmanager
                  url: \(alertmanager.url)
                  retry: { initial: 50ms, max: 500ms }

                """ + JobLog.rule
            try rules.write(toFile: base + "/rules/delivery.yaml", atomically: true, encoding: .utf8)
            try "".write(toFile: root + "/var/log/jobs.log", atomically: false, encoding: .utf8)
        } catch {
            result.failures.append("setting up the receivers: \(error)")
            return result
        }
        defer { syslog.close() }
        let daemon: DaemonProcess
        do {
            daemon = try DaemonProcess(
                executable: vigil,
                arguments: [
                    "--rules", base + "/rules", "--root", root, "--no-process-rules", "--alerts",
                    base + "/alerts.jsonl",
                ],
                workDirectory: base
            )
        } catch {
            result.failures.append("starting vigil: \(error)")
            return result
        }
        defer { daemon.stop() }
        let log = open(root + "/var/log/jobs.log", O_WRONLY | O_APPEND | O_CLOEXEC)
        defer { close(log) }

        // Sequential trials: one alert in flight; each sink's arrival minus the write's time.
        result.trials = trials
        for trial in 0..<trials {
            let message = JobLog.message(trial)
            // Counted before the write: a datagram can arrive before this thread looks again.
            var seen = syslog.datagrams().count
            let written = realtimeNanoseconds()
            appendLine(log, JobLog.line(trial))
            // syslog first: it is the fastest, and this thread's poll is its receiver.
            var syslogAt: Int64?
            let deadline = Clock.monotonicNanoseconds() + 10_000_000_000
            while syslogAt == nil && Clock.monotonicNanoseconds() < deadline {
                _ = syslog.waitForDatagrams(count: seen + 1, timeoutSeconds: 1)
                let now = realtimeNanoseconds()
                let all = syslog.datagrams()
                if all.dropFirst(seen).contains(where: { $0.hasSuffix(message) }) { syslogAt = now }
                seen = all.count
            }
            // Each receiver gets its own 10 s.
            let later = { Clock.monotonicNanoseconds() + 10_000_000_000 }
            let webhookAt = waitFor(later()) {
                webhook.requests().last { $0.body.contains("\"message\":\"\(message)\"") }?.receivedNanoseconds
            }
            let mailAt = waitFor(later()) {
                smtp.messages().last { $0.body.contains(message) }?.receivedNanoseconds
            }
            let amAt = waitFor(later()) { updatedAt(alertmanager, summary: message) }
            for (sink, at) in [("syslog", syslogAt), ("email", mailAt), ("webhook", webhookAt), ("alertmanager", amAt)]
            {
                guard let at else {
                    result.failures.append(
                        "trial \(trial): no alert at \(sink) within 10 s"
                            + (result.failures.isEmpty
                                ? "; in the JSON Lines file: \((ProcFile.readText(base + "/alerts.jsonl", limit: 64 << 20) ?? "").contains("\"\(message)\"")); vigil's log: \(daemon.log().suffix(1500))"
                                : "")
                    )
                    continue
                }
                // Alertmanager stamps milliseconds: a sub-millisecond arrival can read as before the write.
                result.latencies[sink, default: []].append(UInt64(max(0, at - written)))
            }
        }

        runPeers(
            trials: max(1, trials / 2),
            root: root,
            syslog: syslog,
            smtp: smtp,
            webhook: webhook,
            alertmanager: alertmanager,
            into: &result
        )

        // The burst: every alert appended at once; when has each receiver every one of them?
        guard burst > 0 else { return result }
        result.burst = burst
        let first = trials
        var text = ""
        for job in first..<(first + burst) {
            text += JobLog.line(job)
        }
        // Counted before the burst is written: vigil delivers its first alerts within a millisecond, and a
        // count taken after the write skipped them (the 'missing' datagrams of earlier runs were these).
        var syslogRead = syslog.datagrams().count
        let start = realtimeNanoseconds()
        appendLine(log, text)
        let wanted = Set((first..<(first + burst)).map { JobLog.message($0) })
        // 30 ms an alert, at least 30 s: 300 s for the reference run's 10,000, 30 s for the quick run's.
        let deadline = Clock.monotonicNanoseconds() + UInt64(max(30, burst * 30 / 1_000)) * 1_000_000_000
        var pending: [String: Set<String>] = Dictionary(uniqueKeysWithValues: DeliveryResult.sinks.map { ($0, wanted) })
        var round = 0
        while !pending.values.allSatisfy(\.isEmpty) && Clock.monotonicNanoseconds() < deadline {
            // Every 20 ms for the syslog socket (this thread is its reader); the others, whose receivers
            // stamp their own arrival times, every 100 ms; Alertmanager's whole list every 200 ms.
            _ = syslog.waitForDatagrams(count: Int.max, timeoutSeconds: 0.02)
            round += 1
            let now = realtimeNanoseconds()
            if !pending["syslog", default: []].isEmpty {
                let all = syslog.datagrams()
                for datagram in all[min(syslogRead, all.count)...] {
                    guard let range = datagram.range(of: "] ") else { continue }
                    pending["syslog"]?.remove(String(datagram[range.upperBound...]))
                }
                syslogRead = all.count
                if pending["syslog"]!.isEmpty { result.burstNanoseconds["syslog"] = UInt64(now - start) }
            }
            if round % 5 != 0 { continue }
            if !pending["webhook", default: []].isEmpty {
                let requests = webhook.requests()
                for request in requests {
                    if let value = JSONField.string(request.body, "message") { pending["webhook"]?.remove(value) }
                }
                if pending["webhook"]!.isEmpty {
                    result.burstNanoseconds["webhook"] = UInt64(
                        max(0, (requests.map(\.receivedNanoseconds).max() ?? now) - start)
                    )
                }
            }
            if !pending["email", default: []].isEmpty {
                let messages = smtp.messages()
                for message in messages {
                    for line in message.body.split(separator: "\n") where line.hasPrefix("job ") {
                        pending["email"]?.remove(String(line))
                    }
                }
                if pending["email"]!.isEmpty {
                    result.burstNanoseconds["email"] = UInt64(
                        max(0, (messages.map(\.receivedNanoseconds).max() ?? now) - start)
                    )
                }
            }
            if round % 10 == 0, !pending["alertmanager", default: []].isEmpty, let alerts = try? alertmanager.alerts() {
                for alert in alerts {
                    if let summary = (alert["annotations"] as? [String: Any])?["summary"] as? String {
                        pending["alertmanager"]?.remove(summary)
                    }
                }
                if pending["alertmanager"]!.isEmpty { result.burstNanoseconds["alertmanager"] = UInt64(now - start) }
            }
        }
        for (sink, left) in pending {
            result.burstMissing[sink] = left.count
            if !left.isEmpty { result.burstNanoseconds[sink] = .some(nil) }
        }
        return result
    }

    /// The peers: what a script does per alert, one command spawned each time, to the same receivers:
    /// `logger --rfc5424 -u SOCKET`, the sandbox's `sendmail -t -oi` (what `mail -s` runs), `curl -X POST`
    /// of a JSON body to the webhook and to Alertmanager's `/api/v2/alerts`. Timed from just before the
    /// spawn to the receiver's arrival, like vigil's figures from the log write.
    static func runPeers(
        trials: Int,
        root: String,
        syslog: SyslogReceiver,
        smtp: SMTPServer,
        webhook: WebhookReceiver,
        alertmanager: AlertmanagerServer,
        into result: inout DeliveryResult
    ) {
        let socket = root + "/run/syslog.sock"
        for trial in 0..<trials {
            let message = "peer \(trial) failed"
            let deadline = { Clock.monotonicNanoseconds() + 10_000_000_000 }
            // syslog
            var seen = syslog.datagrams().count
            var start = realtimeNanoseconds()
            spawnQuietly("/usr/bin/logger", ["--rfc5424", "-u", socket, "-p", "daemon.err", "-t", "vigil", message])
            var arrival: Int64?
            let syslogDeadline = deadline()
            while arrival == nil && Clock.monotonicNanoseconds() < syslogDeadline {
                _ = syslog.waitForDatagrams(count: seen + 1, timeoutSeconds: 1)
                let now = realtimeNanoseconds()
                let all = syslog.datagrams()
                if all.dropFirst(seen).contains(where: { $0.hasSuffix(message) }) { arrival = now }
                seen = all.count
            }
            record("syslog", start, arrival, &result)
            // e-mail: the message on sendmail's standard input, as `mail -s` hands it over
            start = realtimeNanoseconds()
            let mail = Array(
                "To: sre-team@cloudcrest.example\nSubject: CloudCrest Alert: \(message)\n\n\(message)\n".utf8
            )
            if let child = try? Spawn.startFeeding(root + "/usr/sbin/sendmail", arguments: ["-t", "-oi"]) {
                _ = Spawn.communicate(child, input: mail, errorLimit: 300, timeoutMilliseconds: 10_000)
            }
            record(
                "email",
                start,
                waitFor(deadline()) { smtp.messages().last { $0.body.contains(message) }?.receivedNanoseconds },
                &result
            )
            // webhook
            start = realtimeNanoseconds()
            spawnQuietly(
                "/usr/bin/curl",
                [
                    "-s", "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                    "{\"message\":\"\(message)\"}", webhook.url + "/peer",
                ]
            )
            record(
                "webhook",
                start,
                waitFor(deadline()) {
                    webhook.requests().last { $0.body.contains("\"message\":\"\(message)\"") }?.receivedNanoseconds
                },
                &result
            )
            // Alertmanager
            start = realtimeNanoseconds()
            spawnQuietly(
                "/usr/bin/curl",
                [
                    "-s", "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                    "[{\"labels\":{\"alertname\":\"peer\",\"n\":\"\(trial)\"},\"annotations\":{\"summary\":\"\(message)\"}}]",
                    alertmanager.url + "/api/v2/alerts",
                ]
            )
            record("alertmanager", start, waitFor(deadline()) { updatedAt(alertmanager, summary: message) }, &result)
        }
    }

    static func record(_ sink: String, _ start: Int64, _ arrival: Int64?, _ result: inout DeliveryResult) {
        guard let arrival else {
            result.failures.append("peer for \(sink): nothing arrived within 10 s")
            return
        }
        result.peerLatencies[sink, default: []].append(UInt64(max(0, arrival - start)))
    }

    /// Runs a peer command to its end, output discarded.
    static func spawnQuietly(_ program: String, _ arguments: [String]) {
        guard let pid = try? Spawn.start(program, arguments: arguments, streams: .null) else { return }
        _ = try? Spawn.wait(pid)
    }

    /// Alertmanager's `updatedAt` of the alert whose summary is `summary`, as Unix nanoseconds.
    static func updatedAt(_ server: AlertmanagerServer, summary: String) -> Int64? {
        guard let alerts = try? server.alerts() else { return nil }
        for alert in alerts {
            guard let annotations = alert["annotations"] as? [String: Any],
                annotations["summary"] as? String == summary,
                let updated = alert["updatedAt"] as? String,
                let time = RFC3339.parse(updated)
            else { continue }
            return time.seconds * 1_000_000_000 + Int64(time.nanoseconds)
        }
        return nil
    }

    /// Polls `probe` (every 20 ms: the receivers stamp their own arrival times, so polling faster would only
    /// load the machine) until it gives a value or `deadline` (monotonic) passes.
    static func waitFor(_ deadline: UInt64, _ probe: () -> Int64?) -> Int64? {
        while Clock.monotonicNanoseconds() < deadline {
            if let value = probe() { return value }
            _ = poll(nil, 0, 20)
        }
        return nil
    }

    static func realtimeNanoseconds() -> Int64 {
        let now = Clock.realtime()
        return now.seconds * 1_000_000_000 + Int64(now.nanoseconds)
    }
}

extension DeliveryResult {
    /// The figures as Markdown, for RESULTS.md.
    func markdown(provenance: String) -> [String] {
        var lines = [
            "## Alert delivery (issue 6)\n",
            provenance + "\n",
            "An appended log line → the alert at each receiver on 127.0.0.1, one alert in flight, \(trials) trials; "
                + "`vigil run` feeds all four remote sinks at once (and its JSON Lines file). E-mail goes through "
                + "`/usr/sbin/sendmail` → Debian's msmtp → aiosmtpd; the webhook receiver is Python's http.server; "
                + "Alertmanager is Debian's 0.25 (its `updatedAt` has millisecond resolution).\n",
            "The peer is what a cron script does per alert, one command spawned each time, to the same receiver in "
                + "the same run: `logger --rfc5424 -u SOCKET`, `sendmail -t -oi` with the message on its input (what "
                + "`mail -s` runs), `curl -X POST` of a JSON body; timed from just before the spawn. Vigil's time "
                + "includes reading and matching the log line.\n",
            "| sink | vigil p50 | vigil p99 | peer | peer p50 | peer p99 | p50 ratio (vigil ÷ peer) |",
            "|---|---|---|---|---|---|---|",
        ]
        for sink in Self.sinks {
            let mine = LatencySummary(latencies[sink, default: []])
            let theirs = LatencySummary(peerLatencies[sink, default: []])
            let ratioText =
                (mine != nil && theirs != nil && theirs!.p50 > 0) ? ratio(Double(mine!.p50), Double(theirs!.p50)) : "–"
            lines.append(
                "| \(sink) | \(mine.map { "\(milliseconds($0.p50)) ms" } ?? "–") | \(mine.map { "\(milliseconds($0.p99)) ms" } ?? "–") | \(Self.peerNames[sink] ?? "") | \(theirs.map { "\(milliseconds($0.p50)) ms" } ?? "–") | \(theirs.map { "\(milliseconds($0.p99)) ms" } ?? "–") | \(ratioText) |"
            )
        }
        if burst > 0 {
            lines.append("")
            lines.append(
                "A burst of \(burst) alerts appended at once: the time until each receiver had every one (checked by message).\n"
            )
            lines.append("| sink | all delivered after | alerts/s | missing |")
            lines.append("|---|---|---|---|")
            for sink in Self.sinks {
                let missing = burstMissing[sink] ?? 0
                if let elapsed = burstNanoseconds[sink] ?? nil, elapsed > 0 {
                    let rate = Double(burst) / (Double(elapsed) / 1e9)
                    lines.append("| \(sink) | \(milliseconds(elapsed)) ms | \(Int(rate.rounded())) | \(missing) |")
                } else {
                    lines.append("| \(sink) | – | – | \(missing) |")
                }
            }
        }
        if !failures.isEmpty {
            lines.append("")
            lines.append("Problems: " + failures.prefix(5).joined(separator: "; "))
        }
        lines.append("")
        return lines
    }
}

extension DeliveryResult {
    /// The peer of each sink, as the table names it.
    static let peerNames = [
        "syslog": "`logger --rfc5424`", "email": "`sendmail -t -oi`", "webhook": "`curl -X POST`",
        "alertmanager": "`curl -X POST /api/v2/alerts`",
    ]

    /// Every sink's latencies, vigil's and its peer's, for `benchmarks/plot` (`delivery.csv`).
    @MainActor
    func recordSamples() {
        for sink in Self.sinks {
            Samples.record(scenario: "delivery", subject: "vigil → \(sink)", nanoseconds: latencies[sink, default: []])
            Samples.record(
                scenario: "delivery",
                subject: "\(Self.peerNames[sink] ?? "peer") → \(sink)",
                nanoseconds: peerLatencies[sink, default: []]
            )
        }
    }
}
