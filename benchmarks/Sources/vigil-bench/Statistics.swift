import VigilSystem

/// Latency summary of one sample set, in nanoseconds; percentiles by nearest rank.
struct LatencySummary {
    let count: Int
    let p50: UInt64
    let p90: UInt64
    let p99: UInt64
    let max: UInt64
    let mean: Double

    /// nil for an empty set.
    init?(_ samples: [UInt64]) {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        count = sorted.count
        p50 = Self.nearestRank(sorted, 50)
        p90 = Self.nearestRank(sorted, 90)
        p99 = Self.nearestRank(sorted, 99)
        max = sorted[sorted.count - 1]
        mean = Double(sorted.reduce(0, +)) / Double(sorted.count)
    }

    /// The smallest sample such that at least `percent` % of the samples are less than or equal to it:
    /// rank ⌈percent/100 × n⌉, 1-based.
    static func nearestRank(_ sorted: [UInt64], _ percent: Int) -> UInt64 {
        let rank = (percent * sorted.count + 99) / 100
        return sorted[Swift.max(rank, 1) - 1]
    }
}

/// Milliseconds with three decimals (microsecond resolution), without Foundation.
func milliseconds(_ nanoseconds: UInt64) -> String {
    milliseconds(Double(nanoseconds))
}

/// Milliseconds with three decimals (microsecond resolution), without Foundation.
func milliseconds(_ nanoseconds: Double) -> String {
    let micros = Int((nanoseconds / 1_000).rounded())
    let whole = micros / 1_000
    let fraction = micros % 1_000
    let padded = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
    return "\(whole).\(padded)"
}

/// A ratio with two decimals.
func ratio(_ a: Double, _ b: Double) -> String {
    guard b > 0 else { return "n/a" }
    let hundredths = Int((a / b * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)×"
}

/// Wall time per scenario, printed as each ends and listed at the end of the run: the quick mode must stay
/// under two minutes for CI, and these say which scenario to trim when it does not.
@MainActor
enum ScenarioClock {
    private static var last = Clock.monotonicNanoseconds()
    private static var laps: [(name: String, nanoseconds: UInt64)] = []

    /// Starts the first lap.
    static func start() { last = Clock.monotonicNanoseconds() }

    /// Ends the lap that started when the previous one ended (or at start-up) and names it `name`.
    static func lap(_ name: String) {
        let now = Clock.monotonicNanoseconds()
        laps.append((name, now - last))
        last = now
        print("vigil-bench: \(name) took \(seconds(now - laps[laps.count - 1].nanoseconds, now)) s")
    }

    /// "drift 12.3 s, process 8.1 s, …; 95.0 s in all".
    static func summary() -> String {
        let total = laps.map(\.nanoseconds).reduce(0, +)
        return laps.map { "\($0.name) \(seconds(0, $0.nanoseconds)) s" }.joined(separator: ", ")
            + "; \(seconds(0, total)) s in all"
    }

    /// `to − from` in seconds with one decimal.
    private static func seconds(_ from: UInt64, _ to: UInt64) -> String {
        let tenths = (to - from + 50_000_000) / 100_000_000
        return "\(tenths / 10).\(tenths % 10)"
    }
}
