import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The raw samples behind every summary in RESULTS.md, as CSV files that `benchmarks/plot` turns into PNGs.
///
/// One file per scenario under `benchmarks/out/samples/` (`-quick` runs under `benchmarks/out/samples-quick/`),
/// truncated when the run starts and appended to by every subject of that scenario:
/// - latency scenarios: `subject,trial,milliseconds` (one row per measured trial, in trial order);
/// - throughput scenarios: `subject,n,value,unit` (one row per point, e.g. lines per second for N rules).
/// Subject names are the ones the report prints, so a plot's legend matches its table.
@MainActor
enum Samples {
    /// The directory this run writes into; set once by main from `--quick`.
    static var directory = benchmarksDirectory + "/out/samples"
    /// Scenarios already truncated in this run.
    private static var started: Set<String> = []

    /// Records one subject's latencies (nanoseconds, trial order) for `scenario` (a file-name-safe slug such
    /// as `config-drift`).
    static func record(scenario: String, subject: String, nanoseconds: [UInt64]) {
        var text = ""
        for (trial, value) in nanoseconds.enumerated() {
            text += "\(csvField(subject)),\(trial + 1),\(nanosecondMilliseconds(value))\n"
        }
        append(scenario: scenario, header: "subject,trial,milliseconds\n", rows: text)
    }

    /// Records one point of a throughput curve: `value` `unit` (e.g. `lines/s`) for `subject` at size `n`.
    static func recordPoint(scenario: String, subject: String, n: Int, value: Double, unit: String) {
        append(
            scenario: scenario,
            header: "subject,n,value,unit\n",
            rows: "\(csvField(subject)),\(n),\(value),\(csvField(unit))\n"
        )
    }

    /// Writes `rows` to the scenario's file, truncating it (and writing `header`) the first time in this run.
    private static func append(scenario: String, header: String, rows: String) {
        mkdir(benchmarksDirectory + "/out", 0o755)
        mkdir(directory, 0o755)
        let path = "\(directory)/\(scenario).csv"
        let fresh = started.insert(scenario).inserted
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (fresh ? O_TRUNC : O_APPEND)
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else {
            print("vigil-bench: Failed to write samples to '\(path)': errno \(errno)")
            return
        }
        defer { close(fd) }
        let bytes = Array(((fresh ? header : "") + rows).utf8)
        do {
            try bytes.withUnsafeBytes { raw in try Syscall.writeAll(fd, raw) }
        } catch {
            print("vigil-bench: Failed to write samples to '\(path)': \(error)")
        }
    }

    /// Milliseconds with six decimals: the samples keep the nanosecond clock's resolution (the tables' three
    /// decimals would put every sub-0.1 ms trial on a handful of steps).
    private static func nanosecondMilliseconds(_ nanoseconds: UInt64) -> String {
        let fraction = String(nanoseconds % 1_000_000)
        return "\(nanoseconds / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    /// A CSV field, quoted when it holds a comma, quote or newline.
    private static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        var quoted = "\""
        for character in text { quoted += character == "\"" ? "\"\"" : String(character) }
        return quoted + "\""
    }
}
