import Testing
import VigilCore

/// Sample records shared by the alert tests: the seed's config scenario, a file event with labels, a
/// lost-events alert with neither path nor labels, and one full of characters that need escaping.
enum SampleAlerts {
    /// `verify_ssl = false` appears in the upload service's config.
    static var configChanged: AlertRecord {
        let fingerprint = AlertIdentity.fingerprint(
            rule: "upload-config-ssl",
            instance: "/etc/analytics/upload-service.conf"
        )
        return AlertRecord(
            id: AlertIdentity.id(
                fingerprint: fingerprint,
                state: .firing,
                version: "2049:131077:1795755215123456789:160"
            ),
            timeSeconds: 1_795_755_215,
            timeNanoseconds: 123_456_789,
            host: "web-01",
            rule: "upload-config-ssl",
            severity: "critical",
            state: .firing,
            kind: "config.changed",
            path: "/etc/analytics/upload-service.conf",
            message: "verify_ssl is false in '/etc/analytics/upload-service.conf'",
            changes: [
                ConfigChange(key: "db_password", old: "a", new: "b").masked(),
                ConfigChange(key: "debug", old: nil, new: "true"),
                ConfigChange(key: "verify_ssl", old: "true", new: "false"),
            ],
            fingerprint: fingerprint
        )
    }

    /// A watched file was deleted; carries labels.
    static var fileDeleted: AlertRecord {
        AlertRecord(
            id: String(repeating: "0", count: 32),
            timeSeconds: 0,
            timeNanoseconds: 0,
            host: "h",
            rule: "keep-logs",
            severity: "warning",
            state: .event,
            kind: "file.deleted",
            path: "/var/log/analytics/app.log",
            message: "deleted",
            fingerprint: "00000000000000ff",
            labels: ["uid": "0", "comm": "rm", "Zeta": "last?", "exe": "/usr/bin/rm"]
        )
    }

    /// Events were lost; no path, no labels.
    static var eventsLost: AlertRecord {
        AlertRecord(
            id: "0123456789abcdef0123456789abcdef",
            timeSeconds: 4_107_542_400,
            timeNanoseconds: 1_000,
            host: "h",
            rule: "vigil",
            severity: "error",
            state: .event,
            kind: "vigil.events_lost",
            message: "inotify queue overflowed; rescanning",
            fingerprint: "fedcba9876543210"
        )
    }

    /// Text that needs every kind of escaping.
    static var nasty: AlertRecord {
        AlertRecord(
            id: "ffffffffffffffffffffffffffffffff",
            timeSeconds: 1_709_210_096,
            timeNanoseconds: 999_999_999,
            host: "h\"ost",
            rule: "r\\ule",
            severity: "info",
            state: .resolved,
            kind: "log.line",
            path: "/tmp/new\nline",
            message: "tab\there \u{01} bell\u{07} 🚀 \"quoted\" back\\slash",
            changes: [ConfigChange(key: "k\"ey", old: "\r\n", new: nil)],
            fingerprint: "0000000000000000",
            labels: ["k\u{1F}": "v\u{0}v"]
        )
    }

    /// All samples.
    static var all: [AlertRecord] { [configChanged, fileDeleted, eventsLost, nasty] }
}

/// The JSON line format of `AlertRecord`.
@Suite struct AlertRecordTests {
    /// The seed scenario, byte for byte.
    @Test func goldenConfigChangedLine() {
        let expected =
            #"{"id":"8b776ac329c39680183742315bf1d458","time":"2026-11-27T04:53:35.123456Z","host":"web-01","rule":"upload-config-ssl","severity":"critical","state":"firing","kind":"config.changed","path":"/etc/analytics/upload-service.conf","message":"verify_ssl is false in '/etc/analytics/upload-service.conf'","changes":[{"key":"db_password","old":"****","new":"****"},{"key":"debug","old":null,"new":"true"},{"key":"verify_ssl","old":"true","new":"false"}],"fingerprint":"8428c98e5665e55a"}"#
            + "\n"
        #expect(SampleAlerts.configChanged.jsonLine() == expected)
    }

    /// No path, no labels, empty changes.
    @Test func goldenMinimalLine() {
        let expected =
            #"{"id":"0123456789abcdef0123456789abcdef","time":"2100-03-01T00:00:00.000001Z","host":"h","rule":"vigil","severity":"error","state":"event","kind":"vigil.events_lost","message":"inotify queue overflowed; rescanning","changes":[],"fingerprint":"fedcba9876543210"}"#
            + "\n"
        #expect(SampleAlerts.eventsLost.jsonLine() == expected)
    }

    /// Labels come last, sorted by key in byte order (uppercase before lowercase).
    @Test func labelsSortedByKey() throws {
        let line = SampleAlerts.fileDeleted.jsonLine()
        #expect(line.hasSuffix(#","labels":{"Zeta":"last?","comm":"rm","exe":"/usr/bin/rm","uid":"0"}}"# + "\n"))
        #expect(try TestJSON.parse(line)["labels"]?.memberNames == ["Zeta", "comm", "exe", "uid"])
    }

    /// Every sample is exactly one line of valid JSON, members in the documented order, values round-trip.
    @Test(arguments: SampleAlerts.all)
    func validJSONInKeyOrder(record: AlertRecord) throws {
        let line = record.jsonLine()
        #expect(line.hasSuffix("\n"))
        #expect(line.utf8.filter { $0 == 0x0A }.count == 1)
        let value = try TestJSON.parse(line)
        var expectedOrder = AlertRecord.jsonKeyOrder
        if record.path == nil { expectedOrder.removeAll { $0 == "path" } }
        if record.labels.isEmpty { expectedOrder.removeAll { $0 == "labels" } }
        #expect(value.memberNames == expectedOrder)
        #expect(value["host"]?.stringValue == record.host)
        #expect(value["message"]?.stringValue == record.message)
        #expect(value["path"]?.stringValue == record.path)
        #expect(
            value["time"]?.stringValue
                == RFC3339.string(seconds: record.timeSeconds, nanoseconds: record.timeNanoseconds)
        )
        let changes = try #require(value["changes"]?.arrayValue)
        #expect(changes.count == record.changes.count)
        for (json, change) in zip(changes, record.changes) {
            #expect(json.memberNames == ["key", "old", "new"])
            #expect(json["key"]?.stringValue == change.key)
            #expect(json["old"]?.stringValue == change.old)
            #expect(json["new"]?.stringValue == change.new)
        }
        for (key, labelValue) in record.labels {
            #expect(value["labels"]?[key]?.stringValue == labelValue)
        }
    }

    /// Lines append to what is already in the buffer.
    @Test func appendsToBuffer() {
        var buffer: [UInt8] = []
        SampleAlerts.eventsLost.encodeJSONLine(into: &buffer)
        SampleAlerts.fileDeleted.encodeJSONLine(into: &buffer)
        let lines = String(decoding: buffer, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3)
        #expect(lines[2].isEmpty)
        #expect(String(lines[0]) + "\n" == SampleAlerts.eventsLost.jsonLine())
    }

    /// A buffer reused after `removeAll(keepingCapacity: true)` keeps its storage: the encoder appends in
    /// place and never copies or regrows it. (Malloc counting itself belongs to the benchmark package.)
    @Test func reusedBufferKeepsItsStorage() {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(4096)
        let capacity = buffer.capacity
        let base = buffer.withUnsafeBufferPointer { $0.baseAddress }
        for record in SampleAlerts.all + SampleAlerts.all {
            buffer.removeAll(keepingCapacity: true)
            record.encodeJSONLine(into: &buffer)
            #expect(buffer.capacity == capacity)
            #expect(buffer.withUnsafeBufferPointer { $0.baseAddress } == base)
        }
    }
}
