import Logging
import Synchronization
import VigilDaemon
import VigilRules

#if canImport(Glibc)
import Glibc
#endif

/// An in-process daemon following one log with 100 patterns that never match the seed's ordinary lines and
/// a sanitize rule; `appendLines()` appends 1,000 such lines and spins until the log watcher has read them.
public final class LogFixture: @unchecked Sendable {
    // @unchecked Sendable: used by the benchmark thread only, between setup and teardown.
    nonisolated(unsafe) public static var shared: LogFixture?
    // nonisolated(unsafe): set in setup, read by the benchmark body, cleared in teardown; never concurrently.

    static var rules: String {
        let patterns = (0..<100).map { "    - 'ERROR \\[Component\($0)\\] failure code=(?<code>[0-9]+)'" }
        return """
            - rule: bench-log-errors
              severity: error
              log: /var/log/app/app.log
              match:
            \(patterns.joined(separator: "\n"))
            - rule: bench-log-sanitize
              severity: info
              log: /var/log/app/app.log
              then: [sanitize]

            """
    }

    let root: String
    let daemon: Daemon
    let writer: CInt
    /// 1,000 lines in the seed's format (none matches, none holds a secret), written with one write(2).
    let batch: UnsafeMutableRawBufferPointer

    public init() throws {
        var template = Array("/tmp/vigil-hotpath-log-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw BenchError("Failed to create a temporary root under '/tmp': errno \(errno)")
        }
        root = String(cString: made)
        for dir in ["/var", "/var/log", "/var/log/app"] where mkdir(root + dir, 0o755) != 0 {
            throw BenchError("Failed to create '\(root + dir)': errno \(errno)")
        }
        writer = open(root + "/var/log/app/app.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard writer >= 0 else { throw BenchError("Failed to create the log: errno \(errno)") }
        var text = ""
        for i in 0..<eventsPerIteration {
            text += "2025-04-13 07:15:\(10 + i % 50) UPLOAD INFO [Uploader] batch \(i) uploaded: \(1000 + i) records\n"
        }
        let bytes = Array(text.utf8)
        batch = .allocate(byteCount: bytes.count, alignment: 16)
        batch.copyBytes(from: bytes)

        let rules = Self.rules
        let compilation = RuleCompiler.compile(sources: [(file: "hotpath-log.yaml", text: rules)])
        guard let ruleSet = compilation.ruleSet else {
            throw BenchError(
                "Failed to compile the benchmark rules:\n\(compilation.diagnostics.map(\.description).joined(separator: "\n"))"
            )
        }
        let logger = Logger(label: "vigil-hotpath", factory: { _ in SwiftLogNoOpLogHandler() })
        do {
            var options = Daemon.Options(ruleSet: ruleSet, root: root, extraAlertFiles: [root + "/alerts.jsonl"])
            options.processRules = false
            daemon = try Daemon(options: options, logger: logger)
        } catch {
            throw BenchError("Failed to start the daemon: \(error)")
        }
        try daemon.start()
    }

    /// Appends the 1,000 lines and spins until the log watcher has read every one.
    @inline(never)
    public func appendLines() {
        let target = daemon.counters.logLines.load(ordering: .acquiring) + UInt64(eventsPerIteration)
        if write(writer, batch.baseAddress, batch.count) != batch.count { fatalError("write failed: errno \(errno)") }
        awaitCounter(daemon.counters.logLines, reaching: target, what: "log lines")
    }

    public func close() {
        daemon.stop()
        Glibc.close(writer)
        batch.deallocate()
        for path in ["/var/log/app/app.log", "/alerts.jsonl", "/var/lib/vigil/logs.state"] { unlink(root + path) }
        for dir in ["/var/log/app", "/var/lib/vigil", "/var/lib", "/var/log", "/var", ""] { rmdir(root + dir) }
    }
}
