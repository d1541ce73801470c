import Foundation
import Testing
import VigilCore
import VigilHarness
import VigilReceivers
import VigilRules
import VigilSystem
import VigilTestSupport

@testable import VigilDaemon

/// The webhook and Alertmanager transports against real servers on 127.0.0.1: the Python webhook receiver
/// and Debian's Alertmanager 0.25.
@Suite(.timeLimit(.minutes(2)))
struct HTTPTransportTests {
    // MARK: - Webhook

    @Test func webhookDeliversASignedRecord() throws {
        let tree = TempTree("webhook-signed")
        defer { tree.remove() }
        let receiver = WebhookReceiver()
        try receiver.start(directory: tree.root)
        defer { receiver.stop() }
        let secret = Array("correct horse battery staple".utf8)
        let transport = WebhookTransport(
            spec: WebhookSink(url: receiver.url + "/hooks/vigil", headers: ["X-Team": "ops"]),
            secret: secret,
            timeoutMilliseconds: 5000
        )
        defer { transport.close() }
        let record = sampleRecord(rule: "upload-config", state: .event, fingerprint: "00112233445566ff")

        #expect(transport.batchLimit == 1)
        #expect(transport.deliver([record], lines: [line(record)]) == .delivered)

        #expect(receiver.waitForRequests(count: 1, timeoutSeconds: 5))
        let request = try #require(receiver.requests().first)
        #expect(request.method == "POST")
        #expect(request.path == "/hooks/vigil")
        #expect(request.body == record.jsonLine().trimmingCharacters(in: .newlines))
        #expect(request.headers["content-type"] == "application/json")
        #expect(request.headers["x-vigil-id"] == record.id)
        #expect(request.headers["x-team"] == "ops")
        // The receiver's check: HMAC over the bytes it got, with the shared key.
        let expected = "sha256=" + HMAC.hex(HMAC.sha256(key: secret, message: Array(request.body.utf8)))
        #expect(request.headers["x-vigil-signature"] == expected)
    }

    @Test func webhookRetriesA500ThenDelivers() throws {
        let tree = TempTree("webhook-retry")
        defer { tree.remove() }
        let receiver = WebhookReceiver()
        try receiver.start(directory: tree.root, failFirst: 1)
        defer { receiver.stop() }
        let transport = WebhookTransport(spec: WebhookSink(url: receiver.url), secret: nil, timeoutMilliseconds: 5000)
        defer { transport.close() }
        let record = sampleRecord(rule: "r", state: .firing, fingerprint: "0123456789abcdef")

        let first = transport.deliver([record], lines: [line(record)])
        guard case .retry(let reason) = first else {
            Issue.record("a 500 gave \(first)")
            return
        }
        #expect(reason.contains("HTTP 500"))
        #expect(reason.contains(receiver.url))
        #expect(!reason.contains(record.message))
        #expect(transport.deliver([record], lines: [line(record)]) == .delivered)
        let requests = receiver.requests()
        #expect(requests.map(\.status) == [500, 200])
        #expect(requests.allSatisfy { $0.headers["x-vigil-signature"] == nil })
        #expect(requests[0].body == requests[1].body)
    }

    @Test func webhookRejects404AndRedirects() throws {
        let tree = TempTree("webhook-reject")
        defer { tree.remove() }
        let receiver = WebhookReceiver()
        try receiver.start(directory: tree.root)
        defer { receiver.stop() }
        let record = sampleRecord(rule: "r", state: .event, fingerprint: "0123456789abcdef")

        let missing = WebhookTransport(
            spec: WebhookSink(url: receiver.url + "/status/404"),
            secret: nil,
            timeoutMilliseconds: 5000
        )
        defer { missing.close() }
        let refused = missing.deliver([record], lines: [line(record)])
        guard case .rejected(let reason) = refused else {
            Issue.record("a 404 gave \(refused)")
            return
        }
        #expect(reason.contains("HTTP 404"))
        #expect(!reason.contains(record.message))

        let moved = WebhookTransport(
            spec: WebhookSink(url: receiver.url + "/status/308"),
            secret: nil,
            timeoutMilliseconds: 5000
        )
        defer { moved.close() }
        let redirected = moved.deliver([record], lines: [line(record)])
        guard case .rejected(let redirectReason) = redirected else {
            Issue.record("a 308 gave \(redirected)")
            return
        }
        #expect(redirectReason.contains("redirects are not followed"))
        #expect(redirectReason.contains("'\(receiver.url)/moved'"))
        #expect(receiver.requests().map(\.path) == ["/status/404", "/status/308"])
    }

    @Test func webhookRetriesWhenNobodyListens() throws {
        let tree = TempTree("webhook-down")
        defer { tree.remove() }
        // A receiver that was started and stopped: its port is closed now.
        let receiver = WebhookReceiver()
        try receiver.start(directory: tree.root)
        let url = receiver.url
        receiver.stop()
        let transport = WebhookTransport(spec: WebhookSink(url: url), secret: nil, timeoutMilliseconds: 2000)
        defer { transport.close() }
        let record = sampleRecord(rule: "r", state: .event, fingerprint: "0123456789abcdef")

        let outcome = transport.deliver([record], lines: [line(record)])
        guard case .retry(let reason) = outcome else {
            Issue.record("a closed port gave \(outcome)")
            return
        }
        #expect(reason.hasPrefix("webhook POST '\(url)': "))
    }

    // MARK: - Alertmanager

    @Test func alertmanagerShowsFiringAndEventsAndResolves() throws {
        let tree = TempTree("alertmanager")
        defer { tree.remove() }
        let server = AlertmanagerServer()
        try server.start(directory: tree.root)
        defer { server.stop() }
        let spec = AlertmanagerSink(
            url: server.url + "/",
            labels: ["env": "test", "alertname": "ignored"],
            eventTTLMilliseconds: 600_000,
            resendMilliseconds: 1000,
            generatorURL: "http://vigil.example/rules"
        )
        let transport = AlertmanagerTransport(spec: spec, timeoutMilliseconds: 5000)
        defer { transport.close() }
        let now = Clock.realtime()
        let firing = sampleRecord(
            rule: "disk-full",
            state: .firing,
            fingerprint: "aaaaaaaaaaaaaaaa",
            time: now.seconds - 60,
            path: "/var/lib/analytics",
            labels: ["process.name": "uploader", "1st": "x"]
        )
        let event = sampleRecord(rule: "oom-kill", state: .event, fingerprint: "bbbbbbbbbbbbbbbb", time: now.seconds)

        #expect(transport.batchLimit == 64)
        #expect(transport.nextMaintenance == nil)
        #expect(transport.deliver([firing, event], lines: [line(firing), line(event)]) == .delivered)
        #expect(transport.active.keys.sorted() == ["aaaaaaaaaaaaaaaa"])

        var alerts = try server.alerts()
        let shown = try #require(alerts.first { labels($0)["alertname"] == "disk-full" })
        #expect(
            labels(shown) == [
                "alertname": "disk-full", "host": "web-1", "severity": "warning",
                "vigil_fingerprint": "aaaaaaaaaaaaaaaa", "env": "test",
            ]
        )
        let notes = shown["annotations"] as? [String: String] ?? [:]
        #expect(notes["summary"] == firing.message)
        #expect(notes["vigil_id"] == firing.id)
        #expect(notes["kind"] == "config.changed")
        #expect(notes["state"] == "firing")
        #expect(notes["path"] == "/var/lib/analytics")
        #expect(notes["process_name"] == "uploader")
        #expect(notes["_1st"] == "x")
        #expect(shown["generatorURL"] as? String == "http://vigil.example/rules")
        #expect((shown["startsAt"] as? String)?.hasPrefix(String(seconds(firing.timeSeconds))) == true)
        #expect((shown["status"] as? [String: Any])?["state"] as? String == "active")

        let oneOff = try #require(alerts.first { labels($0)["alertname"] == "oom-kill" })
        #expect(labels(oneOff)["vigil_id"] == event.id)
        #expect((oneOff["annotations"] as? [String: String])?["state"] == "event")
        // endsAt = the event's time + event_ttl (Alertmanager shows milliseconds).
        #expect((oneOff["endsAt"] as? String)?.hasPrefix(String(seconds(event.timeSeconds + 600))) == true)

        // The same event again (a retry after a lost answer) merges into the same alert.
        #expect(transport.deliver([event], lines: [line(event)]) == .delivered)
        #expect(try server.alerts().filter { labels($0)["alertname"] == "oom-kill" }.count == 1)

        // maintain() posts the firing alert again once due: Alertmanager updates it, same startsAt.
        let due = try #require(transport.nextMaintenance)
        #expect(transport.maintain(now: due - 1) == nil)
        #expect(transport.maintain(now: due) == .delivered)
        let reposted = try #require(try server.alerts().first { labels($0)["alertname"] == "disk-full" })
        #expect(reposted["startsAt"] as? String == shown["startsAt"] as? String)
        #expect((reposted["updatedAt"] as? String ?? "") >= (shown["updatedAt"] as? String ?? "~"))
        #expect(try #require(transport.nextMaintenance) > due)

        // The resolved record: Alertmanager lists no alert whose endsAt has passed (see AlertmanagerServer).
        var resolved = firing
        resolved.state = .resolved
        resolved.id = "cccccccccccccccccccccccccccccccc"
        resolved.timeSeconds = now.seconds
        #expect(transport.deliver([resolved], lines: [line(resolved)]) == .delivered)
        alerts = try server.alerts()
        #expect(!alerts.contains { labels($0)["alertname"] == "disk-full" })
        #expect(alerts.contains { labels($0)["alertname"] == "oom-kill" })
        #expect(transport.active.isEmpty)
        #expect(transport.nextMaintenance == nil)
        #expect(transport.maintain(now: UInt64.max) == nil)
    }

    @Test func alertmanagerRefusalIsRejectedWithItsReason() throws {
        let tree = TempTree("alertmanager-400")
        defer { tree.remove() }
        let server = AlertmanagerServer()
        try server.start(directory: tree.root)
        defer { server.stop() }
        let transport = AlertmanagerTransport(spec: AlertmanagerSink(url: server.url), timeoutMilliseconds: 5000)
        defer { transport.close() }
        let now = Clock.realtime().seconds
        let firing = sampleRecord(rule: "clock", state: .firing, fingerprint: "dddddddddddddddd", time: now)
        #expect(transport.deliver([firing], lines: [line(firing)]) == .delivered)

        // A resolved record older than its firing one: endsAt before startsAt, which Alertmanager refuses.
        var resolved = firing
        resolved.state = .resolved
        resolved.timeSeconds = now - 3600
        let outcome = transport.deliver([resolved], lines: [line(resolved)])
        guard case .rejected(let reason) = outcome else {
            Issue.record("Alertmanager's 400 gave \(outcome)")
            return
        }
        #expect(reason.hasPrefix("alertmanager POST '\(server.url)/api/v2/alerts': HTTP 400: "))
        #expect(reason.contains("start time must be before end time"))
        #expect(!reason.contains(firing.message))
        #expect(transport.active.keys.sorted() == ["dddddddddddddddd"])
    }

    @Test func alertmanagerMaintenanceRepostsOnlyFiringAlerts() throws {
        let tree = TempTree("alertmanager-resend")
        defer { tree.remove() }
        // The webhook receiver stands in for Alertmanager here, to see the exact bodies posted.
        let receiver = WebhookReceiver()
        try receiver.start(directory: tree.root)
        defer { receiver.stop() }
        let transport = AlertmanagerTransport(
            spec: AlertmanagerSink(url: receiver.url, resendMilliseconds: 30_000),
            timeoutMilliseconds: 5000
        )
        defer { transport.close() }
        let now = Clock.realtime().seconds
        let first = sampleRecord(rule: "a", state: .firing, fingerprint: "1111111111111111", time: now - 10)
        let second = sampleRecord(rule: "b", state: .firing, fingerprint: "2222222222222222", time: now - 5)
        let event = sampleRecord(rule: "c", state: .event, fingerprint: "3333333333333333", time: now)
        var gone = second
        gone.state = .resolved
        gone.timeSeconds = now
        let batch = [first, second, event]
        #expect(transport.deliver(batch, lines: batch.map(line)) == .delivered)
        #expect(transport.deliver([gone], lines: [line(gone)]) == .delivered)

        let before = Clock.monotonicNanoseconds()
        let due = try #require(transport.nextMaintenance)
        #expect(due > before && due <= before + 30_000_000_000)
        #expect(transport.maintain(now: due) == .delivered)

        let requests = receiver.requests()
        try #require(requests.count == 3)
        #expect(requests.allSatisfy { $0.path == "/api/v2/alerts" })
        let posted = try posts(requests[0].body)
        #expect(posted.count == 3)
        let resent = try posts(requests[2].body)
        #expect(resent.count == 1)
        #expect(labels(resent[0])["alertname"] == "a")
        #expect(resent[0]["endsAt"] == nil)
        #expect(resent[0]["startsAt"] as? String == posted[0]["startsAt"] as? String)
        // The resolved record kept the firing one's startsAt and ended at its own time.
        let resolvedPost = try posts(requests[1].body)[0]
        #expect(resolvedPost["startsAt"] as? String == posted[1]["startsAt"] as? String)
        #expect(resolvedPost["endsAt"] as? String == RFC3339.string(seconds: now, nanoseconds: 0))
    }

    @Test func alertmanagerDownIsARetry() throws {
        let tree = TempTree("alertmanager-down")
        defer { tree.remove() }
        let receiver = WebhookReceiver()
        try receiver.start(directory: tree.root, failFirst: 1)
        defer { receiver.stop() }
        let transport = AlertmanagerTransport(spec: AlertmanagerSink(url: receiver.url), timeoutMilliseconds: 5000)
        defer { transport.close() }
        let record = sampleRecord(rule: "a", state: .firing, fingerprint: "1111111111111111")

        let outcome = transport.deliver([record], lines: [line(record)])
        guard case .retry(let reason) = outcome else {
            Issue.record("a 500 gave \(outcome)")
            return
        }
        #expect(reason.contains("HTTP 500"))
        #expect(transport.active.isEmpty)
        #expect(transport.nextMaintenance == nil)
    }

    @Test func labelNamesAreMadeValid() {
        #expect(AlertmanagerTransport.labelName("process.name") == "process_name")
        #expect(AlertmanagerTransport.labelName("1st") == "_1st")
        #expect(AlertmanagerTransport.labelName("ok_Name9") == "ok_Name9")
        #expect(AlertmanagerTransport.labelName("") == "_")
        #expect(AlertmanagerTransport.labelName("é") == "__")
    }
}

/// A record with the fields the tests vary; the rest fixed.
private func sampleRecord(
    rule: String,
    state: AlertState,
    fingerprint: String,
    time: Int64 = 1_800_000_000,
    path: String? = nil,
    labels: [String: String] = [:]
) -> AlertRecord {
    AlertRecord(
        id: AlertIdentity.id(fingerprint: fingerprint, state: state, version: "\(time)"),
        timeSeconds: time,
        timeNanoseconds: 0,
        host: "web-1",
        rule: rule,
        severity: "warning",
        state: state,
        kind: "config.changed",
        path: path,
        message: "upload-service.conf: 'enabled' changed from true to false (a long human sentence)",
        fingerprint: fingerprint,
        labels: labels
    )
}

/// The record as the sinks receive it: its JSON line, newline included.
private func line(_ record: AlertRecord) -> [UInt8] {
    var bytes: [UInt8] = []
    record.encodeJSONLine(into: &bytes)
    return bytes
}

/// An Alertmanager alert's labels.
private func labels(_ alert: [String: Any]) -> [String: String] {
    alert["labels"] as? [String: String] ?? [:]
}

/// `seconds` as RFC 3339 up to the seconds, `2027-01-15T08:00:00`.
private func seconds(_ seconds: Int64) -> Substring {
    RFC3339.string(seconds: seconds, nanoseconds: 0).prefix(19)
}

/// The alerts of one POST body.
private func posts(_ body: String) throws -> [[String: Any]] {
    let parsed = try JSONSerialization.jsonObject(with: Data(body.utf8))
    return try #require(parsed as? [[String: Any]])
}
