import Synchronization
import VigilCore

/// The conditions that are firing now, by fingerprint, shared by every producer's outlet.
// SKELETON: filled in by the reload and restart-state work.
final class FiringLedger: Sendable {
    /// One firing condition.
    struct Condition: Sendable {
        var fingerprint: String
        var rule: String
        var severity: String
        var message: String
        /// Wall-clock seconds since the epoch when it started firing.
        var sinceSeconds: Int64
    }

    init() {}

    /// False when `record` must not be sent (a condition already firing, inherited from before a restart or
    /// a reload). Notes firing and resolved records.
    func admit(_ record: AlertRecord) -> Bool { true }

    /// The conditions firing now.
    func conditions() -> [Condition] { [] }
}
