import Testing
import VigilCore

@testable import VigilDaemon

/// The Prometheus text format as written by hand: escaping, number spelling, histograms, and the alert book
/// behind the per-rule series.
struct MetricsExpositionTests {
    @Test func labelValuesAndHelpAreEscapedAsTheFormatSays() {
        #expect(PrometheusText.escapeLabelValue(#"a\b"c"# + "\nd") == #"a\\b\"c\nd"#)
        #expect(PrometheusText.escapeLabelValue("plain-rule.id") == "plain-rule.id")
        #expect(PrometheusText.escapeHelp("say \"x\"\\\n") == #"say "x"\\\n"#)
        var p = PrometheusText()
        p.family("vigil_rule_hits_total", .counter, help: "Alerts\nper rule.")
        p.sample("vigil_rule_hits_total", [("rule", "odd\"id")], UInt64(3))
        #expect(
            p.text
                == "# HELP vigil_rule_hits_total Alerts\\nper rule.\n# TYPE vigil_rule_hits_total counter\nvigil_rule_hits_total{rule=\"odd\\\"id\"} 3\n"
        )
    }

    @Test func numbersAreSpelledAsGoReadsThem() {
        #expect(PrometheusText.format(3) == "3")
        #expect(PrometheusText.format(0.25) == "0.25")
        #expect(PrometheusText.format(.infinity) == "+Inf")
        #expect(PrometheusText.format(-.infinity) == "-Inf")
        #expect(PrometheusText.format(.nan) == "NaN")
        #expect(PrometheusText.format(5e-05) == "5e-05")
    }

    @Test func histogramBucketsAreCumulativeAndEndInInf() {
        let histogram = LatencyHistogram()
        histogram.record(nanoseconds: 10_000)  // ≤ 50 µs
        histogram.record(nanoseconds: 50_000)  // ≤ 50 µs (bounds are inclusive)
        histogram.record(nanoseconds: 3_000_000)  // ≤ 5 ms
        histogram.record(nanoseconds: 60_000_000_000)  // past 10 s: +Inf only
        let snapshot = histogram.snapshot()
        #expect(snapshot.count == 4)
        #expect(snapshot.sumNanoseconds == 60_003_060_000)
        #expect(snapshot.cumulative.first == 2)
        #expect(snapshot.cumulative[LatencyHistogram.boundsNanoseconds.firstIndex(of: 5_000_000)!] == 3)
        #expect(snapshot.cumulative.last == 3)
        #expect(snapshot.cumulative == snapshot.cumulative.sorted())
        var p = PrometheusText()
        p.family("vigil_action_latency_seconds", .histogram, help: "h")
        p.histogram("vigil_action_latency_seconds", [("sink", "hook")], snapshot)
        let lines = p.text.split(separator: "\n")
        #expect(lines.contains("vigil_action_latency_seconds_bucket{sink=\"hook\",le=\"5e-05\"} 2"))
        #expect(lines.contains("vigil_action_latency_seconds_bucket{sink=\"hook\",le=\"10\"} 3"))
        #expect(lines.contains("vigil_action_latency_seconds_bucket{sink=\"hook\",le=\"+Inf\"} 4"))
        #expect(lines.contains("vigil_action_latency_seconds_sum{sink=\"hook\"} 60.00306"))
        #expect(lines.contains("vigil_action_latency_seconds_count{sink=\"hook\"} 4"))
    }

    static func record(_ rule: String, severity: String, state: AlertState, second: Int64) -> AlertRecord {
        AlertRecord(
            id: String(repeating: "0", count: 32),
            timeSeconds: second,
            timeNanoseconds: 0,
            host: "h",
            rule: rule,
            severity: severity,
            state: state,
            kind: "log.match",
            message: "\(rule) at \(second)",
            fingerprint: String(repeating: "0", count: 16)
        )
    }

    @Test func alertBookCountsHitsAndKeepsTheLastFifty() {
        let book = AlertBook()
        for second in 1...60 {
            book.note(
                Self.record(second % 2 == 0 ? "even" : "odd", severity: "warning", state: .event, second: Int64(second))
            )
        }
        book.note(Self.record("odd", severity: "critical", state: .firing, second: 61))
        let snapshot = book.snapshot()
        #expect(snapshot.rules["even"] == AlertBook.RuleTally(hits: 30, lastFireSeconds: 60))
        #expect(snapshot.rules["odd"] == AlertBook.RuleTally(hits: 31, lastFireSeconds: 61))
        #expect(snapshot.recent.count == AlertBook.recentCapacity)
        #expect(snapshot.recent.first?.timeSeconds == 12)
        #expect(snapshot.recent.last?.message == "odd at 61")
        #expect(snapshot.count(severity: 2, state: 2) == 60)
        #expect(snapshot.count(severity: 0, state: 0) == 1)
    }
}
