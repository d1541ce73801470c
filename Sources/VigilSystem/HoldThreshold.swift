/// A hold-time threshold, "above 80 % for 5 s": fed one value per sample with the sample's monotonic time,
/// it fires when the value has stayed above the threshold for at least the hold time, and clears at the
/// first sample at or below it. A single spike shorter than the hold never fires; the hold restarts at the
/// next sample above after any sample at or below.
///
/// "Continuously" means at every sample fed: the threshold knows nothing of what happened between two
/// samples. Pure, no I/O, no clock of its own.
public struct HoldThreshold: Sendable {
    /// A change of state reported by `feed`.
    public enum Transition: Sendable, Equatable {
        /// The value has been above the threshold since `since` (the time of the first sample above it)
        /// for at least the hold time.
        case fired(since: UInt64)
        /// The value fell to or below the threshold after having fired.
        case cleared
    }

    /// The value the samples must stay above (strictly).
    public let threshold: Double
    /// How long, in nanoseconds, the value must stay above before the threshold fires; 0 fires at the
    /// first sample above.
    public let holdNanoseconds: UInt64

    /// The time of the first sample of the current run above the threshold; nil while at or below.
    private var aboveSince: UInt64?
    /// Whether `fired` was reported for the current run, so it is reported once and `cleared` follows.
    private var fired = false

    /// A threshold that has seen no sample.
    public init(threshold: Double, holdNanoseconds: UInt64) {
        self.threshold = threshold
        self.holdNanoseconds = holdNanoseconds
    }

    /// Whether the threshold has fired and not yet cleared.
    public var isFiring: Bool { fired }

    /// Feeds the value sampled at `now` (monotonic nanoseconds, not decreasing from one call to the next).
    /// Returns `.fired` once per run above the threshold, at the first sample at least `holdNanoseconds`
    /// after the run began, and `.cleared` at the first sample at or below after that; nil otherwise.
    /// NaN counts as not above. A time earlier than the run's start counts as no time elapsed.
    public mutating func feed(_ value: Double, at now: UInt64) -> Transition? {
        feed(value, at: now, intervalStart: now)
    }

    /// Feeds a value that describes the interval from `intervalStart` to `now` (a CPU share between two
    /// samples): a run above the threshold that begins with it counts from `intervalStart`, so "above for
    /// 5 s" fires within one sampling interval of 5 s after the process became busy.
    public mutating func feed(_ value: Double, at now: UInt64, intervalStart: UInt64) -> Transition? {
        guard value > threshold else {
            aboveSince = nil
            if fired {
                fired = false
                return .cleared
            }
            return nil
        }
        let since = aboveSince ?? min(intervalStart, now)
        aboveSince = since
        let held = now >= since ? now - since : 0
        guard !fired, held >= holdNanoseconds else { return nil }
        fired = true
        return .fired(since: since)
    }
}
