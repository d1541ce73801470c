import Logging
// Prepared input for Vigil's hot paths, shared by the malloc-counting benchmarks (Benchmarks/HotPath) and the
// instruction counter (vigil-instructions, run under callgrind), so both measure the same bytes and rules.
// One `runOnce()`/`matchOnce()`/… call is `eventsPerIteration` events.
public import Synchronization
import VigilCore
import VigilDaemon
import VigilRules

#if canImport(Glibc)
import Glibc
#endif

/// Events per benchmark iteration.
public let eventsPerIteration = 1_000

/// Sibling files whose attribute changes make the inotify events; they are cycled so that consecutive
/// events never name the same file (the kernel merges an event identical to the one queued just before it).
let siblingCount = 16

/// Keeps `value` alive as far as the optimiser can tell (package-benchmark's `blackHole`, without that
/// dependency, so the instruction counter links no benchmark runtime).
@inline(never)
public func opaqueSink<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

/// 1,000 lines in the seed's unified format, one buffer, and 1,000 log rules compiled into one database.
public final class LogLineFixture: @unchecked Sendable {
    // @unchecked Sendable: used by the benchmark thread only, between setup and teardown.
    nonisolated(unsafe) public static var shared: LogLineFixture?
    // nonisolated(unsafe): set in setup, read by the benchmark body, cleared in teardown; never concurrently.

    let buffer: UnsafeMutableRawBufferPointer
    /// Start and length of each line in `buffer`.
    let lines: [(start: Int, count: Int)]
    let set: LogPatternSet
    let scratch: LogPatternSet.Scratch
    let masker = SecretMasker(detectors: Set(SecretDetector.allCases))

    public init() throws {
        let services = ["UPLOAD", "ANALYTICS", "PROCESSING", "POSTGRES"]
        let messages = [
            "SSL certificate verification disabled for endpoint: https://api.analytics-partner.com",
            "Connected to external API with insecure flag", "Job event-17 finished in 4203 ms: 1200 records, 0 errors",
            "connection received: host=10.0.3.17 port=5432", "Request GET /api/v2/orders/4711 status=200 duration=12ms",
            "Query q-3f2a1b on table events returned 1842 rows in 35 ms", "event-421 failed code=503 after retry",
        ]
        var text: [UInt8] = []
        var lines: [(start: Int, count: Int)] = []
        for i in 0..<eventsPerIteration {
            let line = Array(
                "2025-04-13 07:\(10 + i % 50):\(10 + i % 49) \(services[i % 4]) INFO [Component\(i % 7)] \(messages[i % 7])"
                    .utf8
            )
            lines.append((text.count, line.count))
            text += line
        }
        buffer = .allocate(byteCount: text.count, alignment: 64)
        buffer.copyBytes(from: text)
        self.lines = lines
        let location = SourceLocation(file: "bench.yaml", line: 1, column: 1)
        let rules = (0..<1000).map { index in
            let expression =
                index == 0
                ? "SSL certificate verification disabled for endpoint: (?<endpoint>[^ ]+)"
                : "event-\(index) (ok|failed) code=[0-9]{3}"
            return Rule(
                id: "r\(index)",
                location: location,
                severity: .warning,
                description: nil,
                message: MessageTemplate(segments: [], source: ""),
                subject: .log(
                    LogSubject(
                        paths: [PathPattern(raw: "/var/log/a.log", directory: "/var/log", name: .exact("a.log"))],
                        patterns: [
                            LogPattern(
                                expression: expression,
                                caseless: false,
                                location: location,
                                columnOffset: nil,
                                captureNames: index == 0 ? ["endpoint"] : []
                            )
                        ]
                    )
                ),
                actions: [],
                enabled: true,
                tags: []
            )
        }
        set = try LogPatternSet(rules: rules)
        scratch = set.makeScratch()
    }

    deinit { buffer.deallocate() }

    /// Matches every line; returns the sum of the matched rule indexes (so nothing is optimised away).
    @inline(never)
    public func matchOnce() -> Int {
        var sum = 0
        for line in lines {
            set.match(
                UnsafeRawBufferPointer(rebasing: buffer[line.start..<(line.start + line.count)]),
                scratch: scratch
            ) { sum &+= $0 + 1 }
        }
        return sum
    }

    /// Masks every line in place; returns the bytes changed (0: the lines are clean).
    @inline(never)
    public func maskOnce() -> Int {
        var changed = 0
        var state = SecretMasker.State()
        for line in lines {
            changed += masker.mask(
                UnsafeMutableRawBufferPointer(rebasing: buffer[line.start..<(line.start + line.count)]),
                state: &state
            )
        }
        return changed
    }
}

/// A prebuilt buffer of inotify records, laid out as `read(2)` returns them, and a ring to push them through.
public final class DecodeFixture: @unchecked Sendable {
    // @unchecked Sendable: used by the benchmark thread only, between setup and teardown.
    nonisolated(unsafe) public static var shared: DecodeFixture?
    // nonisolated(unsafe): set in setup, read by the benchmark body, cleared in teardown; never concurrently.

    let buffer: UnsafeMutableRawBufferPointer
    let ring = SPSCRing<FileEventRecord>(capacity: 1024)

    public init() {
        // The kernel pads each name with NULs to a multiple of sizeof(struct inotify_event) (16 bytes).
        let names = (0..<siblingCount).map { Array("other-\($0)".utf8) }
        let recordSize = InotifyDecoder.headerSize + 16
        buffer = .allocate(byteCount: recordSize * eventsPerIteration, alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        for i in 0..<eventsPerIteration {
            let offset = i * recordSize
            buffer.storeBytes(of: Int32(1), toByteOffset: offset, as: Int32.self)
            buffer.storeBytes(of: UInt32(0x4), toByteOffset: offset + 4, as: UInt32.self)  // IN_ATTRIB
            buffer.storeBytes(of: UInt32(0), toByteOffset: offset + 8, as: UInt32.self)
            buffer.storeBytes(of: UInt32(16), toByteOffset: offset + 12, as: UInt32.self)
            for (j, byte) in names[i % siblingCount].enumerated() {
                buffer[offset + InotifyDecoder.headerSize + j] = byte
            }
        }
    }

    deinit { buffer.deallocate() }

    /// Decodes the 1,000 records, pushes each into the ring, then consumes them all.
    @inline(never)
    public func runOnce() {
        var pushed = 0
        let decoded: Int
        do {
            decoded = try InotifyDecoder.decode(UnsafeRawBufferPointer(buffer), readTime: 1) { record in
                if case .pushed = ring.push(record) { pushed += 1 }
            }
        } catch {
            fatalError("decode-and-ring: the prebuilt buffer did not decode: \(error)")
        }
        var checksum: UInt32 = 0
        let consumed = ring.consume { record, _ in checksum &+= record.mask &+ UInt32(record.nameLength) }
        precondition(decoded == eventsPerIteration && pushed == decoded && consumed == decoded)
        opaqueSink(checksum)
    }
}

/// 1,000 proc connector messages back to back, each `nlmsghdr` + `cn_msg` + `proc_event` (an exit), laid out
/// as `ProcEventDecoder` documents the kernel's bytes (the C shim pins those offsets with static asserts).
public final class ProcDecodeFixture: @unchecked Sendable {
    // @unchecked Sendable: used by the benchmark thread only, between setup and teardown.
    nonisolated(unsafe) public static var shared: ProcDecodeFixture?
    // nonisolated(unsafe): set in setup, read by the benchmark body, cleared in teardown; never concurrently.

    let buffer: UnsafeMutableRawBufferPointer

    public init() {
        let size = ProcEventDecoder.messageSize
        buffer = .allocate(byteCount: size * eventsPerIteration, alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        for i in 0..<eventsPerIteration {
            let o = i * size
            let pid = Int32(1000 + i)
            // nlmsghdr: length, type NLMSG_DONE (3), flags, sequence, port 0 (the kernel).
            buffer.storeBytes(of: UInt32(size), toByteOffset: o, as: UInt32.self)
            buffer.storeBytes(of: UInt16(3), toByteOffset: o + 4, as: UInt16.self)
            // cn_msg: idx CN_IDX_PROC (1), val CN_VAL_PROC (1), seq, ack, len, flags.
            let c = o + ProcEventDecoder.netlinkHeaderSize
            buffer.storeBytes(of: UInt32(1), toByteOffset: c, as: UInt32.self)
            buffer.storeBytes(of: UInt32(1), toByteOffset: c + 4, as: UInt32.self)
            buffer.storeBytes(of: UInt32(i), toByteOffset: c + 8, as: UInt32.self)
            buffer.storeBytes(of: UInt16(ProcEventDecoder.procEventSize), toByteOffset: c + 16, as: UInt16.self)
            // proc_event: what PROC_EVENT_EXIT, cpu, timestamp, then pid, tgid, exit code (SIGKILL), exit
            // signal (SIGCHLD), parent pid, parent tgid.
            let e = c + ProcEventDecoder.connectorHeaderSize
            buffer.storeBytes(of: UInt32(0x8000_0000), toByteOffset: e, as: UInt32.self)
            buffer.storeBytes(of: UInt64(i), toByteOffset: e + 8, as: UInt64.self)
            buffer.storeBytes(of: pid, toByteOffset: e + 16, as: Int32.self)
            buffer.storeBytes(of: pid, toByteOffset: e + 20, as: Int32.self)
            buffer.storeBytes(of: Int32(9), toByteOffset: e + 24, as: Int32.self)
            buffer.storeBytes(of: Int32(17), toByteOffset: e + 28, as: Int32.self)
            buffer.storeBytes(of: Int32(1), toByteOffset: e + 32, as: Int32.self)
            buffer.storeBytes(of: Int32(1), toByteOffset: e + 36, as: Int32.self)
        }
    }

    deinit { buffer.deallocate() }

    /// Decodes the 1,000 messages.
    @inline(never)
    public func runOnce() {
        var checksum: Int32 = 0
        var exits = 0
        let outcome = ProcEventDecoder.decode(UnsafeRawBufferPointer(buffer), readTime: 1) { record in
            checksum &+= record.tgid &+ (record.terminatingSignal ?? 0)
            if record.kind == .exit { exits += 1 }
        }
        precondition(outcome.events == eventsPerIteration && exits == eventsPerIteration, "proc-decode: \(outcome)")
        opaqueSink(checksum)
    }
}

/// A running `Daemon` on a temporary root whose one rule watches `/etc/app/app.conf`, plus open descriptors
/// on sibling files whose mode changes make inotify events the daemon reads and routes but no rule names.
public final class PipelineFixture: @unchecked Sendable {
    // @unchecked Sendable: used by the benchmark thread only, between setup and teardown.
    nonisolated(unsafe) public static var shared: PipelineFixture?
    // nonisolated(unsafe): set in setup, read by the benchmark body, cleared in teardown; never concurrently.

    static let rules = """
        - rule: bench-app-ssl-verification-disabled
          description: Benchmark rule, the seed's rule on another path.
          severity: critical
          config: /etc/app/app.conf
          when: { key: verify_ssl, is: false }
          message: "SSL verification disabled in {path} ({key} = {value})"
          then: [alert]

        """

    let root: String
    let daemon: Daemon
    /// Read-only descriptors on `other-0` … `other-15`, in a buffer so the loop touches no Swift array.
    let siblings: UnsafeMutableBufferPointer<CInt>
    /// `DIR/etc/app/app.conf` as a C string, and the two versions of the config, built once.
    let configPath: UnsafeMutablePointer<CChar>
    let secureConfig: UnsafeMutableRawBufferPointer
    let insecureConfig: UnsafeMutableRawBufferPointer
    private var nextMode: Int = 0
    private var insecureNext = true

    public init() throws {
        var template = Array("/tmp/vigil-hotpath-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw BenchError("Failed to create a temporary root under '/tmp': errno \(errno)")
        }
        root = String(cString: made)
        for dir in ["/etc", "/etc/app"] where mkdir(root + dir, 0o755) != 0 {
            throw BenchError("Failed to create '\(root + dir)': errno \(errno)")
        }
        configPath = strdup(root + "/etc/app/app.conf")!
        secureConfig = Self.bytes("# benchmark\nverify_ssl = true\n")
        insecureConfig = Self.bytes("# benchmark\nverify_ssl = false\n")
        siblings = .allocate(capacity: siblingCount)
        for i in 0..<siblingCount {
            let fd = open(root + "/etc/app/other-\(i)", O_RDONLY | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw BenchError("Failed to create '\(root)/etc/app/other-\(i)': errno \(errno)") }
            siblings[i] = fd
        }
        Self.writeFile(configPath, secureConfig)

        let compilation = RuleCompiler.compile(sources: [(file: "hotpath.yaml", text: Self.rules)])
        guard let ruleSet = compilation.ruleSet else {
            throw BenchError(
                "Failed to compile the benchmark rules:\n\(compilation.diagnostics.map(\.description).joined(separator: "\n"))"
            )
        }
        let logger = Logger(label: "vigil-hotpath", factory: { _ in SwiftLogNoOpLogHandler() })
        do {
            daemon = try Daemon(
                options: .init(ruleSet: ruleSet, root: root, extraAlertFiles: [root + "/alerts.jsonl"]),
                logger: logger
            )
        } catch {
            throw BenchError("Failed to start the daemon: \(error)")
        }
        try daemon.start()
    }

    /// Makes `count` IN_ATTRIB events (fchmod on the siblings, in turn) and spins until the matcher has read
    /// them all. Allocates nothing itself: descriptors and modes are plain integers.
    @inline(never)
    public func generateSiblingEvents(_ count: Int) {
        let target = daemon.counters.fileEvents.load(ordering: .acquiring) + UInt64(count)
        for _ in 0..<count {
            let mode: mode_t = (nextMode / siblingCount) & 1 == 0 ? 0o640 : 0o644
            if fchmod(siblings[nextMode % siblingCount], mode) != 0 { fatalError("fchmod failed: errno \(errno)") }
            nextMode &+= 1
        }
        awaitCounter(daemon.counters.fileEvents, reaching: target, what: "inotify events")
    }

    /// Rewrites the config in place, flipping `verify_ssl`, and spins until the worker handed the alert
    /// (firing or resolved) to the sink.
    @inline(never)
    public func rewriteConfigAndAwaitAlert() {
        let target = daemon.counters.alerts.load(ordering: .acquiring) + 1
        Self.writeFile(configPath, insecureNext ? insecureConfig : secureConfig)
        insecureNext.toggle()
        awaitCounter(daemon.counters.alerts, reaching: target, what: "alerts")
    }

    public func close() {
        daemon.stop()
        for i in 0..<siblingCount {
            Glibc.close(siblings[i])
            unlink(root + "/etc/app/other-\(i)")
        }
        siblings.deallocate()
        unlink(configPath)
        free(configPath)
        secureConfig.deallocate()
        insecureConfig.deallocate()
        unlink(root + "/alerts.jsonl")
        rmdir(root + "/etc/app")
        rmdir(root + "/etc")
        rmdir(root)
    }

    private static func bytes(_ text: String) -> UnsafeMutableRawBufferPointer {
        let utf8 = Array(text.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: utf8.count, alignment: 1)
        buffer.copyBytes(from: utf8)
        return buffer
    }

    /// open(O_TRUNC), one write, close: an in-place save, as `echo … >` does.
    private static func writeFile(_ path: UnsafePointer<CChar>, _ content: UnsafeMutableRawBufferPointer) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { fatalError("Failed to write the config: errno \(errno)") }
        guard write(fd, content.baseAddress, content.count) == content.count else {
            fatalError("Failed to write the config: errno \(errno)")
        }
        Glibc.close(fd)
    }

    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// A benchmark setup failure, one line.
public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Yield-spins until `counter` reaches `target`; traps after 10 s (an event was lost: a bug to see).
/// Allocates nothing.
@inline(__always)
public func awaitCounter(_ counter: borrowing Atomic<UInt64>, reaching target: UInt64, what: StaticString) {
    var spins = 0
    var deadline: UInt64 = 0
    while counter.load(ordering: .acquiring) < target {
        sched_yield()
        spins += 1
        if spins & 4095 == 0 {
            let now = PipelineFixture.monotonicNanoseconds()
            if deadline == 0 {
                deadline = now + 10_000_000_000
            } else if now > deadline {
                fatalError("waited 10 s for \(what): \(counter.load(ordering: .relaxed)) of \(target)")
            }
        }
    }
}
