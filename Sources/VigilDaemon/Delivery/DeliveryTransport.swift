import VigilCore

/// What one delivery attempt came to.
enum DeliveryOutcome: Sendable, Equatable {
    /// The receiver took every record of the batch.
    case delivered
    /// A transient failure (the server is down, a timeout, a 5xx, sendmail's EX_TEMPFAIL): the records stay
    /// in the spool and the attempt is repeated after a backoff. The text is one line for the log and the
    /// `vigil.sink_failing` alert: what failed and why, without the records' content.
    case retry(String)
    /// The receiver refused the batch for good (a 4xx other than 408 and 429, a malformed address): the
    /// records go to the sink's rejected file (`rejected.jsonl` in its spool directory) with an alert, and
    /// delivery goes on with the next ones.
    case rejected(String)
}

/// One way out of the host for alerts (syslog, sendmail, a webhook, Alertmanager). Each sink has one
/// transport, used only by that sink's own thread, so a transport needs no locks and may block up to its
/// timeout.
protocol DeliveryTransport: AnyObject {
    /// The most records one `deliver` call takes (Alertmanager and e-mail digests batch; syslog and
    /// webhooks take one).
    var batchLimit: Int { get }
    /// Tries once to deliver `batch`, oldest first, in at most about the sink's timeout. `lines[i]` is
    /// `batch[i]` as its JSON line (ending in a newline), as every sink receives it.
    func deliver(_ batch: [AlertRecord], lines: [[UInt8]]) -> DeliveryOutcome
    /// The next time, in `Clock.monotonicNanoseconds()`, at which `maintain(now:)` has work (Alertmanager
    /// posts its still-firing alerts again before they expire); nil: none.
    var nextMaintenance: UInt64? { get }
    /// Does the periodic work that is due; returns its outcome (nil when nothing was due).
    func maintain(now: UInt64) -> DeliveryOutcome?
    /// Releases the connection or socket.
    func close()
}

extension DeliveryTransport {
    var nextMaintenance: UInt64? { nil }
    func maintain(now: UInt64) -> DeliveryOutcome? { nil }
    func close() {}
}
