import VigilCore
import VigilSystem

/// What `vigil status` and `/metrics` report about alerts: hits and last fire time per rule, the recent
/// alerts, counts by severity and state. Every producer's outlet notes each record it sends (from its own
/// thread).
///
/// One `Mutex` guards it all: a note holds it for a dictionary update, a ring slot store and an add, with
/// no allocation after a rule's first alert (the ring is preallocated and its slots are overwritten; the
/// strings stored are the record's own, retained, never copied). Readers (the metrics endpoint's thread)
/// copy what they need under the lock and format outside it.
final class AlertBook: Sendable {
    /// How many recent alerts the ring keeps.
    static let recentCapacity = 50
    /// Severities counted apart, in this order; anything else counts as the last, `other`.
    static let severities = ["critical", "error", "warning", "info", "other"]
    /// States counted apart, in this order.
    static let states: [AlertState] = [.firing, .resolved, .event]

    /// One rule's alerts so far.
    struct RuleTally: Sendable, Equatable {
        /// Records sent for the rule (firing, resolved and events alike).
        var hits: UInt64
        /// Wall-clock seconds (with fraction) of the last record's event.
        var lastFireSeconds: Double
    }

    /// One recent alert, without its labels (they may hold what a rule captured): the message is already
    /// masked by the producer.
    struct Recent: Sendable, Equatable {
        var timeSeconds: Double
        var rule: String
        var severity: String
        var state: AlertState
        var message: String
    }

    /// A consistent copy of the book.
    struct Snapshot: Sendable {
        var rules: [String: RuleTally]
        /// Oldest first.
        var recent: [Recent]
        /// `counts[severity * states.count + state]`, indexed like `severities` and `states`.
        var counts: [UInt64]

        /// Records of `severity` (an entry of `severities`) in `state`.
        func count(severity: Int, state: Int) -> UInt64 { counts[severity * AlertBook.states.count + state] }
    }

    private struct State {
        var rules: [String: RuleTally] = [:]
        var ring: [Recent]
        /// Slots of `ring` filled so far (up to its capacity), and the next slot to overwrite.
        var filled = 0
        var next = 0
        var counts: [UInt64]
    }

    private let state: Locked<State>

    init() {
        let empty = Recent(timeSeconds: 0, rule: "", severity: "", state: .event, message: "")
        state = Locked(
            State(
                ring: Array(repeating: empty, count: Self.recentCapacity),
                counts: Array(repeating: 0, count: Self.severities.count * Self.states.count)
            )
        )
    }

    /// Notes one record an outlet is about to send.
    func note(_ record: AlertRecord) {
        let time = Double(record.timeSeconds) + Double(record.timeNanoseconds) / 1e9
        let severity = Self.severityIndex(record.severity)
        let stateIndex: Int
        switch record.state {
        case .firing: stateIndex = 0
        case .resolved: stateIndex = 1
        case .event: stateIndex = 2
        }
        state.withLock { book in
            // One hash lookup; an insertion (which may allocate) only for a rule's first alert.
            if let index = book.rules.index(forKey: record.rule) {
                book.rules.values[index].hits += 1
                book.rules.values[index].lastFireSeconds = time
            } else {
                book.rules[record.rule] = RuleTally(hits: 1, lastFireSeconds: time)
            }
            book.ring[book.next] = Recent(
                timeSeconds: time,
                rule: record.rule,
                severity: record.severity,
                state: record.state,
                message: record.message
            )
            book.next = (book.next + 1) % Self.recentCapacity
            book.filled = min(book.filled + 1, Self.recentCapacity)
            book.counts[severity * Self.states.count + stateIndex] &+= 1
        }
    }

    /// A copy of everything, for one scrape or one status report.
    func snapshot() -> Snapshot {
        state.withLock { book in
            var recent: [Recent] = []
            recent.reserveCapacity(book.filled)
            let start = (book.next - book.filled + Self.recentCapacity) % Self.recentCapacity
            for offset in 0..<book.filled { recent.append(book.ring[(start + offset) % Self.recentCapacity]) }
            return Snapshot(rules: book.rules, recent: recent, counts: book.counts)
        }
    }

    /// The index of `severity` in `severities` (`other` for anything unknown).
    private static func severityIndex(_ severity: String) -> Int {
        switch severity {
        case "critical": 0
        case "error": 1
        case "warning": 2
        case "info": 3
        default: 4
        }
    }
}
