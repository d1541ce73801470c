import Logging
import Synchronization
import VigilCore
import VigilSystem

/// The action worker: one thread that takes requests from the matcher threads and carries them out, so
/// that slow work (a write to a full disk, later SMTP and HTTP) never stalls matching.
///
/// Each producer (the file matcher, the process watcher) has its own SPSC ring (an `AlertOutlet`); all
/// share one doorbell. Within one producer, alerts keep their order.
final class ActionWorker: @unchecked Sendable {
    // @unchecked Sendable: `sinks` and `outlets` are used only by the worker thread after start.

    /// Rung by a producer when its ring goes from empty to non-empty.
    let doorbell: EventFD
    let shutdown: EventFD
    let counters: PipelineCounters
    let sinks: [AlertSink]
    private var outlets: [AlertOutlet] = []
    private let logger: Logger
    /// Bit i set: sink i holds lines it could not write yet (producers writing directly wait for it).
    let backlog = SinkBacklog()

    init(sinks: [AlertSink], counters: PipelineCounters, logger: Logger) throws {
        self.sinks = sinks
        self.counters = counters
        self.logger = logger
        doorbell = try EventFD()
        shutdown = try EventFD()
    }

    /// A new producer's outlet; call before `run()` starts.
    func makeOutlet(capacity: Int = 1024) throws -> AlertOutlet {
        // The producer's own descriptors of the file sinks; a sink that cannot be opened twice goes through
        // the worker only.
        let direct: [AlertSink?] = sinks.map { sink in
            guard sink.acceptsDirectWrites, case .file(let path) = sink.target else { return nil }
            let own = AlertSink(name: sink.name, target: .file(path: path), logger: logger)
            return (try? own.open()) != nil ? own : nil
        }
        let outlet = try AlertOutlet(
            capacity: capacity,
            workerDoorbell: doorbell,
            counters: counters,
            direct: direct,
            workerBacklog: backlog
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
        for (index, sink) in sinks.enumerated() where index < 64 && sink.hasBacklog { mask |= 1 << UInt64(index) }
        backlog.mask.store(mask, ordering: .releasing)
    }

    private var allRingsEmpty: Bool { outlets.allSatisfy { $0.ring.isEmptyForConsumer() } }

    private static let doorbellTag: UInt64 = 1
    private static let shutdownTag: UInt64 = 2

    /// The thread body: runs until `shutdown` rings and the ring is drained.
    func run() {
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.add(doorbell.descriptor, tag: Self.doorbellTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
        } catch {
            preconditionFailure("ActionWorker: epoll setup failed: \(error)")
        }
        var stopping = false
        while true {
            doorbell.drain()
            drain()
            if stopping && allRingsEmpty { break }
            if !allRingsEmpty { continue }
            // With lines held back by a failing sink, retry once a second instead of sleeping forever.
            let timeout: CInt = sinks.contains(where: { $0.hasBacklog }) ? 1000 : -1
            do {
                try epoll.wait(timeoutMilliseconds: timeout) { tag in
                    if tag == Self.shutdownTag { stopping = true }
                }
            } catch {
                preconditionFailure("ActionWorker: epoll_wait failed: \(error)")
            }
            if timeout > 0 { for sink in sinks where sink.hasBacklog { sink.flushBacklog(counters: counters) } }
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
    }

    private func drain(_ outlet: AlertOutlet) {
        let ring = outlet.ring
        while true {
            let n = ring.consume(limit: 256) { frame, payload in
                switch frame.kind {
                case .alert:
                    var heldBack = false
                    for (index, sink) in sinks.enumerated() where frame.sinkMask & (1 << UInt64(index)) != 0 {
                        sink.write(payload, counters: counters)
                        heldBack = heldBack || sink.hasBacklog
                    }
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
            if n == 0 { return }
        }
    }
}
