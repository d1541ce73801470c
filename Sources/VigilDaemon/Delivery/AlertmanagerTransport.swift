import VigilCore
import VigilRules
import VigilSystem

/// `type: alertmanager`: batches of alerts as Prometheus Alertmanager's API v2 takes them,
/// `POST {url}/api/v2/alerts` with a JSON array (see Alertmanager's `api/v2/openapi.yaml`, `postableAlert`).
///
/// How records become Alertmanager alerts:
/// - labels (Alertmanager's identity of an alert): `alertname` = the rule, `host`, `severity`,
///   `vigil_fingerprint` = the rule instance, and for one-off events also `vigil_id`, so each event is an
///   alert of its own while a repeat of the same event (same id, after a retry) merges into it; then the
///   sink's `labels:` (which cannot replace those).
/// - annotations: the record's labels (names made valid), then `summary` = the message, `vigil_id`,
///   `kind`, `state` and `path`.
/// - `startsAt`: the time the instance started firing (the record's time, or for a resolved record the
///   time of the firing one when this transport delivered it); `endsAt`: a resolved record's time, an
///   event's time + `event_ttl:`, none for firing (Alertmanager then keeps it until `resolve_timeout`).
///
/// Alertmanager resolves by itself an alert that is not posted again within its `resolve_timeout` (5
/// minutes by default), so firing alerts are kept in `active` (fingerprint → the firing record) and posted
/// again every `resend:` by `maintain(now:)`, with the same `startsAt`, until their resolved record is
/// delivered. After a restart the table is empty: the daemon's state rules send `firing` again for what
/// is still true.
///
/// Used by its sink's thread only.
final class AlertmanagerTransport: DeliveryTransport, @unchecked Sendable {
    // @unchecked Sendable: built on the daemon's setup thread, then handed once to the sink thread, the
    // only one that uses it (the HTTPClient inside is one-thread-at-a-time).

    /// Alerts per POST: Alertmanager takes arrays of any size; 64 keeps one request small and quick.
    let batchLimit = 64
    private let spec: AlertmanagerSink
    private let client: HTTPClient
    /// `{url}/api/v2/alerts`.
    private let endpoint: String
    /// `endpoint` without userinfo and query, for messages.
    private let shownEndpoint: String
    /// `spec.labels` with valid names.
    private let staticLabels: [(String, String)]
    /// Firing alerts delivered and not yet resolved: fingerprint → the firing record.
    private(set) var active: [String: AlertRecord] = [:]
    /// When the active set is due to be posted again (`Clock.monotonicNanoseconds()`); nil when empty.
    private var resendDue: UInt64?
    /// The reusable JSON buffer.
    private var writer = JSONWriter()

    /// A transport for `spec`, each POST taking at most `timeoutMilliseconds`.
    init(spec: AlertmanagerSink, timeoutMilliseconds: Int) {
        self.spec = spec
        client = HTTPClient(timeoutMilliseconds: timeoutMilliseconds)
        var base = spec.url
        while base.hasSuffix("/") { base.removeLast() }
        endpoint = base + "/api/v2/alerts"
        shownEndpoint = HTTPClient.redacted(endpoint)
        staticLabels = spec.labels.sorted { $0.key < $1.key }.map { (Self.labelName($0.key), $0.value) }
    }

    /// POSTs the batch; on success, firing records join `active` and resolved ones leave it.
    func deliver(_ batch: [AlertRecord], lines: [[UInt8]]) -> DeliveryOutcome {
        guard !batch.isEmpty else { return .delivered }
        let outcome = post(batch)
        guard outcome == .delivered else { return outcome }
        let wasEmpty = active.isEmpty
        for record in batch {
            switch record.state {
            case .firing: active[record.fingerprint] = record
            case .resolved: active.removeValue(forKey: record.fingerprint)
            case .event: break
            }
        }
        if active.isEmpty {
            resendDue = nil
        } else if wasEmpty || resendDue == nil {
            resendDue = Clock.monotonicNanoseconds() + resendInterval
        }
        return .delivered
    }

    /// When the still-firing alerts are next due to be posted again; nil when none are firing.
    var nextMaintenance: UInt64? { resendDue }

    /// Posts every active alert again when due (in batches of `batchLimit`). After a failure the next
    /// attempt is due in `min(resend, 5 s)`, not a whole period later: the alerts must reach Alertmanager
    /// before its `resolve_timeout`.
    func maintain(now: UInt64) -> DeliveryOutcome? {
        guard let due = resendDue, now >= due, !active.isEmpty else { return nil }
        let records = active.values.sorted { $0.fingerprint < $1.fingerprint }
        var start = 0
        while start < records.count {
            let end = min(start + batchLimit, records.count)
            let outcome = post(Array(records[start..<end]))
            guard outcome == .delivered else {
                resendDue = now + min(resendInterval, 5_000_000_000)
                return outcome
            }
            start = end
        }
        resendDue = now + resendInterval
        return .delivered
    }

    /// Closes the connection.
    func close() {
        client.close()
    }

    /// `resend:` in nanoseconds (at least 1 s, so a zero in a test cannot spin).
    private var resendInterval: UInt64 { UInt64(max(spec.resendMilliseconds, 1000)) * 1_000_000 }

    /// One POST of `records` as a JSON array.
    private func post(_ records: [AlertRecord]) -> DeliveryOutcome {
        writer.bytes.removeAll(keepingCapacity: true)
        writer.beginArray()
        for record in records { write(record) }
        writer.endArray()
        let response = client.post(
            url: endpoint,
            headers: [("Content-Type", "application/json")],
            body: writer.bytes
        )
        switch response {
        case .failure(let error):
            return .retry("alertmanager \(error)")
        case .success(let answer):
            let detail = answer.status == 400 || answer.status == 422 ? Self.errorText(answer.body) : nil
            return HTTPAnswer.outcome(answer, what: "alertmanager POST '\(shownEndpoint)'", detail: detail)
        }
    }

    /// Appends one `postableAlert` object for `record`.
    private func write(_ record: AlertRecord) {
        writer.beginObject()
        writer.key("labels")
        var labels: [(String, String)] = [
            ("alertname", record.rule), ("host", record.host), ("severity", record.severity),
            ("vigil_fingerprint", record.fingerprint),
        ]
        if record.state == .event { labels.append(("vigil_id", record.id)) }
        let own = Set(labels.map(\.0))
        labels += staticLabels.filter { !own.contains($0.0) }
        writeObject(labels)

        writer.key("annotations")
        var annotations: [String: String] = [:]
        for (name, value) in record.labels { annotations[Self.labelName(name)] = value }
        annotations["summary"] = record.message
        annotations["vigil_id"] = record.id
        annotations["kind"] = record.kind
        annotations["state"] = record.state.rawValue
        if let path = record.path { annotations["path"] = path }
        writeObject(annotations.map { ($0.key, $0.value) })

        // A resolved record starts when its firing one did, if this transport delivered that.
        let started = record.state == .resolved ? (active[record.fingerprint] ?? record) : record
        writer.key("startsAt")
        writer.timestamp(seconds: started.timeSeconds, nanoseconds: started.timeNanoseconds)
        switch record.state {
        case .firing:
            break
        case .resolved:
            writer.key("endsAt")
            writer.timestamp(seconds: record.timeSeconds, nanoseconds: record.timeNanoseconds)
        case .event:
            let ttl = Int64(max(spec.eventTTLMilliseconds, 0))
            writer.key("endsAt")
            writer.timestamp(
                seconds: record.timeSeconds + ttl / 1000,
                nanoseconds: record.timeNanoseconds + Int32(ttl % 1000) * 1_000_000
            )
        }
        if let generatorURL = spec.generatorURL {
            writer.key("generatorURL")
            writer.string(generatorURL)
        }
        writer.endObject()
    }

    /// Writes `pairs` as a JSON object of strings, sorted by name (Alertmanager ignores order; sorting keeps
    /// requests identical from run to run).
    private func writeObject(_ pairs: [(String, String)]) {
        writer.beginObject()
        for (name, value) in pairs.sorted(by: { $0.0 < $1.0 }) {
            writer.key(name)
            writer.string(value)
        }
        writer.endObject()
    }

    /// `name` as a valid Prometheus label name, `[a-zA-Z_][a-zA-Z0-9_]*`: other characters become `_`, and a
    /// leading digit gets a `_` before it (`process.name` → `process_name`, `1st` → `_1st`).
    static func labelName(_ name: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(name.utf8.count + 1)
        for byte in name.utf8 {
            let isLetter = (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
            let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            if bytes.isEmpty && isDigit { bytes.append(UInt8(ascii: "_")) }
            bytes.append(isLetter || isDigit || byte == UInt8(ascii: "_") ? byte : UInt8(ascii: "_"))
        }
        return bytes.isEmpty ? "_" : String(decoding: bytes, as: UTF8.self)
    }

    /// The first 200 bytes of Alertmanager's error answer (`"at least one label pair required"` or
    /// `{"code":400,"message":"…"}`) on one line.
    private static func errorText(_ body: [UInt8]) -> String {
        let bytes = body.prefix(200).map { $0 < 0x20 || $0 == 0x7F ? UInt8(ascii: " ") : $0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}
