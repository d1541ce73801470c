import VigilRules

/// The restart (or reload) policy of one rule: backoff, the flap limit, and the restart waiting to be
/// confirmed by the new process's exec. A plain state machine: the process watcher asks it what to do and
/// carries that out (spawn, signal, alert), so the policy is testable without processes.
struct ServiceSupervisor {
    enum Kind: String {
        case restart, reload
    }

    /// What the watcher should do after a trigger.
    enum Decision: Equatable {
        /// Run the action now.
        case runNow
        /// Run it at this monotonic time (backoff).
        case runAt(UInt64)
        /// A restart is already scheduled or waiting for confirmation; nothing to do.
        case alreadyPending
        /// The flap limit was reached just now: alert, and stop restarting.
        case flapping(restarts: Int, withinMilliseconds: Int)
        /// Stopped earlier by the flap limit; nothing to do until the service runs again.
        case stopped
    }

    let kind: Kind
    let action: ServiceAction
    /// Monotonic times of the runs within the flap window.
    private(set) var history: [UInt64] = []
    /// A run is scheduled (backoff) but not done yet.
    private(set) var scheduledAt: UInt64?
    /// A restart ran and its new process has not been seen yet: when it ran, and how.
    private(set) var awaiting: (ranAt: UInt64, via: String, token: Int)?
    /// The flap limit stopped the restarts.
    private(set) var isStopped = false
    private var nextToken = 0

    init(kind: Kind, action: ServiceAction) {
        self.kind = kind
        self.action = action
    }

    private var window: UInt64 { UInt64(action.flapWindowMilliseconds) * 1_000_000 }

    /// The rule fired at `now` and wants the service restarted (or reloaded).
    mutating func trigger(now: UInt64) -> Decision {
        if isStopped { return .stopped }
        if scheduledAt != nil || awaiting != nil { return .alreadyPending }
        let window = self.window
        history.removeAll { now &- $0 >= window }
        if history.count >= action.flapLimit {
            isStopped = true
            return .flapping(restarts: history.count, withinMilliseconds: action.flapWindowMilliseconds)
        }
        guard !history.isEmpty, kind == .restart else { return .runNow }
        // Backoff: the first restart in the window runs at once, then backoff, 2×, 4×… up to the maximum.
        let shift = min(history.count - 1, 30)
        let delay = min(UInt64(action.backoffMilliseconds) << UInt64(shift), UInt64(action.maximumBackoffMilliseconds))
        let at = max(now, history.last! &+ delay * 1_000_000)
        if at <= now { return .runNow }
        scheduledAt = at
        return .runAt(at)
    }

    /// The scheduled run is due; false when it was cancelled meanwhile.
    mutating func takeScheduled() -> Bool {
        guard scheduledAt != nil else { return false }
        scheduledAt = nil
        return true
    }

    /// The action ran at `now` via `via` (for the alert); returns the token of the confirmation wait.
    mutating func ran(now: UInt64, via: String) -> Int {
        history.append(now)
        nextToken += 1
        if kind == .restart { awaiting = (now, via, nextToken) }
        return nextToken
    }

    /// A matching process ran a program. Returns the pending restart it confirms, if any. A process that
    /// starts while the restarts are stopped (someone fixed the service by hand) lifts the stop.
    mutating func processStarted() -> (ranAt: UInt64, via: String)? {
        if isStopped {
            isStopped = false
            history.removeAll()
        }
        guard let pending = awaiting else { return nil }
        awaiting = nil
        return (pending.ranAt, pending.via)
    }

    /// The confirmation deadline of `token` passed; returns the failed restart if it was still waiting.
    mutating func confirmationExpired(token: Int) -> (ranAt: UInt64, via: String)? {
        guard let pending = awaiting, pending.token == token else { return nil }
        awaiting = nil
        return (pending.ranAt, pending.via)
    }

    /// The restart command failed (could not start, or exited non-zero): stop waiting for the new process.
    mutating func failed() {
        awaiting = nil
    }
}
