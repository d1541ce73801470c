public import Synchronization
import VigilSystem

/// Counters the data plane bumps instead of logging (hot-path rule 5). Read by `vigil run` at shutdown
/// and, later, by the metrics endpoint.
public final class PipelineCounters: Sendable {
    /// inotify records read from the kernel.
    public let fileEvents = Atomic<UInt64>(0)
    /// Records that named a watched file (or a glob match) and reached a rule.
    public let routedEvents = Atomic<UInt64>(0)
    /// Config versions read and parsed.
    public let evaluations = Atomic<UInt64>(0)
    /// Config reads put off because a writer still had the file open (retried within microseconds).
    public let busyReads = Atomic<UInt64>(0)
    /// `IN_Q_OVERFLOW` seen: the kernel dropped events and a rescan ran.
    public let overflows = Atomic<UInt64>(0)
    /// Times the matcher found the action ring full and waited for the worker.
    public let ringFullWaits = Atomic<UInt64>(0)
    /// Buffers the inotify decoder could not parse.
    public let decodeErrors = Atomic<UInt64>(0)
    /// Alerts handed to the sinks.
    public let alerts = Atomic<UInt64>(0)
    /// Sink writes that failed (and were kept for retry).
    public let sinkFailures = Atomic<UInt64>(0)
    /// Programs of `exec:` actions started (or attempted), those that failed (could not start, exited
    /// non-zero, died of a signal, timed out; each alerted), and requests dropped on a full queue.
    public let execsStarted = Atomic<UInt64>(0)
    public let execsFailed = Atomic<UInt64>(0)
    public let execsDropped = Atomic<UInt64>(0)

    /// Datagrams read from the proc connector, and the process events in them.
    public let processDatagrams = Atomic<UInt64>(0)
    public let processEvents = Atomic<UInt64>(0)
    /// `ENOBUFS` from the proc connector: the kernel dropped process events (each one resynchronised).
    public let processEventsLost = Atomic<UInt64>(0)
    /// Execs whose process was gone before `/proc` could be read (judged on what its fork left).
    public let processDetailsMissed = Atomic<UInt64>(0)
    /// Of those, the exits judged by the name in the kernel's exit record (taskstats).
    public let processNamedAtExit = Atomic<UInt64>(0)
    /// Times the exit records' socket overflowed (ENOBUFS): some names were lost, not events.
    public let exitRecordsLost = Atomic<UInt64>(0)

    /// Log lines read, and secrets masked in place in logs (one per line that had any).
    public let logLines = Atomic<UInt64>(0)
    public let secretsMasked = Atomic<UInt64>(0)
    /// In-place masks not written because the file no longer held the line (truncated in between).
    public let sanitizeSkipped = Atomic<UInt64>(0)

    /// Logs rotated by `rotate:` rules, and rotations that failed (each alerted).
    public let logRotations = Atomic<UInt64>(0)
    public let logRotationFailures = Atomic<UInt64>(0)
    /// Rotations compressed by the gzip worker, compressions that failed (left uncompressed, retried at the
    /// next rotation), and the bytes read and written by the successful ones.
    public let logCompressions = Atomic<UInt64>(0)
    public let logCompressionFailures = Atomic<UInt64>(0)
    public let logCompressionInputBytes = Atomic<UInt64>(0)
    public let logCompressionOutputBytes = Atomic<UInt64>(0)
    /// Rotations deleted (`keep:`, `max_age:`, `sweep:` `delete_after:`) and archives whose mode the sweep
    /// narrowed.
    public let logArchivesDeleted = Atomic<UInt64>(0)
    public let logArchivesRestricted = Atomic<UInt64>(0)

    /// Mode and owner checks (a file judged against its rule), drifts put right, directories watched for
    /// mode and owner rules, and full rescans of their trees (start-up, after `IN_Q_OVERFLOW`).
    public let permissionChecks = Atomic<UInt64>(0)
    public let permissionsRestored = Atomic<UInt64>(0)
    public let permissionWatches = Atomic<UInt64>(0)
    public let permissionRescans = Atomic<UInt64>(0)

    /// Files the rules name (and glob matches found so far).
    public let watchedFiles = Atomic<UInt64>(0)
    /// inotify watch descriptors in use (one per directory holding watched files, or per missing directory's
    /// nearest ancestor).
    public let watchDescriptors = Atomic<UInt64>(0)

    /// Sum and maximum of the time from reading a kernel event to the alert it caused being written, for
    /// alerts caused by an event (nanoseconds).
    public let alertLatencyTotal = Atomic<UInt64>(0)
    public let alertLatencyMaximum = Atomic<UInt64>(0)
    /// Alerts counted in `alertLatencyTotal`.
    public let alertLatencyCount = Atomic<UInt64>(0)

    /// Kernel event → alert written, by fixed buckets (`vigil_action_latency_seconds`).
    public let alertLatency = LatencyHistogram()

    /// Rule reloads that swapped the rules in, and reloads refused (broken rules; the old ones kept running).
    public let reloads = Atomic<UInt64>(0)
    public let reloadFailures = Atomic<UInt64>(0)
    /// Wall-clock seconds of the last reload attempt (0: none yet), for `vigil status`.
    public let lastReloadSeconds = Atomic<Int64>(0)
    /// Whether the last reload attempt succeeded (meaningless while `lastReloadSeconds` is 0).
    public let lastReloadSucceeded = Atomic<Bool>(false)

    /// Wall-clock seconds when the daemon was built (`vigil_start_time_seconds`).
    public let startTimeSeconds: Int64
    /// Monotonic time when the daemon was built, for the uptime (not moved by clock changes).
    public let startMonotonicNanoseconds: UInt64

    public init() {
        startTimeSeconds = Clock.realtime().seconds
        startMonotonicNanoseconds = Clock.monotonicNanoseconds()
    }

    /// Counts one reload attempt (the reload code calls it once per SIGHUP or rules-directory change).
    public func recordReload(succeeded: Bool) {
        if succeeded { reloads.add(1, ordering: .relaxed) } else { reloadFailures.add(1, ordering: .relaxed) }
        lastReloadSucceeded.store(succeeded, ordering: .relaxed)
        lastReloadSeconds.store(Clock.realtime().seconds, ordering: .relaxed)
    }

    /// Adds one alert's event → written latency.
    func recordAlertLatency(_ nanoseconds: UInt64) {
        alertLatency.record(nanoseconds: nanoseconds)
        alertLatencyTotal.add(nanoseconds, ordering: .relaxed)
        alertLatencyCount.add(1, ordering: .relaxed)
        var current = alertLatencyMaximum.load(ordering: .relaxed)
        while nanoseconds > current {
            let (exchanged, original) = alertLatencyMaximum.compareExchange(
                expected: current,
                desired: nanoseconds,
                ordering: .relaxed
            )
            if exchanged { break }
            current = original
        }
    }
}
