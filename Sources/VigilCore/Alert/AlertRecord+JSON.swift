extension AlertRecord {
    /// The top-level JSON members in the order `encodeJSONLine(into:)` writes them. `path` and `labels` are
    /// written only when present. `docs/alert.schema.json` lists its properties in the same order.
    public static let jsonKeyOrder = [
        "id", "time", "host", "rule", "severity", "state", "kind", "path", "message", "changes", "fingerprint",
        "labels",
    ]

    /// Appends this record to `buffer` as one line: a compact JSON object, then `\n` (JSON Lines).
    ///
    /// `time` is RFC 3339 UTC with microseconds; `changes` is an array of `{"key","old","new"}` with `null`
    /// for an absent value; `labels` is sorted by key. Appending to a buffer with enough capacity does not
    /// allocate: the labels are emitted in order by repeated minimum search instead of sorting a copy.
    public func encodeJSONLine(into buffer: inout [UInt8]) {
        var writer = JSONWriter()
        // Move the caller's storage into the writer and back, so it stays uniquely referenced and is
        // appended to in place instead of copied.
        swap(&writer.bytes, &buffer)
        defer { swap(&writer.bytes, &buffer) }

        writer.beginObject()
        writer.key("id")
        writer.string(id)
        writer.key("time")
        writer.timestamp(seconds: timeSeconds, nanoseconds: timeNanoseconds)
        writer.key("host")
        writer.string(host)
        writer.key("rule")
        writer.string(rule)
        writer.key("severity")
        writer.string(severity)
        writer.key("state")
        writer.string(state.rawValue)
        writer.key("kind")
        writer.string(kind)
        if let path {
            writer.key("path")
            writer.string(path)
        }
        writer.key("message")
        writer.string(message)
        writer.key("changes")
        writer.beginArray()
        for change in changes {
            writer.beginObject()
            writer.key("key")
            writer.string(change.key)
            writer.key("old")
            writer.string(orNull: change.old)
            writer.key("new")
            writer.string(orNull: change.new)
            writer.endObject()
        }
        writer.endArray()
        writer.key("fingerprint")
        writer.string(fingerprint)
        if !labels.isEmpty {
            writer.key("labels")
            writer.beginObject()
            writeSortedLabels(&writer)
            writer.endObject()
        }
        writer.endObject()
        writer.bytes.append(UInt8(ascii: "\n"))
    }

    /// The record as one JSON line, for tests and logs; sinks use `encodeJSONLine(into:)` with a reused buffer.
    public func jsonLine() -> String {
        var buffer: [UInt8] = []
        encodeJSONLine(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Writes the labels as members, in byte order of their keys. Quadratic in the label count, which is a
    /// handful, and free of the allocation that sorting a copy would cost.
    private func writeSortedLabels(_ writer: inout JSONWriter) {
        var previous: String? = nil
        for _ in 0..<labels.count {
            var next: (key: String, value: String)? = nil
            for (key, value) in labels {
                if let previous, !previous.utf8.lexicographicallyPrecedes(key.utf8) { continue }
                if let current = next, !key.utf8.lexicographicallyPrecedes(current.key.utf8) { continue }
                next = (key, value)
            }
            guard let next else { return }
            writer.key(next.key)
            writer.string(next.value)
            previous = next.key
        }
    }
}
