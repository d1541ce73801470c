import Synchronization
import VigilCore
import VigilSystem

/// One producer's end of the path to the action worker: encodes an alert record once into a reused buffer
/// and pushes the line into this producer's SPSC ring, ringing the worker's doorbell when the ring was
/// empty. Each matcher thread (files, processes) owns one outlet; the worker drains every ring.
///
/// A full ring is never a drop: the producer waits for the worker to release space (C4).
final class AlertOutlet {
    let ring: SPSCRing<ActionFrame>
    /// Rung by the worker when it released space in `ring` and this producer said it would wait.
    let spaceDoorbell: EventFD
    private let workerDoorbell: EventFD
    private let counters: PipelineCounters
    private var scratch: [UInt8] = []

    init(capacity: Int, workerDoorbell: EventFD, counters: PipelineCounters) throws {
        ring = SPSCRing<ActionFrame>(capacity: capacity)
        spaceDoorbell = try EventFD()
        self.workerDoorbell = workerDoorbell
        self.counters = counters
        scratch.reserveCapacity(4096)
    }

    /// Encodes `record` and hands the line to the worker for the sinks in `sinkMask`. `eventTime` is the
    /// monotonic time the causing kernel event was read (0 when none), for the latency counters.
    func send(_ record: AlertRecord, sinkMask: UInt64, eventTime: UInt64) {
        guard sinkMask != 0 else { return }
        scratch.removeAll(keepingCapacity: true)
        record.encodeJSONLine(into: &scratch)
        let frame = ActionFrame(kind: .alert, sinkMask: sinkMask, eventTime: eventTime)
        while true {
            let result = scratch.withUnsafeBytes { line in
                ring.push(frame, payloadCount: line.count) { slot in slot.copyMemory(from: line) }
            }
            switch result {
            case .pushed(let wasEmpty):
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
