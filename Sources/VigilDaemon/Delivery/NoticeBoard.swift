import Logging
import Synchronization
import SystemPackage
import VigilCore
import VigilRules
import VigilSystem

/// The parts of alerting that run on time rather than on events: per-rule dedup windows and the summaries
/// of what they held back, reminders of conditions that stay firing, and Vigil's heartbeat.
///
/// Producers consult the board from their own threads (`AlertOutlet.send` calls `admit` for the rules it
/// governs; other rules never take its lock). Its own thread, `vigil-notice`, sleeps on a timerfd armed to
/// the next thing due and sends summaries, reminders and heartbeats through an outlet of its own.
///
/// Nothing is hidden: an alert held back by a window is counted, and when the window closes one summary
/// record says how many were held, when, and what the last one said ("999 more in the last 1 s"). At
/// shutdown every open window with held alerts is summarised before the sinks close.
final class NoticeBoard: @unchecked Sendable {
    // @unchecked Sendable: `heartbeats` and the descriptors are immutable after init; `policies` and `state`
    // are behind pthread mutexes (`hasPolicies` is atomic); `outlet` and `beats` are used only by the
    // board's thread.

    /// What the board does for one rule.
    struct Policy: Sendable {
        var dedup: NoiseControl?
        var remindNanoseconds: UInt64?
    }

    /// A heartbeat sink: its mask bit and period.
    struct Heartbeat: Sendable {
        var sinkIndex: Int
        var sinkName: String
        var periodNanoseconds: UInt64
    }

    /// One dedup window: alerts of one rule with one rendered key.
    private struct Window {
        var rule: String
        var key: String
        var windowMilliseconds: Int
        /// Monotonic end of the window.
        var ends: UInt64
        /// Realtime start, for the summary's id and text.
        var started: (seconds: Int64, nanoseconds: Int32)
        var passed = 1
        var held = 0
        var firstHeld: (seconds: Int64, nanoseconds: Int32)?
        /// The last alert held back, whose fields the summary repeats.
        var last: AlertRecord?
        /// Sinks the held alerts were for.
        var sinkMask: UInt64 = 0
    }

    /// A condition that is firing on a rule with `remind:`.
    private struct Reminder {
        var record: AlertRecord
        var sinkMask: UInt64
        var period: UInt64
        var next: UInt64
        var count = 0
    }

    private struct State {
        var windows: [String: Window] = [:]
        var reminders: [String: Reminder] = [:]
        /// The deadline the board's thread sleeps until (0: none, UInt64.max: not known yet).
        var armed: UInt64 = 0
    }

    /// Per rule id; replaced by a reload.
    private let policies: Locked<[String: Policy]>
    /// Whether any rule has a policy: most alerts are of rules without one, and take no lock.
    private let hasPolicies = Atomic<Bool>(false)
    private let heartbeats: [Heartbeat]
    private let state = Locked(State())
    private let host: String
    private let logger: Logger
    let doorbell: EventFD
    let shutdown: EventFD
    private let timer: TimerFD
    private var outlet: AlertOutlet?

    /// Made even when no rule has `dedup:` or `remind:` and no sink has `heartbeat:` (its thread then sleeps
    /// without a timer): a reload may add such rules.
    init(rules: [Rule], heartbeats: [Heartbeat], host: String, logger: Logger) throws(Errno) {
        let policies = Self.policies(of: rules)
        self.policies = Locked(policies)
        hasPolicies.store(!policies.isEmpty, ordering: .releasing)
        self.heartbeats = heartbeats
        self.host = host
        self.logger = logger
        doorbell = try EventFD()
        shutdown = try EventFD()
        timer = try TimerFD()
    }

    private static func policies(of rules: [Rule]) -> [String: Policy] {
        var policies: [String: Policy] = [:]
        for rule in rules where rule.dedup != nil || rule.remindMilliseconds != nil {
            policies[rule.id] = Policy(
                dedup: rule.dedup,
                remindNanoseconds: rule.remindMilliseconds.map { UInt64(max(1, $0)) * 1_000_000 }
            )
        }
        return policies
    }

    /// The policies of the rules a reload runs from now on (open windows and reminders carry on; those of
    /// rules that lost their policy end with their next alert).
    func update(rules: [Rule]) {
        let updated = Self.policies(of: rules)
        policies.withLock { $0 = updated }
        hasPolicies.store(!updated.isEmpty, ordering: .releasing)
    }

    /// The outlet the board sends through (one that does not consult the board); set before `run()`.
    func attach(outlet: AlertOutlet) { self.outlet = outlet }

    /// True when `rule` has `dedup:` or `remind:`.
    @inline(__always)
    func governs(_ rule: String) -> Bool {
        hasPolicies.load(ordering: .acquiring) && policies.withLock { $0[rule] != nil }
    }

    /// Decides whether `record` goes out now (true) or is held back by its rule's dedup window (false,
    /// counted for the summary), and tracks firing conditions for reminders. Called on the producer's
    /// thread for rules the board `governs`.
    func admit(_ record: AlertRecord, sinkMask: UInt64) -> Bool {
        guard let policy = policies.withLock({ $0[record.rule] }) else { return true }
        let now = Clock.monotonicNanoseconds()
        var wake = false
        let pass = state.withLock { state -> Bool in
            if let period = policy.remindNanoseconds {
                switch record.state {
                case .firing:
                    state.reminders[record.fingerprint] = Reminder(
                        record: record,
                        sinkMask: sinkMask,
                        period: period,
                        next: now &+ period
                    )
                    if state.armed == 0 || now &+ period < state.armed { wake = true }
                case .resolved:
                    state.reminders[record.fingerprint] = nil
                case .event:
                    break
                }
            }
            // A resolution always passes: it pairs with a firing record the receiver already has.
            guard let dedup = policy.dedup, record.state != .resolved else { return true }
            let key = dedup.key.render { AlertFields.value($0, of: record) ?? "" }
            let slot = record.rule + "\u{0}" + key
            if var window = state.windows[slot], now < window.ends {
                if window.passed < dedup.maximum {
                    window.passed += 1
                    state.windows[slot] = window
                    return true
                }
                window.held += 1
                if window.firstHeld == nil { window.firstHeld = (record.timeSeconds, record.timeNanoseconds) }
                window.last = record
                window.sinkMask |= sinkMask
                state.windows[slot] = window
                return false
            }
            if let closed = state.windows[slot], closed.held > 0 {
                // The window ended but its summary is not out yet: let the thread send it under a new slot.
                state.windows[slot + "\u{0}\(closed.ends)"] = closed
            }
            let ends = now &+ UInt64(max(1, dedup.windowMilliseconds)) * 1_000_000
            state.windows[slot] = Window(
                rule: record.rule,
                key: key,
                windowMilliseconds: dedup.windowMilliseconds,
                ends: ends,
                started: (record.timeSeconds, record.timeNanoseconds)
            )
            if state.armed == 0 || ends < state.armed { wake = true }
            return true
        }
        if wake { doorbell.ring() }
        return pass
    }

    // MARK: The board's thread

    private static let timerTag: UInt64 = 1
    private static let doorbellTag: UInt64 = 2
    private static let shutdownTag: UInt64 = 3

    /// The thread body: sends what falls due until `shutdown` rings, then summarises every open window.
    func run() {
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.add(timer.descriptor, tag: Self.timerTag)
            try epoll.add(doorbell.descriptor, tag: Self.doorbellTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
        } catch {
            preconditionFailure("NoticeBoard: epoll setup failed: \(error)")
        }
        let start = Clock.monotonicNanoseconds()
        // The first heartbeat goes out at once, so a receiver knows Vigil is up from its start.
        var beats = heartbeats.map { (beat: $0, next: start, sequence: 0) }
        var stopping = false
        while !stopping {
            let now = Clock.monotonicNanoseconds()
            for i in beats.indices where beats[i].next <= now {
                beats[i].sequence += 1
                sendHeartbeat(beats[i].beat, sequence: beats[i].sequence, started: start)
                beats[i].next = now &+ beats[i].beat.periodNanoseconds
            }
            var next = sendDue(now: now, everything: false)
            for beat in beats where next == 0 || beat.next < next { next = beat.next }
            timer.arm(deadline: next)
            do {
                try epoll.wait { tag in
                    switch tag {
                    case Self.timerTag: timer.acknowledge()
                    case Self.doorbellTag: _ = doorbell.drain()
                    default: stopping = true
                    }
                }
            } catch {
                preconditionFailure("NoticeBoard: epoll_wait failed: \(error)")
            }
        }
        _ = sendDue(now: Clock.monotonicNanoseconds(), everything: true)
    }

    /// Sends the summaries of closed windows (all windows with held alerts when `everything`) and the
    /// reminders due; returns the next deadline (0: none) and records it as armed.
    private func sendDue(now: UInt64, everything: Bool) -> UInt64 {
        var summaries: [Window] = []
        var reminders: [Reminder] = []
        let next = state.withLock { state -> UInt64 in
            var next: UInt64 = 0
            for (slot, window) in state.windows {
                if everything || window.ends <= now {
                    state.windows[slot] = nil
                    if window.held > 0 { summaries.append(window) }
                } else if next == 0 || window.ends < next {
                    next = window.ends
                }
            }
            for (fingerprint, var reminder) in state.reminders {
                if reminder.next <= now && !everything {
                    reminder.count += 1
                    reminder.next = now &+ reminder.period
                    state.reminders[fingerprint] = reminder
                    reminders.append(reminder)
                }
                if next == 0 || reminder.next < next { next = reminder.next }
            }
            state.armed = next
            return next
        }
        for window in summaries.sorted(by: { $0.ends < $1.ends }) { sendSummary(window) }
        for reminder in reminders { sendReminder(reminder) }
        return next
    }

    private func sendSummary(_ window: Window) {
        guard let outlet, let last = window.last else { return }
        let started = RFC3339.string(seconds: window.started.seconds, nanoseconds: window.started.nanoseconds)
        let first = window.firstHeld.map { RFC3339.string(seconds: $0.seconds, nanoseconds: $0.nanoseconds) } ?? started
        let lastTime = RFC3339.string(seconds: last.timeSeconds, nanoseconds: last.timeNanoseconds)
        let fingerprint = AlertIdentity.fingerprint(rule: window.rule, instance: "dedup\u{0}" + window.key)
        let time = Clock.realtime()
        var labels: [String: String] = [
            "count": String(window.held),
            "dedup_key": window.key,
            "window": DeliverySink.duration(window.windowMilliseconds),
            "first_held": first,
            "last_held": lastTime,
            "last_id": last.id,
            "summarised_kind": last.kind,
        ]
        if let path = last.path { labels["path"] = path }
        let record = AlertRecord(
            id: AlertIdentity.id(
                fingerprint: fingerprint,
                state: .event,
                version: "\(window.started.seconds).\(window.started.nanoseconds)"
            ),
            timeSeconds: time.seconds,
            timeNanoseconds: time.nanoseconds,
            host: last.host,
            rule: window.rule,
            severity: last.severity,
            state: .event,
            kind: "vigil.summary",
            path: last.path,
            message:
                "\(window.held) more alert\(window.held == 1 ? "" : "s") of rule '\(window.rule)' held back in the last \(DeliverySink.duration(window.windowMilliseconds)) (dedup key '\(window.key)'); the last: \(last.message)",
            fingerprint: fingerprint,
            labels: labels
        )
        outlet.send(record, sinkMask: window.sinkMask, eventTime: 0)
    }

    private func sendReminder(_ reminder: Reminder) {
        guard let outlet else { return }
        let original = reminder.record
        let since = RFC3339.string(seconds: original.timeSeconds, nanoseconds: original.timeNanoseconds)
        let time = Clock.realtime()
        var record = original
        record.id = AlertIdentity.id(
            fingerprint: original.fingerprint,
            state: .firing,
            version: "\(original.id):remind:\(reminder.count)"
        )
        record.timeSeconds = time.seconds
        record.timeNanoseconds = time.nanoseconds
        record.message = "Still firing since \(since) (reminder \(reminder.count)): \(original.message)"
        record.labels["reminder"] = String(reminder.count)
        record.labels["firing_since"] = since
        outlet.send(record, sinkMask: reminder.sinkMask, eventTime: 0)
    }

    private func sendHeartbeat(_ beat: Heartbeat, sequence: Int, started: UInt64) {
        guard let outlet else { return }
        let fingerprint = AlertIdentity.fingerprint(rule: "vigil-watchdog", instance: host)
        let time = Clock.realtime()
        let period = DeliverySink.duration(Int(beat.periodNanoseconds / 1_000_000))
        let record = AlertRecord(
            id: AlertIdentity.id(fingerprint: fingerprint, state: .firing, version: "\(started):\(sequence)"),
            timeSeconds: time.seconds,
            timeNanoseconds: time.nanoseconds,
            host: host,
            rule: "vigil-watchdog",
            severity: "info",
            state: .firing,
            kind: "vigil.watchdog",
            message:
                "Vigil on \(host) is running. This alert always fires and is renewed every \(period); route it to a dead man's switch, which alerts when it stops",
            fingerprint: fingerprint,
            labels: ["period": period, "sequence": String(sequence)]
        )
        outlet.send(record, sinkMask: UInt64(1) << UInt64(beat.sinkIndex), eventTime: 0)
    }
}
