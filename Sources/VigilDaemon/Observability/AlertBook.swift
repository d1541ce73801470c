import VigilCore

/// What `vigil status` and `/metrics` report about alerts: hits and last fire time per rule, the recent
/// alerts. Every producer's outlet notes each record it sends (from its own thread).
// SKELETON: filled in by the metrics/status work.
final class AlertBook: Sendable {
    init() {}

    /// Notes one record an outlet is about to send.
    func note(_ record: AlertRecord) {}
}
