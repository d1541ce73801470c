import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A bounded single-producer/single-consumer ring of plain records, with an optional byte payload per slot.
///
/// One thread pushes, one thread pops (checked in debug builds). Records are `BitwiseCopyable`, so moving
/// them costs a `memcpy` and no reference counting (C3). Each slot may also carry a byte payload (an alert
/// line, say) in a buffer the slot owns and reuses: the producer fills it before publishing the slot and the
/// consumer reads it before releasing the slot, so the payload needs no lock and, once every slot's buffer
/// has grown to its working size, no allocation.
///
/// Waking is the caller's business (C4): `push` reports whether the ring was empty, which is the only time a
/// sleeping consumer needs its doorbell rung; `consumerDidRelease` reports whether a producer is waiting
/// for space.
///
/// Memory ordering. The producer publishes a slot by storing `tail` and the consumer releases one by
/// storing `head`. Plain acquire/release would order the slot's contents, but the empty check that decides
/// whether to ring the doorbell is a store-then-load on *different* variables on each side (Dekker's
/// pattern): producer stores `tail` then loads `head`; consumer stores `head` then loads `tail`. x86 and
/// ARM may reorder a store with a later load, which would let both sides see stale values and lose a
/// wakeup. Making those four operations sequentially consistent forbids that: in the single total order,
/// either the producer's load sees the consumer's store (so it knows the ring was empty and rings), or the
/// consumer's load sees the producer's store (so it sees the new item and does not sleep).
public final class SPSCRing<Element: BitwiseCopyable>: @unchecked Sendable {
    // @unchecked Sendable: slots are handed between exactly two threads through `head`/`tail` atomics.

    /// Bytes carried with one slot.
    private struct Payload {
        var base: UnsafeMutableRawPointer?
        var capacity: Int
        var count: Int
    }

    private let mask: Int
    private let slots: UnsafeMutablePointer<Element>
    private let payloads: UnsafeMutablePointer<Payload>

    /// Consumer's index: the next slot to read. Written by the consumer only.
    private let head = Atomic<Int>(0)
    private let padding1 = (0, 0, 0, 0, 0, 0, 0, 0)
    /// Producer's index: the next slot to write. Written by the producer only.
    private let tail = Atomic<Int>(0)
    private let padding2 = (0, 0, 0, 0, 0, 0, 0, 0)
    /// Set by a producer that found the ring full and is about to sleep until space is released.
    private let producerWaiting = Atomic<Bool>(false)
    /// Producer-private copy of `head`, refreshed only when the ring looks full.
    private var cachedHead = 0
    /// Consumer-private copy of `tail`, refreshed only when the ring looks empty.
    private var cachedTail = 0

    #if DEBUG
    private let producerThread = Atomic<UInt>(0)
    private let consumerThread = Atomic<UInt>(0)
    #endif

    /// Creates a ring holding up to `capacity` records; `capacity` must be a power of two.
    public init(capacity: Int) {
        precondition(capacity > 1 && capacity & (capacity - 1) == 0, "SPSCRing capacity must be a power of two")
        mask = capacity - 1
        slots = .allocate(capacity: capacity)
        payloads = .allocate(capacity: capacity)
        payloads.initialize(repeating: Payload(base: nil, capacity: 0, count: 0), count: capacity)
    }

    deinit {
        for index in 0...mask { payloads[index].base?.deallocate() }
        payloads.deallocate()
        slots.deallocate()
    }

    /// The number of slots.
    public var capacity: Int { mask + 1 }

    /// What `push` did.
    public enum PushResult: Equatable, Sendable {
        /// Stored. `wasEmpty` is true when the consumer may be asleep and needs its doorbell rung.
        case pushed(wasEmpty: Bool)
        /// No space: the record was not stored.
        case full
    }

    /// Appends a record. Producer thread only.
    @inline(__always)
    public func push(_ element: Element) -> PushResult {
        push(element, payloadCount: 0) { _ in }
    }

    /// Appends a record with `payloadCount` bytes written by `fill` into the slot's own buffer.
    /// Producer thread only. The buffer grows (allocates) only when a payload outgrows it.
    @inline(__always)
    public func push(
        _ element: Element,
        payloadCount: Int,
        fill: (UnsafeMutableRawBufferPointer) -> Void
    ) -> PushResult {
        checkProducer()
        let t = tail.load(ordering: .relaxed)
        if t - cachedHead > mask {
            cachedHead = head.load(ordering: .acquiring)
            if t - cachedHead > mask { return .full }
        }
        let index = t & mask
        (slots + index).initialize(to: element)
        if payloadCount > 0 {
            if payloads[index].capacity < payloadCount {
                payloads[index].base?.deallocate()
                let size = max(payloadCount, 1024)
                payloads[index].base = .allocate(byteCount: size, alignment: 16)
                payloads[index].capacity = size
            }
            fill(UnsafeMutableRawBufferPointer(start: payloads[index].base, count: payloadCount))
        }
        payloads[index].count = payloadCount
        // Sequentially consistent: see the type's comment (Dekker's pattern with `head`).
        tail.store(t + 1, ordering: .sequentiallyConsistent)
        let h = head.load(ordering: .sequentiallyConsistent)
        cachedHead = h
        return .pushed(wasEmpty: h == t)
    }

    /// Removes up to `limit` records, calling `body` with each record and its payload (empty when none).
    /// Consumer thread only. Slots are released once, after the whole batch. Returns how many were consumed.
    @inline(__always)
    public func consume(
        limit: Int = .max,
        _ body: (Element, UnsafeRawBufferPointer) -> Void
    ) -> Int {
        checkConsumer()
        let h = head.load(ordering: .relaxed)
        var available = cachedTail - h
        if available < limit {
            cachedTail = tail.load(ordering: .acquiring)
            available = cachedTail - h
            if available <= 0 { return 0 }
        }
        let n = min(available, limit)
        for i in 0..<n {
            let index = (h + i) & mask
            let payload = payloads[index]
            body(slots[index], UnsafeRawBufferPointer(start: payload.base, count: payload.count))
        }
        head.store(h + n, ordering: .sequentiallyConsistent)
        return n
    }

    /// Removes one record. Consumer thread only.
    @inline(__always)
    public func pop() -> Element? {
        var result: Element?
        _ = consume(limit: 1) { element, _ in result = element }
        return result
    }

    /// True when no record is waiting. Consumer thread only: the sequentially consistent load pairs with
    /// the producer's `push` so that a consumer that then sleeps cannot miss a doorbell.
    public func isEmptyForConsumer() -> Bool {
        cachedTail = tail.load(ordering: .sequentiallyConsistent)
        return cachedTail == head.load(ordering: .relaxed)
    }

    /// True when the consumer has taken every record pushed so far. Producer thread only: lets a producer
    /// that bypassed the ring know that nothing it pushed earlier is still waiting (ordering).
    public func isDrainedForProducer() -> Bool {
        cachedHead = head.load(ordering: .acquiring)
        return cachedHead == tail.load(ordering: .relaxed)
    }

    /// Producer found the ring full: announce that it will wait for space, then re-check. Returns true
    /// when the ring is still full and the producer should sleep on its space doorbell.
    public func producerWillWait() -> Bool {
        producerWaiting.store(true, ordering: .sequentiallyConsistent)
        let t = tail.load(ordering: .relaxed)
        cachedHead = head.load(ordering: .sequentiallyConsistent)
        if t - cachedHead > mask { return true }
        producerWaiting.store(false, ordering: .relaxed)
        return false
    }

    /// Consumer released slots: returns true (once) when a producer is waiting for space and must be woken.
    public func consumerShouldWakeProducer() -> Bool {
        if producerWaiting.load(ordering: .sequentiallyConsistent) {
            return producerWaiting.exchange(false, ordering: .acquiringAndReleasing)
        }
        return false
    }

    @inline(__always)
    private func checkProducer() {
        #if DEBUG
        let me = UInt(pthread_self())
        let (exchanged, original) = producerThread.compareExchange(expected: 0, desired: me, ordering: .relaxed)
        precondition(exchanged || original == me, "SPSCRing: multiple producers detected")
        #endif
    }

    @inline(__always)
    private func checkConsumer() {
        #if DEBUG
        let me = UInt(pthread_self())
        let (exchanged, original) = consumerThread.compareExchange(expected: 0, desired: me, ordering: .relaxed)
        precondition(exchanged || original == me, "SPSCRing: multiple consumers detected")
        #endif
    }
}
