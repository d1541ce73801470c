import Synchronization
import VigilCore
import VigilRules
import VigilSystem

/// One producer's end of the path to the sinks: encodes an alert record once into a reused buffer, writes
/// it itself to the local file sinks (its own `O_APPEND` descriptors: no thread hop, which costs 20–150 µs
/// of wake-up on a busy 2-core host), and pushes it into this producer's SPSC ring for the rest, ringing the
/// worker's doorbell when the ring was empty. Each matcher thread (files, processes) owns one outlet; the
/// worker drains every ring.
///
/// Nothing is dropped and order is kept per sink: a line that cannot be written directly (a full disk) goes
/// to the worker, which holds it and retries; from then on this producer sends that sink's lines to the
/// worker too, until the worker has written everything it was given and holds no backlog for the sink.
/// A full ring is never a drop: the producer waits for the worker to release space (C4).
final class AlertOutlet {
    let ring: SPSCRing<ActionFrame>
    /// Rung by the worker when it released space in `ring` and this producer said it would wait.
    let spaceDoorbell: EventFD
    private let workerDoorbell: EventFD
    private let counters: PipelineCounters
    private var scratch: [UInt8] = []
    /// This producer's own descriptors of the file sinks, by sink index (nil: through the worker only).
    private let direct: [AlertSink?]
    private let directMask: UInt64
    /// Sinks whose lines go through the worker until it has caught up (a direct write failed).
    private var degraded: UInt64 = 0
    /// Bit i: the worker holds lines it could not write yet for sink i.
    private let workerBacklog: SinkBacklog
    /// Frames this producer pushed into `ring` (producer's count), and frames the worker has taken from it
    /// and handed to the sinks (written, or held in a sink's backlog). A producer that must know its alerts
    /// reached the sinks (the log watcher, before it records an offset as done) compares the two.
    private(set) var pushedFrames: UInt64 = 0
    let consumedFrames = Atomic<UInt64>(0)
    /// Dedup windows and reminders, for the rules that have them; nil for the board's own outlet.
    private let board: NoticeBoard?
    /// Which sinks take which severities (`min_severity:`).
    private let severityMasks: SeverityMasks
    /// The conditions firing now (shared by every outlet): a condition already firing is not sent again.
    private let ledger: FiringLedger?
    /// Hits per rule and the recent alerts, for `vigil status` and `/metrics`.
    private let book: AlertBook?
    /// Runs the programs of `exec:` actions (alerts whose mask has `SinkMasks.execBit`); nil for the
    /// runner's own outlet.
    private let exec: ExecRunner?

    init(
        capacity: Int,
        workerDoorbell: EventFD,
        counters: PipelineCounters,
        direct: [AlertSink?] = [],
        workerBacklog: SinkBacklog,
        board: NoticeBoard? = nil,
        severityMasks: SeverityMasks = SeverityMasks(),
        ledger: FiringLedger? = nil,
        book: AlertBook? = nil,
        exec: ExecRunner? = nil
    ) throws {
        self.exec = exec
        self.board = board
        self.ledger = ledger
        self.book = book
        self.severityMasks = severityMasks
        ring = SPSCRing<ActionFrame>(capacity: capacity)
        spaceDoorbell = try EventFD()
        self.workerDoorbell = workerDoorbell
        self.counters = counters
        self.direct = direct
        var mask: UInt64 = 0
        for (index, sink) in direct.enumerated() where sink != nil && index < 64 { mask |= 1 << UInt64(index) }
        directMask = mask
        self.workerBacklog = workerBacklog
        scratch.reserveCapacity(4096)
    }

    /// Closes this producer's own descriptors (after its thread stopped).
    func close() {
        for sink in direct { sink?.close() }
    }

    /// Judges `record` and hands the line to the worker for the sinks in `sinkMask`. `eventTime` is the
    /// monotonic time the causing kernel event was read (0 when none), for the latency counters.
    ///
    /// With `SinkMasks.execBit` in the mask, the rule's `exec:` programs are handed to the `ExecRunner` for
    /// what the ledger and the dedup windows admit (a condition already firing runs nothing again); under
    /// `--dry-run` the record gets a `dry_run` label instead, and goes to every output.
    func send(_ record: AlertRecord, sinkMask requested: UInt64, eventTime: UInt64) {
        if let ledger, record.state != .event, !ledger.admit(record) { return }
        book?.note(record)
        let runsExec = requested & SinkMasks.execBit != 0 && exec != nil
        var sinkMask = requested & SinkMasks.everySink & severityMasks.sinks(for: record)
        guard sinkMask != 0 || runsExec else { return }
        if let board, board.governs(record.rule), !board.admit(record, sinkMask: sinkMask) { return }
        if runsExec, let exec {
            if let text = exec.submit(record) {
                var shown = record
                shown.labels[DryRun.label] = record.labels[DryRun.label].map { "\($0); \(text)" } ?? text
                if sinkMask == 0 { sinkMask = SinkMasks.everySink & severityMasks.sinks(for: record) }
                return send(encoded: shown, sinkMask: sinkMask, eventTime: eventTime)
            }
            guard sinkMask != 0 else { return }
        }
        send(encoded: record, sinkMask: sinkMask, eventTime: eventTime)
    }

    /// Encodes `record` and writes it to the sinks of `sinkMask`: the direct ones here, the rest through the
    /// worker.
    private func send(encoded record: AlertRecord, sinkMask: UInt64, eventTime: UInt64) {
        scratch.removeAll(keepingCapacity: true)
        record.encodeJSONLine(into: &scratch)
        counters.alerts.add(1, ordering: .relaxed)
        // Back to direct writes once the worker has taken all we pushed and holds nothing for those sinks.
        if degraded != 0 && ring.isDrainedForProducer()
            && workerBacklog.mask.load(ordering: .acquiring) & degraded == 0
        {
            degraded = 0
        }
        var viaWorker = sinkMask
        var candidates = sinkMask & directMask & ~degraded
        while candidates != 0 {
            let index = candidates.trailingZeroBitCount
            let bit: UInt64 = 1 << UInt64(index)
            candidates &= ~bit
            let written = scratch.withUnsafeBytes { direct[index]!.writeDirectly($0) }
            if written {
                viaWorker &= ~bit
            } else {
                degraded |= bit
                counters.sinkFailures.add(1, ordering: .relaxed)
            }
        }
        if viaWorker == 0 {
            if eventTime != 0 { counters.recordAlertLatency(Clock.monotonicNanoseconds() &- eventTime) }
            return
        }
        let frame = ActionFrame(kind: .alert, sinkMask: viaWorker, eventTime: eventTime)
        while true {
            let result = scratch.withUnsafeBytes { line in
                ring.push(frame, payloadCount: line.count) { slot in slot.copyMemory(from: line) }
            }
            switch result {
            case .pushed(let wasEmpty):
                pushedFrames &+= 1
                if wasEmpty { workerDoorbell.ring() }
                return
            case .full:
                counters.ringFullWaits.add(1, ordering: .relaxed)
                if ring.producerWillWait() {
                    workerDoorbell.ring()
                    spaceDoorbell.wait()
                }
            }
        }
    }
}

extension AlertOutlet {
    /// True when every alert sent before the frame count `pushed` (a value of `pushedFrames`) is in the
    /// sinks' files or pipes, none held back by a failing sink: alerts written directly are written when
    /// `send` returns; the rest once the worker took them and no sink holds a backlog.
    func delivered(upTo pushed: UInt64) -> Bool {
        consumedFrames.load(ordering: .acquiring) >= pushed && workerBacklog.mask.load(ordering: .acquiring) == 0
            && degraded == 0
    }

    /// Sends one of Vigil's own alerts (events lost, limits reached): an event about the host itself, to
    /// `sinkMask` (every sink), with a fingerprint from the alert's name and the host.
    func sendVigilAlert(
        host: String,
        rule: String,
        severity: String,
        kind: String,
        message: String,
        version: String,
        sinkMask: UInt64,
        eventTime: UInt64
    ) {
        sendRuleAlert(
            host: host,
            rule: rule,
            severity: severity,
            instance: host,
            state: .event,
            version: version,
            kind: kind,
            path: nil,
            message: message,
            sinkMask: sinkMask,
            eventTime: eventTime
        )
    }

    /// Sends an alert of `rule` about `instance` (a path, a process): the fingerprint names the rule and the
    /// instance, the id the fingerprint, the state and `version` (what caused it), the time is now.
    func sendRuleAlert(
        host: String,
        rule: String,
        severity: String,
        instance: String,
        state: AlertState,
        version: String,
        kind: String,
        path: String?,
        message: String,
        labels: [String: String] = [:],
        sinkMask: UInt64,
        eventTime: UInt64
    ) {
        let record = Self.ruleRecord(
            host: host,
            rule: rule,
            severity: severity,
            instance: instance,
            state: state,
            version: version,
            kind: kind,
            path: path,
            message: message,
            labels: labels
        )
        send(record, sinkMask: sinkMask, eventTime: eventTime)
    }

    /// The record of an alert of `rule` about `instance`, timed now: the fingerprint names the rule and the
    /// instance, the id the fingerprint, the state and `version`.
    static func ruleRecord(
        host: String,
        rule: String,
        severity: String,
        instance: String,
        state: AlertState,
        version: String,
        kind: String,
        path: String?,
        message: String,
        labels: [String: String]
    ) -> AlertRecord {
        let fingerprint = AlertIdentity.fingerprint(rule: rule, instance: instance)
        let time = Clock.realtime()
        return AlertRecord(
            id: AlertIdentity.id(fingerprint: fingerprint, state: state, version: version),
            timeSeconds: time.seconds,
            timeNanoseconds: time.nanoseconds,
            host: host,
            rule: rule,
            severity: severity,
            state: state,
            kind: kind,
            path: path,
            message: message,
            fingerprint: fingerprint,
            labels: labels
        )
    }
}

/// Which sinks take alerts of each severity (`min_severity:` of each sink). Vigil's own alerts (kinds
/// `vigil.*`: events lost, a sink failing, summaries, the heartbeat) go wherever they are sent.
struct SeverityMasks: Sendable {
    /// Indexed critical, error, warning, info.
    private var masks: (UInt64, UInt64, UInt64, UInt64) = (.max, .max, .max, .max)

    init() {}

    /// From each sink's minimum severity, in sink-index order.
    init(minimums: [Severity]) {
        var masks: [UInt64] = [0, 0, 0, 0]
        for (index, minimum) in minimums.enumerated() where index < 64 {
            for (i, severity) in [Severity.critical, .error, .warning, .info].enumerated() where severity >= minimum {
                masks[i] |= UInt64(1) << UInt64(index)
            }
        }
        self.masks = (masks[0], masks[1], masks[2], masks[3])
    }

    /// The sinks `record` may go to: by the first byte of its severity, which tells the four apart.
    @inline(__always)
    func sinks(for record: AlertRecord) -> UInt64 {
        if record.kind.utf8.starts(with: "vigil.".utf8) { return .max }
        switch record.severity.utf8.first {
        case UInt8(ascii: "c"): return masks.0
        case UInt8(ascii: "e"): return masks.1
        case UInt8(ascii: "w"): return masks.2
        default: return masks.3
        }
    }
}

/// Which sinks the action worker holds unwritten lines for (bit i: sink i), shared with the producers.
final class SinkBacklog: Sendable {
    let mask = Atomic<UInt64>(0)
}
