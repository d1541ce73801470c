/// The plain header of one request from the matcher to the action worker; the alert line travels as the
/// slot's byte payload (see `SPSCRing`), so the ring carries no references (C3).
struct ActionFrame: BitwiseCopyable {
    /// What to do. Only alerts exist today; later actions (chmod, restart, …) add kinds.
    enum Kind: UInt8, BitwiseCopyable {
        /// Write the payload (one JSON line) to the sinks in `sinkMask`.
        case alert = 1
    }

    var kind: Kind
    /// Bit i set: deliver to sink i.
    var sinkMask: UInt64
    /// `CLOCK_MONOTONIC` nanoseconds of the kernel event that caused it (0 when none).
    var eventTime: UInt64
}
