/// Prometheus text exposition format 0.0.4, written by hand because it is a few lines of escaping: one
/// `# HELP` and one `# TYPE` line per family, then its samples. See
/// https://prometheus.io/docs/instrumenting/exposition_formats/ (the format `promtool check metrics` reads).
///
/// Families must be written whole, one after the other (the format forbids a family's samples to be split);
/// the caller writes `family` once, then every sample of it.
public struct PrometheusText: Sendable {
    /// The content type of a scrape answer in this format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The metric kinds this daemon exposes.
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    /// The text so far.
    public private(set) var text = ""

    public init() {
        text.reserveCapacity(16 << 10)
    }

    /// Starts a family: its `# HELP` (escaped) and `# TYPE` lines.
    public mutating func family(_ name: String, _ kind: Kind, help: String) {
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    /// One sample line: `name{label="value",…} value`.
    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: UInt64) {
        line(name, labels, String(value))
    }

    /// One sample line with an integer value (gauges that may be negative never occur here, but Int is what
    /// sizes come in).
    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Int) {
        line(name, labels, String(value))
    }

    /// One sample line with a 64-bit integer value (byte counts).
    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Int64) {
        line(name, labels, String(value))
    }

    /// One sample line with a floating-point value (`+Inf`, `-Inf`, `NaN` spelled as the format wants).
    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        line(name, labels, Self.format(value))
    }

    /// A histogram's samples (the family line must have been written): cumulative `_bucket` series with
    /// `le` in seconds, `+Inf`, `_sum` in seconds, `_count`.
    public mutating func histogram(
        _ name: String,
        _ labels: [(String, String)] = [],
        _ snapshot: LatencyHistogram.Snapshot
    ) {
        for (index, bound) in LatencyHistogram.boundsNanoseconds.enumerated() {
            line(
                name + "_bucket",
                labels + [("le", Self.format(Double(bound) / 1e9))],
                String(snapshot.cumulative[index])
            )
        }
        line(name + "_bucket", labels + [("le", "+Inf")], String(snapshot.count))
        line(name + "_sum", labels, Self.format(Double(snapshot.sumNanoseconds) / 1e9))
        line(name + "_count", labels, String(snapshot.count))
    }

    private mutating func line(_ name: String, _ labels: [(String, String)], _ value: String) {
        text += name
        if !labels.isEmpty {
            text += "{"
            for (index, (label, labelValue)) in labels.enumerated() {
                if index > 0 { text += "," }
                text += label
                text += "=\""
                text += Self.escapeLabelValue(labelValue)
                text += "\""
            }
            text += "}"
        }
        text += " "
        text += value
        text += "\n"
    }

    /// A label value as the format wants it: backslash, double quote and line feed escaped.
    public static func escapeLabelValue(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return value }
        var out = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    /// A help text as the format wants it: backslash and line feed escaped (quotes stay).
    public static func escapeHelp(_ value: String) -> String {
        var out = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    /// A float the way Go's `strconv` reads it: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
