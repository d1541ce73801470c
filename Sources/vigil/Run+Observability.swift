import ArgumentParser
import Logging
import VigilDaemon

/// `vigil run`'s options for what the daemon shows of itself: `/metrics` on a loopback port, a node_exporter
/// textfile, the status socket that `vigil status` talks to.
// SKELETON: filled in by the metrics/status work.
struct ObservabilityOptions: ParsableArguments {
    /// Starts the metrics and status endpoints for `daemon`; nil when none is asked for.
    func start(daemon: Daemon, logger: Logger) throws -> ObservabilityService? { nil }
}

/// The running metrics and status endpoints.
final class ObservabilityService {
    /// Stops serving (before the daemon stops).
    func stop() {}
}
