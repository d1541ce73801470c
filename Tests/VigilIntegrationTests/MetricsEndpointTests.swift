import Testing
import VigilHarness
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `vigil run` with a log rule on a temporary root, its metrics and status endpoints on: the TCP listener
/// on a port the kernel picks (read back from the daemon's log), the status socket and the textfile in the
/// run's directory.
final class ObservedDaemon {
    static let rules = """
        - rule: failed-login
          severity: warning
          log: /var/log/auth.log
          match: 'Failed password for (?<user>\\S+)'

        """

    let dir: TempDirectory
    let daemon: DaemonProcess
    var socket: String { dir.path + "/run/status.sock" }
    var textfile: String { dir.path + "/run/vigil.prom" }
    var logFile: String { dir.path + "/root/var/log/auth.log" }

    /// `prepare` gets the run directory (where the socket and the textfile go) before the daemon starts.
    init(
        label: String,
        rules: String = ObservedDaemon.rules,
        extraArguments: [String] = [],
        prepare: (String) -> Void = { _ in }
    ) throws {
        dir = TempDirectory(label)
        for sub in ["/root", "/root/var", "/root/var/log", "/root/run", "/run", "/work"] {
            mkdir(dir.path + sub, 0o755)
        }
        dir.write("rules.yaml", rules)
        dir.write("root/var/log/auth.log", "")
        prepare(dir.path + "/run")
        daemon = try DaemonProcess(
            executable: VigilBinary.path,
            arguments: [
                "--rules", dir.path + "/rules.yaml", "--root", dir.path + "/root", "--alerts",
                dir.path + "/alerts.jsonl",
                "--metrics-listen", "127.0.0.1:0", "--status-socket", dir.path + "/run/status.sock",
                "--metrics-textfile", dir.path + "/run/vigil.prom",
            ] + extraArguments,
            workDirectory: dir.path + "/work"
        )
    }

    /// The `HOST:PORT` the daemon logged ("Metrics served on http://127.0.0.1:PORT/metrics").
    var metricsAddress: String? {
        let log = daemon.log()
        guard let start = log.firstRange(of: "Metrics served on http://") else { return nil }
        return String(log[start.upperBound...].prefix { $0 != "/" })
    }

    /// Appends `count` lines that the rule matches.
    func appendFailedLogins(_ count: Int, from first: Int = 0) {
        let fd = open(logFile, O_WRONLY | O_APPEND)
        defer { close(fd) }
        for i in first..<first + count {
            let line = Array("sshd[1]: Failed password for user\(i) from 10.0.0.1\n".utf8)
            _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
    }

    /// Waits (on inotify, with a deadline) until the alert file holds `count` lines.
    func waitForAlerts(_ count: Int, timeoutMilliseconds: Int = 20_000) -> Bool {
        let bytes = waitForFile(dir.path + "/alerts.jsonl", timeoutMilliseconds: timeoutMilliseconds) { content in
            content.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) } >= count
        }
        return (bytes?.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) } ?? 0) >= count
    }

    func stop() {
        daemon.stop()
        dir.remove()
    }
}

/// `promtool`, from Debian's `prometheus` package, when installed.
enum Promtool {
    static let path: String? = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { access($0, X_OK) == 0 }

    /// `promtool check metrics < file`: exit code and output.
    static func check(_ file: String) throws -> (code: Int32, out: String, err: String) {
        try Command.run("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", path ?? "promtool", file])
    }
}

/// Polls `condition` until it holds or `seconds` pass. Only for state no event marks (a remote sink's
/// delivery counter, bumped after the receiver has the record); everything else waits on inotify.
func waitUntil(seconds: Double = 20, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Clock.monotonicNanoseconds() + UInt64(seconds * 1e9)
    while Clock.monotonicNanoseconds() < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}

/// Issue 8's metrics, from outside: `GET /metrics` on the loopback listener passes `promtool check metrics`,
/// counts what happened, and the textfile is written whole.
@Suite(
    .enabled(if: VigilBinary.exists, "build the vigil binary first (swift build), or set VIGIL_BINARY"),
    .timeLimit(.minutes(2))
)
struct MetricsEndpointTests {
    static func get(_ url: String, unixSocket: String? = nil) -> HTTPResponse? {
        let client = HTTPClient(timeoutMilliseconds: 10_000, bodyLimit: 4 << 20, unixSocketPath: unixSocket)
        defer { client.close() }
        return try? client.get(url: url).get()
    }

    @Test func scrapeCountsRuleHitsAndPassesPromtool() throws {
        let observed = try ObservedDaemon(label: "metrics")
        defer { observed.stop() }
        let address = try #require(observed.metricsAddress, "no bound address in the log: \(observed.daemon.log())")
        observed.appendFailedLogins(3)
        // A hit is counted before its alert line is written: once the three lines are in, so are the counts.
        #expect(observed.waitForAlerts(3), "\(observed.daemon.log())")
        let scrape = Self.get("http://\(address)/metrics")?.text ?? ""
        #expect(scrape.contains("vigil_rule_hits_total{rule=\"failed-login\"} 3"), "\(scrape)")
        for family in [
            "vigil_build_info{version=", "vigil_start_time_seconds ", "vigil_events_total{source=\"log\"} 3",
            "vigil_alerts_total{severity=\"warning\",state=\"event\"} 3",
            "vigil_action_latency_seconds_bucket{le=\"+Inf\"}",
            "vigil_rule_last_fire_timestamp_seconds{rule=\"failed-login\"}", "vigil_inotify_watches{watcher=\"files\"}",
            "vigil_reloads_total{result=\"failed\"} 0", "vigil_firing_conditions 0",
        ] {
            #expect(scrape.contains(family), "missing \(family)")
        }
        // Every family has its HELP and TYPE.
        let types = scrape.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.count
        let helps = scrape.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.count
        #expect(types == helps && types >= 20, "\(types) TYPE lines, \(helps) HELP lines")

        if Promtool.path != nil {
            observed.dir.write("scrape.prom", scrape)
            let result = try Promtool.check(observed.dir.path + "/scrape.prom")
            #expect(result.code == 0, "promtool: \(result.out)\(result.err)")
        }
    }

    @Test func answersOnlyGetOfItsTwoPaths() throws {
        let observed = try ObservedDaemon(label: "metrics-paths")
        defer { observed.stop() }
        let address = try #require(observed.metricsAddress)
        let metrics = try #require(Self.get("http://\(address)/metrics"))
        #expect(metrics.status == 200)
        #expect(Self.get("http://\(address)/nothing-here")?.status == 404)
        let client = HTTPClient(timeoutMilliseconds: 10_000)
        defer { client.close() }
        let post = try client.post(url: "http://\(address)/metrics", headers: [], body: Array("x".utf8)).get()
        #expect(post.status == 405)
        // The same server answers /status on TCP and on the Unix socket.
        #expect(Self.get("http://\(address)/status")?.text.hasPrefix("{\"version\":") == true)
        #expect(Self.get("http://localhost/status", unixSocket: observed.socket)?.status == 200)
    }

    @Test(.enabled(if: Promtool.path != nil, "promtool is missing: apt-get install prometheus"))
    func textfileIsReplacedWholeAndPassesPromtool() throws {
        let observed = try ObservedDaemon(label: "metrics-textfile")
        defer { observed.dir.remove() }
        var before = stat()
        waitForFile(observed.textfile, timeoutMilliseconds: 20_000)
        #expect(stat(observed.textfile, &before) == 0, "no textfile: \(observed.daemon.log())")
        let first = try Promtool.check(observed.textfile)
        #expect(first.code == 0, "\(first)")
        observed.appendFailedLogins(2)
        #expect(observed.waitForAlerts(2), "\(observed.daemon.log())")
        // Stopping writes it a last time: a new file renamed over the old (another inode), never rewritten in
        // place, with the final counts, and no temporary file left behind.
        #expect(observed.daemon.stop() == 0)
        var after = stat()
        #expect(stat(observed.textfile, &after) == 0)
        #expect(after.st_ino != before.st_ino, "the textfile was rewritten in place")
        #expect(access(observed.textfile + ".tmp", F_OK) != 0)
        let text = ProcFile.readText(observed.textfile) ?? ""
        #expect(text.contains("vigil_rule_hits_total{rule=\"failed-login\"} 2"), "\(text)")
        let last = try Promtool.check(observed.textfile)
        #expect(last.code == 0, "\(last)")
        // The status socket is gone with the daemon.
        #expect(access(observed.socket, F_OK) != 0)
    }

    /// A remote sink's series: its delivery histogram counts what its receiver got, its spool drains.
    @Test func remoteSinkSeriesFollowDelivery() throws {
        var receiver: SyslogReceiver?
        let observed = try ObservedDaemon(
            label: "metrics-sink",
            rules: ObservedDaemon.rules + """
                - sink: file
                  type: jsonl
                  path: /var/log/alerts.jsonl
                - sink: sys
                  type: syslog
                  socket: /run/syslog.sock

                """
        ) { run in
            receiver = try? SyslogReceiver(path: run + "/../root/run/syslog.sock")
        }
        defer {
            observed.stop()
            receiver?.close()
        }
        let syslog = try #require(receiver)
        syslog.keepDraining()
        let address = try #require(observed.metricsAddress)
        observed.appendFailedLogins(4)
        #expect(syslog.waitForDatagrams(count: 4, timeoutSeconds: 20), "\(observed.daemon.log())")
        var scrape = ""
        let counted = waitUntil {
            scrape = Self.get("http://\(address)/metrics")?.text ?? ""
            return scrape.contains("vigil_sink_delivery_latency_seconds_count{sink=\"sys\"} 4")
        }
        #expect(counted, "\(scrape)")
        #expect(scrape.contains("vigil_sink_delivered_total{sink=\"sys\"} 4"))
        #expect(scrape.contains("vigil_sink_delivery_latency_seconds_bucket{sink=\"sys\",le=\"+Inf\"} 4"))
        #expect(scrape.contains("vigil_spool_records{sink=\"sys\"} 0"))
        #expect(scrape.contains("vigil_sink_failures_total{sink=\"sys\"} 0"))
        if Promtool.path != nil {
            observed.dir.write("scrape.prom", scrape)
            let result = try Promtool.check(observed.dir.path + "/scrape.prom")
            #expect(result.code == 0, "promtool: \(result.out)\(result.err)")
        }
    }

    @Test func nonLoopbackListenIsRefusedWithTheWayToExposeIt() throws {
        let dir = TempDirectory("metrics-refused")
        defer { dir.remove() }
        dir.write("rules.yaml", ObservedDaemon.rules)
        for address in ["0.0.0.0:9733", "192.0.2.1:9733", "[::]:9733"] {
            let result = try VigilBinary.run([
                "run", "--rules", dir.path + "/rules.yaml", "--root", dir.path, "--metrics-listen", address,
            ])
            #expect(result.code == 1, "\(address): \(result)")
            #expect(result.err.contains("loopback only"), "\(result.err)")
            #expect(result.err.contains("reverse proxy") && result.err.contains("--metrics-textfile"))
            #expect(!result.err.contains("USAGE"))
        }
    }
}
