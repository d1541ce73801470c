import Synchronization

/// A latency histogram of fixed buckets, each an atomic counter, so that any thread records into it without
/// a lock or an allocation (hot-path rules 1 and 7) and the metrics endpoint reads it at any time.
///
/// The bounds run from 50 µs to 10 s (Prometheus `le` labels, in seconds); a reading past the last bound
/// counts only in `+Inf` (the total). A scrape reads the buckets one by one while producers add to them, so
/// one scrape may see a reading in the count and not yet in its bucket; Prometheus tolerates that (a rate
/// over two scrapes is right), and the buckets are cumulated at exposition, never stored cumulated.
public final class LatencyHistogram: Sendable {
    /// Upper bounds of the buckets, in nanoseconds (exclusive of `+Inf`).
    public static let boundsNanoseconds: [UInt64] = [
        50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000,
        100_000_000, 250_000_000, 500_000_000,
        1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
    ]

    /// One counter per bound, plus one for readings past the last bound (not cumulative).
    private let buckets: InlineArray<18, Atomic<UInt64>>
    /// Readings, and their sum in nanoseconds.
    private let count = Atomic<UInt64>(0)
    private let sumNanoseconds = Atomic<UInt64>(0)

    public init() {
        buckets = InlineArray { _ in Atomic<UInt64>(0) }
    }

    /// Adds one reading. Lock-free: a binary search over 17 bounds and three relaxed atomic adds.
    @inline(__always)
    public func record(nanoseconds: UInt64) {
        var low = 0
        var high = Self.boundsNanoseconds.count
        while low < high {
            let middle = (low + high) / 2
            if nanoseconds <= Self.boundsNanoseconds[middle] { high = middle } else { low = middle + 1 }
        }
        buckets[low].add(1, ordering: .relaxed)
        count.add(1, ordering: .relaxed)
        sumNanoseconds.add(nanoseconds, ordering: .relaxed)
    }

    /// What a scrape shows: cumulative counts per bound (the `_bucket` series), the count and the sum.
    public struct Snapshot: Sendable, Equatable {
        /// Cumulative counts for each of `boundsNanoseconds`, in order.
        public var cumulative: [UInt64]
        public var count: UInt64
        public var sumNanoseconds: UInt64
    }

    /// Reads every bucket; the count is taken as the cumulative total, so `+Inf` always equals `_count`.
    public func snapshot() -> Snapshot {
        var cumulative: [UInt64] = []
        cumulative.reserveCapacity(Self.boundsNanoseconds.count)
        var running: UInt64 = 0
        for index in 0..<Self.boundsNanoseconds.count {
            running &+= buckets[index].load(ordering: .relaxed)
            cumulative.append(running)
        }
        running &+= buckets[Self.boundsNanoseconds.count].load(ordering: .relaxed)
        _ = count.load(ordering: .relaxed)
        return Snapshot(cumulative: cumulative, count: running, sumNanoseconds: sumNanoseconds.load(ordering: .relaxed))
    }
}
