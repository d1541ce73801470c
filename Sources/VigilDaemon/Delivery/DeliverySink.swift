import Logging
import Synchronization
import SystemPackage
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A sink that talks to another program or server (syslog, sendmail, a webhook, Alertmanager): its durable
/// spool, its transport and a thread of its own, so that a slow or dead receiver never blocks the pipeline
/// or another sink.
///
/// ```
/// vigil-action ──append──► spool (segment files, write-ahead) ──read──► vigil-sink-NAME ──► transport
///                  └──doorbell──────────────────────────────────────────────┘   ack ◄── delivered
/// ```
/// Every alert for the sink is appended to the spool before anything else happens to it, so a SIGKILL at
/// any moment loses nothing: the next start reads the spool from the last acknowledgement (at-least-once;
/// receivers drop repeats by the record's `id`). A failed attempt syncs the spool to disk and retries with
/// a doubling backoff; a failure that persists raises `vigil.sink_failing` on the other sinks, resolved when
/// delivery works again. A batch the receiver refuses for good is set aside in `rejected.jsonl`, alerted,
/// and delivery goes on.
final class DeliverySink: @unchecked Sendable {
    // @unchecked Sendable: `transport` and the failure state are used only by this sink's thread; the
    // appender state only by the action worker's thread; the rest is immutable, atomic or the spool's.

    let name: String
    /// This sink's bit in the sink masks.
    let index: Int
    let spec: SinkSpec
    let spool: Spool
    /// Rung by the action worker after it appended records.
    let doorbell: EventFD
    let shutdown: EventFD
    /// Records this sink's receiver accepted, refused for good, and attempts that failed.
    let delivered = Atomic<UInt64>(0)
    let rejected = Atomic<UInt64>(0)
    let failedAttempts = Atomic<UInt64>(0)
    /// Alerts that could not be spooled (spool full or a write error); they are in the local sinks only.
    let notSpooled = Atomic<UInt64>(0)
    /// How long delivered alerts waited, from their event to the receiver's acceptance (`/metrics`).
    let deliveryLatency = LatencyHistogram()

    private let transport: any DeliveryTransport
    private let host: String
    private let logger: Logger
    /// Where this sink's own health alerts go: every other sink (a failing sink cannot report itself).
    let healthMask: UInt64
    private var outlet: AlertOutlet?

    /// The kind of receiver, for messages: `syslog`, `email`, `webhook`, `alertmanager`.
    let kindName: String

    init(
        index: Int,
        spec: SinkSpec,
        spool: Spool,
        transport: any DeliveryTransport,
        host: String,
        allSinksMask: UInt64,
        logger: Logger
    ) throws(Errno) {
        self.index = index
        self.name = spec.name
        self.spec = spec
        self.spool = spool
        self.transport = transport
        self.host = host
        self.logger = logger
        healthMask = allSinksMask & ~(UInt64(1) << UInt64(index))
        kindName = Self.kindName(spec.kind)
        doorbell = try EventFD()
        shutdown = try EventFD()
    }

    /// The outlet for this sink's health alerts; set before `run()` starts.
    func attach(outlet: AlertOutlet) { self.outlet = outlet }

    static func kindName(_ kind: SinkKind) -> String {
        switch kind {
        case .stdout: "stdout"
        case .jsonl: "jsonl"
        case .syslog: "syslog"
        case .email: "email"
        case .webhook: "webhook"
        case .alertmanager: "alertmanager"
        }
    }

    // MARK: The sink's thread

    private static let shutdownDrainNanoseconds: UInt64 = 2_000_000_000
    private static let doorbellTag: UInt64 = 1
    private static let shutdownTag: UInt64 = 2

    /// The thread body: delivers what the spool holds, oldest first, until `shutdown` rings. What is left
    /// stays in the spool (synced to disk) for the next start.
    func run() {
        // A sendmail this thread starts is Vigil's own action, not a process for the process rules.
        ActionThreads.registerCurrent()
        defer { ActionThreads.unregisterCurrent() }
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.add(doorbell.descriptor, tag: Self.doorbellTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
        } catch {
            preconditionFailure("DeliverySink: epoll setup failed: \(error)")
        }
        var failure = FailureState(initialBackoff: spec.delivery.retryInitialMilliseconds)
        var stopping = false
        // After shutdown: what the last drain spooled is still delivered while the receiver answers, for at
        // most this long; the rest waits in the spool for the next start.
        var drainDeadline: UInt64 = 0
        var lastSpoolProblem: String?
        delivery: while true {
            _ = doorbell.drain()
            let now = Clock.monotonicNanoseconds()
            if stopping {
                if drainDeadline == 0 { drainDeadline = now + Self.shutdownDrainNanoseconds }
                if now >= drainDeadline { break }
            }
            if !stopping, let due = transport.nextMaintenance, due <= now, let outcome = transport.maintain(now: now) {
                if case .retry(let reason) = outcome {
                    stopping = handleFailure(reason, &failure)
                    continue
                }
            }
            let lines = spool.read(upTo: max(1, transport.batchLimit))
            if let problem = spool.problem, problem != lastSpoolProblem {
                logger.error("Alert sink '\(name)': its spool: \(problem)")
                lastSpoolProblem = problem
            }
            if lines.isEmpty {
                if stopping { break }
                var timeout: CInt = -1
                if let due = transport.nextMaintenance {
                    let now = Clock.monotonicNanoseconds()
                    timeout = due <= now ? 0 : CInt(clamping: (due - now) / 1_000_000 + 1)
                }
                do {
                    try epoll.wait(timeoutMilliseconds: timeout) { tag in
                        if tag == Self.shutdownTag { stopping = true }
                    }
                } catch {
                    preconditionFailure("DeliverySink: epoll_wait failed: \(error)")
                }
                continue
            }
            // Records are decoded back from their lines (the spool keeps exactly what the JSON Lines sinks
            // got). A line that does not decode (a damaged spool) is set aside, not retried forever.
            var records: [AlertRecord] = []
            records.reserveCapacity(lines.count)
            for line in lines {
                guard
                    let record = try? AlertRecord(
                        jsonLine: line.last == UInt8(ascii: "\n") ? line.dropLast() : line[...]
                    )
                else { break }
                records.append(record)
            }
            if records.isEmpty {
                spool.setAside([lines[0]], reason: "the spooled line is not a valid alert record")
                spool.acknowledge(1)
                logger.error(
                    "Alert sink '\(name)': a spooled line in \(spool.directory) is not a valid alert record; set aside in rejected.jsonl"
                )
                continue
            }
            let batch = Array(lines.prefix(records.count))
            switch transport.deliver(records, lines: batch) {
            case .delivered:
                spool.acknowledge(records.count)
                delivered.add(UInt64(records.count), ordering: .relaxed)
                recordDeliveryLatency(records)
                if failure.failing { recovered(&failure) }
                failure.reset(initialBackoff: spec.delivery.retryInitialMilliseconds)
            case .rejected(let reason):
                if let problem = spool.setAside(batch, reason: reason) {
                    logger.error("Alert sink '\(name)': cannot keep refused alerts in rejected.jsonl: \(problem)")
                }
                spool.acknowledge(records.count)
                rejected.add(UInt64(records.count), ordering: .relaxed)
                refused(records, reason: reason)
            case .retry(let reason):
                if stopping {
                    failedAttempts.add(1, ordering: .relaxed)
                    logger.notice(
                        "Alert sink '\(name)' (\(kindName)) failed while stopping: \(reason); \(spool.depth.records) alerts stay in its spool for the next start"
                    )
                    break delivery
                }
                stopping = handleFailure(reason, &failure)
                continue
            }
        }
        spool.sync()
        transport.close()
    }

    /// What the thread knows about the current run of failures.
    private struct FailureState {
        var consecutive = 0
        var backoffMilliseconds: Int
        /// Realtime seconds of the first failure of this run (0: not failing).
        var since: Int64 = 0
        /// True once `vigil.sink_failing` fired for this run.
        var failing = false

        init(initialBackoff: Int) { backoffMilliseconds = max(1, initialBackoff) }

        mutating func reset(initialBackoff: Int) {
            consecutive = 0
            backoffMilliseconds = max(1, initialBackoff)
            since = 0
            failing = false
        }
    }

    /// Syncs the spool (what could not be delivered is now on disk), raises the health alert once the
    /// failure persists (a second failure in a row: a single blip is not worth an alert), and waits the
    /// backoff. Returns true when `shutdown` rang during the wait.
    private func handleFailure(_ reason: String, _ failure: inout FailureState) -> Bool {
        failedAttempts.add(1, ordering: .relaxed)
        if let problem = spool.sync() {
            logger.error(
                "Alert sink '\(name)': cannot sync its spool: \(problem); the held alerts may not survive a power loss"
            )
        }
        failure.consecutive += 1
        if failure.consecutive == 1 {
            failure.since = Clock.realtime().seconds
            logger.warning(
                "Alert sink '\(name)' (\(kindName)) failed: \(reason); \(spool.depth.records) alerts held in its spool \(spool.directory), retrying"
            )
        }
        if failure.consecutive >= 2 && !failure.failing {
            failure.failing = true
            let depth = spool.depth
            sendHealth(
                rule: "vigil-sink-failing",
                state: .firing,
                version: "\(failure.since)",
                kind: "vigil.sink_failing",
                message:
                    "Alert sink '\(name)' (\(kindName)) is failing: \(reason); \(depth.records) alerts are held in its spool (\(spool.directory)) and retried with backoff up to \(Self.duration(spec.delivery.retryMaximumMilliseconds))",
                labels: ["sink": name, "sink_type": kindName, "held": String(depth.records), "reason": reason]
            )
        }
        let wait = failure.backoffMilliseconds
        failure.backoffMilliseconds = min(max(1, spec.delivery.retryMaximumMilliseconds), wait * 2)
        // Wait on the shutdown descriptor alone: new records (the doorbell) do not end a backoff.
        var pfd = pollfd(fd: shutdown.descriptor, events: Int16(POLLIN), revents: 0)
        let deadline = Clock.monotonicNanoseconds() + UInt64(wait) * 1_000_000
        while true {
            let now = Clock.monotonicNanoseconds()
            if now >= deadline { return false }
            let rc = poll(&pfd, 1, CInt(clamping: (deadline - now) / 1_000_000 + 1))
            if rc > 0 { return true }
        }
    }

    private func recovered(_ failure: inout FailureState) {
        let seconds = max(0, Clock.realtime().seconds - failure.since)
        logger.notice("Alert sink '\(name)' (\(kindName)) delivers again after \(seconds) s of failures")
        sendHealth(
            rule: "vigil-sink-failing",
            state: .resolved,
            version: "\(failure.since)",
            kind: "vigil.sink_failing",
            message:
                "Alert sink '\(name)' (\(kindName)) delivers again after \(seconds) s; the alerts held in its spool are being delivered in order",
            labels: ["sink": name, "sink_type": kindName]
        )
    }

    private func refused(_ records: [AlertRecord], reason: String) {
        logger.error(
            "Alert sink '\(name)' (\(kindName)) refused \(records.count) alert(s) for good: \(reason); kept in \(spool.directory)/rejected.jsonl"
        )
        sendHealth(
            rule: "vigil-alert-rejected",
            state: .event,
            version: records[0].id,
            kind: "vigil.alert_rejected",
            message:
                "Alert sink '\(name)' (\(kindName)) refused \(records.count) alert(s) for good: \(reason); they are kept in \(spool.directory)/rejected.jsonl and in the other sinks",
            labels: ["sink": name, "sink_type": kindName, "count": String(records.count), "first_id": records[0].id]
        )
    }

    private func sendHealth(
        rule: String,
        state: AlertState,
        version: String,
        kind: String,
        message: String,
        labels: [String: String]
    ) {
        guard let outlet, healthMask != 0 else { return }
        outlet.sendRuleAlert(
            host: host,
            rule: rule,
            // One severity per kind, firing and resolved alike: Alertmanager pairs the two by their labels.
            severity: kind == "vigil.alert_rejected" ? "warning" : "error",
            instance: name,
            state: state,
            version: version,
            kind: kind,
            path: nil,
            message: message,
            labels: labels,
            sinkMask: healthMask,
            eventTime: 0
        )
    }

    /// One line for the stop log: what this sink delivered, refused, failed and holds.
    /// Adds each delivered record's wait (now − its event time; clamped at 0 when the clock stepped back).
    private func recordDeliveryLatency(_ records: [AlertRecord]) {
        let now = Clock.realtime()
        let nowNanoseconds = now.seconds &* 1_000_000_000 &+ Int64(now.nanoseconds)
        for record in records {
            let then = record.timeSeconds &* 1_000_000_000 &+ Int64(record.timeNanoseconds)
            deliveryLatency.record(nanoseconds: UInt64(max(0, nowNanoseconds &- then)))
        }
    }

    var tally: String {
        "\(name): \(delivered.load(ordering: .relaxed)) delivered, \(rejected.load(ordering: .relaxed)) refused, \(failedAttempts.load(ordering: .relaxed)) failed attempts, \(notSpooled.load(ordering: .relaxed)) not spooled, \(spool.depth.records) left in its spool"
    }

    /// `90 s`, `5 min`: a retry period for messages.
    static func duration(_ milliseconds: Int) -> String {
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000) min" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        return "\(milliseconds) ms"
    }
}
