import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

/// One alert sink, by its index in the sink masks.
enum SinkSlot {
    /// Written in place by the worker (and, for files, by each producer directly): stdout, JSON Lines.
    case local(AlertSink)
    /// Appended to a durable spool that the sink's own thread delivers from: syslog, e-mail, webhooks,
    /// Alertmanager.
    case remote(DeliverySink)
}

/// The action worker: one thread that takes requests from the matcher threads and carries them out, so
/// that slow work (a write to a full disk) never stalls matching. Sinks that talk to other programs or
/// servers are not written here: their alerts are appended to each one's spool, and its own thread
/// delivers them (`DeliverySink`).
///
/// Each producer (the file matcher, the process watcher) has its own SPSC ring (an `AlertOutlet`); all
/// share one doorbell. Within one producer, alerts keep their order.
final class ActionWorker: @unchecked Sendable {
    // @unchecked Sendable: `slots`, `outlets` and the spool watch are used only by the worker thread after
    // start.

    /// Rung by a producer when its ring goes from empty to non-empty.
    let doorbell: EventFD
    let shutdown: EventFD
    let counters: PipelineCounters
    let slots: [SinkSlot]
    /// The local sinks (slots that are `.local`), for retries and closing.
    let sinks: [AlertSink]
    private var outlets: [AlertOutlet] = []
    private let logger: Logger
    private let host: String
    /// Bit i set: sink i holds lines it could not write yet (producers writing directly wait for it).
    let backlog = SinkBacklog()
    /// Bumped when a JSON Lines sink's file was renamed away or deleted (log rotation) or on SIGHUP: every
    /// writer of a file sink reopens it by name before its next write.
    let fileGeneration: SinkFileGeneration
    /// Watches the directories of the JSON Lines sinks for their files being renamed away or deleted.
    private let fileWatch: SinkFileWatch?
    /// Per slot: what the worker knows of a remote sink's spool (filling, full).
    private var spoolWatch: [SpoolWatch]
    /// Remote sinks appended to since their doorbell was last rung.
    private var pendingDoorbells: UInt64 = 0
    /// For the watchdog: even while the worker waits for work (nothing pending), odd while it works; moves
    /// on by 2 with every batch handed to the sinks. Odd and unchanged across a watchdog interval: stuck.
    let progress = Atomic<UInt64>(0)

    init(slots: [SinkSlot], host: String, counters: PipelineCounters, logger: Logger) throws {
        self.slots = slots
        self.host = host
        self.counters = counters
        self.logger = logger
        sinks = slots.compactMap { slot in
            if case .local(let sink) = slot { return sink }
            return nil
        }
        spoolWatch = Array(repeating: SpoolWatch(), count: slots.count)
        doorbell = try EventFD()
        shutdown = try EventFD()
        ledger = try FiringLedger()
        fileGeneration = SinkFileGeneration()
        let paths: [String] = sinks.compactMap { sink in
            if case .file(let path) = sink.target { return path }
            return nil
        }
        fileWatch = paths.isEmpty ? nil : SinkFileWatch(paths: paths, logger: logger)
        for sink in sinks { sink.follow(fileGeneration) }
    }

    /// Dedup windows and reminders; set before the outlets are made (which consult it).
    var board: NoticeBoard?
    /// Which sinks take which severities; set before the outlets are made.
    var severityMasks = SeverityMasks()
    /// The conditions firing now, consulted by every outlet.
    let ledger: FiringLedger
    /// Hits per rule and recent alerts, noted by every outlet.
    let book = AlertBook()
    /// Runs the programs of `exec:` actions; set before the watchers' outlets are made (which hand it the
    /// alerts of rules with `exec:`).
    var exec: ExecRunner?

    /// A new producer's outlet; call before `run()` starts. `consultsBoard` is false only for the board's
    /// own outlet (its summaries must not be held back by the windows they summarise).
    func makeOutlet(capacity: Int = 1024, consultsBoard: Bool = true) throws -> AlertOutlet {
        // The producer's own descriptors of the file sinks; a sink that cannot be opened twice goes through
        // the worker only.
        let direct: [AlertSink?] = slots.map { slot in
            guard case .local(let sink) = slot, sink.acceptsDirectWrites, case .file(let path) = sink.target else {
                return nil
            }
            let own = AlertSink(name: sink.name, target: .file(path: path), logger: logger)
            own.follow(fileGeneration)
            return (try? own.open()) != nil ? own : nil
        }
        let outlet = try AlertOutlet(
            capacity: capacity,
            workerDoorbell: doorbell,
            counters: counters,
            direct: direct,
            workerBacklog: backlog,
            board: consultsBoard ? board : nil,
            severityMasks: severityMasks,
            ledger: ledger,
            book: book,
            exec: exec
        )
        outlets.append(outlet)
        return outlet
    }

    /// Closes the producers' own sink descriptors (after their threads stopped).
    func closeOutlets() {
        for outlet in outlets { outlet.close() }
    }

    /// Publishes which sinks hold a backlog, for producers that write directly.
    private func publishBacklog() {
        var mask: UInt64 = 0
        for (index, slot) in slots.enumerated() where index < 64 {
            if case .local(let sink) = slot, sink.hasBacklog { mask |= 1 << UInt64(index) }
        }
        backlog.mask.store(mask, ordering: .releasing)
    }

    private var allRingsEmpty: Bool { outlets.allSatisfy { $0.ring.isEmptyForConsumer() } }

    private static let doorbellTag: UInt64 = 1
    private static let shutdownTag: UInt64 = 2
    private static let fileWatchTag: UInt64 = 3

    /// The thread body: runs until `shutdown` rings and the ring is drained.
    func run() {
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.add(doorbell.descriptor, tag: Self.doorbellTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
            if let fileWatch { try epoll.add(fileWatch.descriptor, tag: Self.fileWatchTag) }
        } catch {
            preconditionFailure("ActionWorker: epoll setup failed: \(error)")
        }
        var stopping = false
        progress.add(1, ordering: .releasing)
        while true {
            doorbell.drain()
            drain()
            if stopping && allRingsEmpty { break }
            if !allRingsEmpty { continue }
            // With lines held back by a failing sink, or a filling spool to watch drain, look again once a
            // second instead of sleeping until the next alert.
            let timeout: CInt =
                sinks.contains(where: { $0.hasBacklog }) || spoolWatch.contains(where: { $0.filling }) ? 1000 : -1
            progress.add(1, ordering: .releasing)
            do {
                try epoll.wait(timeoutMilliseconds: timeout) { tag in
                    if tag == Self.shutdownTag { stopping = true }
                    if tag == Self.fileWatchTag, let fileWatch, fileWatch.readMovedAway() {
                        fileGeneration.bump()
                    }
                }
            } catch {
                preconditionFailure("ActionWorker: epoll_wait failed: \(error)")
            }
            progress.add(1, ordering: .releasing)
            if timeout > 0 {
                for sink in sinks where sink.hasBacklog { sink.flushBacklog(counters: counters) }
                checkDrainedSpools()
            }
            publishBacklog()
        }
        for sink in sinks where sink.hasBacklog {
            if !sink.flushBacklog(counters: counters) {
                logger.error("Failed to deliver every alert to sink '\(sink.name)' before exit; they are lost")
            }
        }
    }

    private func drain() {
        for outlet in outlets { drain(outlet) }
        publishBacklog()
        ringRemoteDoorbells()
    }

    /// Wakes the threads of the remote sinks appended to, once per drained batch instead of per record.
    private func ringRemoteDoorbells() {
        while pendingDoorbells != 0 {
            let index = pendingDoorbells.trailingZeroBitCount
            pendingDoorbells &= ~(UInt64(1) << UInt64(index))
            if case .remote(let sink) = slots[index] { sink.doorbell.ring() }
        }
    }

    /// Hands one alert line to the sinks in `mask`: local sinks are written (or hold it in their backlog),
    /// remote sinks get it appended to their spool. Returns true when a local sink now holds a backlog.
    private func dispatch(_ payload: UnsafeRawBufferPointer, mask: UInt64) -> Bool {
        var heldBack = false
        var bits = mask
        while bits != 0 {
            let index = bits.trailingZeroBitCount
            bits &= ~(UInt64(1) << UInt64(index))
            guard index < slots.count else { break }
            switch slots[index] {
            case .local(let sink):
                sink.write(payload, counters: counters)
                heldBack = heldBack || sink.hasBacklog
            case .remote(let sink):
                spool(payload, to: sink)
            }
        }
        return heldBack
    }

    private func drain(_ outlet: AlertOutlet) {
        let ring = outlet.ring
        while true {
            let n = ring.consume(limit: 256) { frame, payload in
                switch frame.kind {
                case .alert:
                    let heldBack = dispatch(payload, mask: frame.sinkMask)
                    // Published before the ring slot is released, so a producer that sees its ring drained
                    // also sees the backlog and keeps sending that sink's lines here (order).
                    if heldBack { publishBacklog() }
                    if frame.eventTime != 0 {
                        counters.recordAlertLatency(Clock.monotonicNanoseconds() &- frame.eventTime)
                    }
                }
                outlet.consumedFrames.add(1, ordering: .releasing)
            }
            if ring.consumerShouldWakeProducer() { outlet.spaceDoorbell.ring() }
            ringRemoteDoorbells()
            if n == 0 { return }
            progress.add(2, ordering: .releasing)
        }
    }
}

// MARK: Remote sinks' spools

extension ActionWorker {
    /// What the worker knows of one remote sink's spool.
    struct SpoolWatch {
        /// `vigil.spool_filling` is firing (the spool passed 80 % of its limit; resolves under 50 %).
        var filling = false
        /// `vigil.spool_full` is firing: alerts are not being spooled (full, or a write error).
        var troubled = false
        /// Alerts not spooled in the current trouble.
        var missed: UInt64 = 0
        /// Realtime seconds when the trouble began, and when the filling began: each names its alert's id.
        var troubledSince: Int64 = 0
        var fillingSince: Int64 = 0
    }

    /// Appends one line to a remote sink's spool, and watches the spool's level: filling and full are
    /// alerts of Vigil's own, on the other sinks. A line that cannot be spooled is counted and reported,
    /// never dropped silently: it is in the local sinks, and the alerts say so.
    fileprivate func spool(_ payload: UnsafeRawBufferPointer, to sink: DeliverySink) {
        let index = sink.index
        let result = sink.spool.append(payload)
        guard result == .appended else {
            sink.notSpooled.add(1, ordering: .relaxed)
            counters.sinkFailures.add(1, ordering: .relaxed)
            spoolWatch[index].missed &+= 1
            if !spoolWatch[index].troubled {
                spoolWatch[index].troubled = true
                spoolWatch[index].troubledSince = Clock.realtime().seconds
                let reason: String
                if case .failed(let text) = result {
                    reason = text
                } else {
                    reason =
                        "its spool \(sink.spool.directory) is full (spool: \(sink.spec.delivery.spoolMaximumBytes / 1024) KiB)"
                }
                logger.error(
                    "Alert sink '\(sink.name)' cannot take more alerts: \(reason); new alerts for it stay in the other sinks until it drains"
                )
                emitOwn(
                    rule: "vigil-spool-full",
                    instance: sink.name,
                    state: .firing,
                    version: "\(spoolWatch[index].troubledSince)",
                    kind: "vigil.spool_full",
                    message:
                        "Alert sink '\(sink.name)' (\(sink.kindName)) is not taking new alerts: \(reason); they are counted and kept in the other sinks only, until its receiver drains the spool",
                    labels: ["sink": sink.name, "reason": reason],
                    mask: sink.healthMask
                )
            }
            return
        }
        pendingDoorbells |= UInt64(1) << UInt64(index)
        if spoolWatch[index].troubled {
            let missed = spoolWatch[index].missed
            spoolWatch[index].troubled = false
            spoolWatch[index].missed = 0
            emitOwn(
                rule: "vigil-spool-full",
                instance: sink.name,
                state: .resolved,
                version: "\(spoolWatch[index].troubledSince)",
                kind: "vigil.spool_full",
                message:
                    "Alert sink '\(sink.name)' (\(sink.kindName)) takes alerts again; \(missed) alerts were not spooled for it meanwhile and are only in the other sinks",
                labels: ["sink": sink.name, "missed": String(missed)],
                mask: sink.healthMask
            )
        }
        let limit = sink.spec.delivery.spoolMaximumBytes
        let bytes = sink.spool.depth.bytes
        if !spoolWatch[index].filling && bytes * 5 >= limit * 4 {
            spoolWatch[index].filling = true
            spoolWatch[index].fillingSince = Clock.realtime().seconds
            emitOwn(
                rule: "vigil-spool-filling",
                instance: sink.name,
                state: .firing,
                version: "\(spoolWatch[index].fillingSince)",
                kind: "vigil.spool_filling",
                message:
                    "The spool of alert sink '\(sink.name)' (\(sink.kindName)) is \(bytes * 100 / max(1, limit)) % full (\(bytes / 1024) of \(limit / 1024) KiB): its receiver is not keeping up or is down",
                labels: ["sink": sink.name, "bytes": String(bytes), "limit": String(limit)],
                mask: sink.healthMask
            )
        }
    }

    /// Called by the worker loop: resolves `vigil.spool_filling` once a spool drained under half its limit.
    func checkDrainedSpools() {
        for (index, slot) in slots.enumerated() where spoolWatch[index].filling {
            guard case .remote(let sink) = slot else { continue }
            let limit = sink.spec.delivery.spoolMaximumBytes
            let bytes = sink.spool.depth.bytes
            guard bytes * 2 < limit else { continue }
            spoolWatch[index].filling = false
            emitOwn(
                rule: "vigil-spool-filling",
                instance: sink.name,
                state: .resolved,
                version: "\(spoolWatch[index].fillingSince)",
                kind: "vigil.spool_filling",
                message:
                    "The spool of alert sink '\(sink.name)' (\(sink.kindName)) is back under half its limit (\(bytes / 1024) of \(limit / 1024) KiB)",
                labels: ["sink": sink.name, "bytes": String(bytes), "limit": String(limit)],
                mask: sink.healthMask
            )
        }
    }

    /// An alert of the worker's own, dispatched at once (the worker is every ring's consumer, so it cannot
    /// push into one).
    private func emitOwn(
        rule: String,
        instance: String,
        state: AlertState,
        version: String,
        kind: String,
        message: String,
        labels: [String: String],
        mask: UInt64
    ) {
        let record = AlertOutlet.ruleRecord(
            host: host,
            rule: rule,
            // The same severity firing and resolved: Alertmanager pairs the two by their labels.
            severity: kind == "vigil.spool_filling" ? "warning" : "error",
            instance: instance,
            state: state,
            version: version,
            kind: kind,
            path: nil,
            message: message,
            labels: labels
        )
        var line: [UInt8] = []
        record.encodeJSONLine(into: &line)
        counters.alerts.add(1, ordering: .relaxed)
        _ = line.withUnsafeBytes { dispatch($0, mask: mask) }
    }
}
