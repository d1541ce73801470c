/// `count:` of a log rule: fail2ban's maxretry/findtime. For each key, the times of its latest matches
/// (at most `threshold`); the rule fires when `threshold` of them fall within `window` (a sliding window),
/// once, and then not again for that key until `window` has passed since it fired: a burst of 500 failed
/// logins is one alert that says how many lines it counted by then, not 100.
struct CountWindows {
    let threshold: Int
    let window: UInt64
    /// Keys tracked at most; past it the oldest-expiring are swept first, then new keys wait for room.
    let keyLimit: Int

    struct Entry {
        /// Times of the latest matches, oldest first (at most `threshold`).
        var times: [UInt64] = []
        /// When it fired (0: not within the current window), and lines counted since then.
        var firedAt: UInt64 = 0
        var countedSinceFiring = 0
    }

    private(set) var entries: [String: Entry] = [:]
    /// Matches not counted because `keyLimit` keys were being tracked.
    private(set) var keysRefused = 0

    init(threshold: Int, windowNanoseconds: UInt64, keyLimit: Int = 100_000) {
        self.threshold = max(1, threshold)
        self.window = windowNanoseconds
        self.keyLimit = keyLimit
    }

    /// Counts a match of `key` at `now`; returns the count to report when the rule fires now, else nil.
    mutating func count(_ key: String, now: UInt64) -> Int? {
        if entries[key] == nil && entries.count >= keyLimit {
            sweep(now: now)
            if entries.count >= keyLimit {
                keysRefused += 1
                return nil
            }
        }
        var entry = entries[key, default: Entry()]
        defer { entries[key] = entry }
        if entry.firedAt != 0 {
            if now &- entry.firedAt < window {
                entry.countedSinceFiring += 1
                return nil
            }
            entry = Entry()
        }
        entry.times.append(now)
        if entry.times.count > threshold { entry.times.removeFirst(entry.times.count - threshold) }
        guard entry.times.count == threshold, now &- entry.times[0] <= window else { return nil }
        entry.firedAt = now
        entry.times.removeAll(keepingCapacity: true)
        return threshold
    }

    /// Forgets keys whose window has passed.
    mutating func sweep(now: UInt64) {
        entries = entries.filter { _, entry in
            let last = max(entry.firedAt, entry.times.last ?? 0)
            return now &- last < window
        }
    }
}
