import Testing
import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// The ring between two real threads: every record arrives once, in order, with its payload.
@Suite(.timeLimit(.minutes(1)))
struct SPSCRingTests {
    struct Record: BitwiseCopyable {
        var sequence: UInt64
        var check: UInt64
    }

    @Test func pushReportsEmptyAndFull() {
        let ring = SPSCRing<Record>(capacity: 4)
        #expect(ring.push(Record(sequence: 0, check: 0)) == .pushed(wasEmpty: true))
        #expect(ring.push(Record(sequence: 1, check: 1)) == .pushed(wasEmpty: false))
        #expect(ring.push(Record(sequence: 2, check: 2)) == .pushed(wasEmpty: false))
        #expect(ring.push(Record(sequence: 3, check: 3)) == .pushed(wasEmpty: false))
        #expect(ring.push(Record(sequence: 4, check: 4)) == .full)
        #expect(ring.pop()?.sequence == 0)
        #expect(ring.push(Record(sequence: 4, check: 4)) == .pushed(wasEmpty: false))
        var seen: [UInt64] = []
        _ = ring.consume { record, _ in seen.append(record.sequence) }
        #expect(seen == [1, 2, 3, 4])
        #expect(ring.isEmptyForConsumer())
    }

    @Test func payloadsTravelWithTheirSlot() {
        let ring = SPSCRing<Record>(capacity: 8)
        for i in 0..<20 {
            let text = Array(String(repeating: "x", count: i * 100).utf8)
            _ = text.withUnsafeBytes { bytes in
                ring.push(Record(sequence: UInt64(i), check: UInt64(bytes.count)), payloadCount: bytes.count) {
                    $0.copyMemory(from: bytes)
                }
            }
            _ = ring.consume { record, payload in
                #expect(payload.count == Int(record.check))
                #expect(payload.allSatisfy { $0 == UInt8(ascii: "x") })
            }
        }
    }

    /// Two threads, five million records through a 1,024-slot ring, each side yielding when it must wait: every record arrives exactly once and in order.
    @Test func fiveMillionRecordsArriveInOrderAcrossThreads() {
        let ring = SPSCRing<Record>(capacity: 1024)
        let total: UInt64 = 5_000_000
        let box = Unmanaged.passRetained(ProducerContext(ring: ring, total: total))
        var thread = pthread_t()
        _ = pthread_create(
            &thread,
            nil,
            { raw in
                let context = Unmanaged<ProducerContext>.fromOpaque(raw!).takeRetainedValue()
                var i: UInt64 = 0
                while i < context.total {
                    switch context.ring.push(Record(sequence: i, check: i &* 2_654_435_761)) {
                    case .pushed: i += 1
                    case .full: sched_yield()
                    }
                }
                return nil
            },
            box.toOpaque()
        )
        var expected: UInt64 = 0
        var corrupt = 0
        while expected < total {
            let n = ring.consume(limit: 256) { record, _ in
                if record.sequence != expected || record.check != expected &* 2_654_435_761 { corrupt += 1 }
                expected += 1
            }
            if n == 0 { sched_yield() }
        }
        pthread_join(thread, nil)
        #expect(corrupt == 0)
        #expect(expected == total)
        #expect(ring.isEmptyForConsumer())
    }

    final class ProducerContext: @unchecked Sendable {
        // @unchecked Sendable: handed to exactly one producer thread.
        let ring: SPSCRing<Record>
        let total: UInt64
        init(ring: SPSCRing<Record>, total: UInt64) {
            self.ring = ring
            self.total = total
        }
    }
}
