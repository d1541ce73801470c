/// A binary min-heap of deadlines, each carrying a payload: the timers of one thread, all served by one
/// `timerfd` armed for `earliest`. Push and pop are O(log n), so thousands of pending zombie checks cost
/// no more per event than one.
///
/// Cancelling is lazy: the owner keeps its own record of what is still wanted and ignores stale entries
/// when they come due (cheaper than searching the heap).
public struct DeadlineHeap<Payload> {
    private var entries: [(deadline: UInt64, payload: Payload)] = []

    public init() {}

    /// Pending entries, stale ones included.
    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    /// The earliest deadline, or nil when empty.
    public var earliest: UInt64? { entries.first?.deadline }

    /// Adds an entry.
    public mutating func push(_ deadline: UInt64, _ payload: Payload) {
        entries.append((deadline, payload))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].deadline < entries[parent].deadline else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    public mutating func popDue(now: UInt64) -> (deadline: UInt64, payload: Payload)? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        let last = entries.removeLast()
        guard !entries.isEmpty else { return first }
        entries[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < entries.count && entries[left].deadline < entries[smallest].deadline { smallest = left }
            if right < entries.count && entries[right].deadline < entries[smallest].deadline { smallest = right }
            if smallest == parent { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}

extension DeadlineHeap: Sendable where Payload: Sendable {}
