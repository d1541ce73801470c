/// systemd's watchdog (`WatchdogSec=`): `WATCHDOG=1` sent from the matcher's loop, so that a stuck
/// pipeline stops the pings and systemd restarts the daemon.
// SKELETON: filled in by the notify and watchdog work.
final class PipelineWatchdog: @unchecked Sendable {
    init() {}

    /// The timer descriptor the matcher's epoll waits on; nil when no watchdog was asked for.
    var descriptor: CInt? { nil }

    /// Called on the matcher's thread when `descriptor` is readable.
    func tick() {}
}
