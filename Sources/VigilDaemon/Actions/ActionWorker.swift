import Logging
import Synchronization
import VigilCore
import VigilSystem

/// The action worker: one thread that takes requests from the matcher and carries them out, so that slow
/// work (a write to a full disk, later SMTP and HTTP) never stalls matching.
final class ActionWorker: @unchecked Sendable {
    // @unchecked Sendable: `sinks` is used only by the worker thread after start.

    let ring: SPSCRing<ActionFrame>
    let doorbell: EventFD
    let shutdown: EventFD
    let counters: PipelineCounters
    let sinks: [AlertSink]
    /// Rung when the worker released ring space and the matcher is waiting for it.
    let spaceDoorbell: EventFD
    private let logger: Logger

    init(ring: SPSCRing<ActionFrame>, sinks: [AlertSink], counters: PipelineCounters, logger: Logger) throws {
        self.ring = ring
        self.sinks = sinks
        self.counters = counters
        self.logger = logger
        doorbell = try EventFD()
        shutdown = try EventFD()
        spaceDoorbell = try EventFD()
    }

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
            if stopping && ring.isEmptyForConsumer() { break }
            if !ring.isEmptyForConsumer() { continue }
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
        }
        for sink in sinks where sink.hasBacklog {
            if !sink.flushBacklog(counters: counters) {
                logger.error("Failed to deliver every alert to sink '\(sink.name)' before exit; they are lost")
            }
        }
    }

    private func drain() {
        while true {
            let n = ring.consume(limit: 256) { frame, payload in
                switch frame.kind {
                case .alert:
                    counters.alerts.add(1, ordering: .relaxed)
                    for (index, sink) in sinks.enumerated() where frame.sinkMask & (1 << UInt64(index)) != 0 {
                        sink.write(payload, counters: counters)
                    }
                    if frame.eventTime != 0 {
                        counters.recordAlertLatency(Clock.monotonicNanoseconds() &- frame.eventTime)
                    }
                }
            }
            if ring.consumerShouldWakeProducer() { spaceDoorbell.ring() }
            if n == 0 { return }
        }
    }
}
