import Logging
import Synchronization
import VigilSystem

/// systemd's watchdog (`WatchdogSec=`): `WATCHDOG=1` sent from the matcher's loop, so that a stuck
/// pipeline stops the pings and systemd restarts the daemon.
///
/// Armed only when systemd asked for it (`$WATCHDOG_USEC`, for this pid: `sd_watchdog_enabled(3)`): then a
/// timer fires every half period and the matcher's epoll loop calls `tick()`. A ping therefore proves that
/// the matcher's loop goes round (a matcher blocked in a write to a full pipe never ticks) and, checked in
/// `tick()`, that the action worker is not stuck: it waits for work, or it handed a batch to the sinks since
/// the last tick. Without `$WATCHDOG_USEC` there is no timer and no wake-up at all.
final class PipelineWatchdog: @unchecked Sendable {
    // @unchecked Sendable: `follow` is called before the matcher's thread starts; afterwards only that
    // thread calls `tick()`.

    /// Half of `$WATCHDOG_USEC`, in nanoseconds (0: disarmed).
    let intervalNanoseconds: UInt64
    private let timer: TimerFD?
    private var worker: ActionWorker?
    private var logger: Logger?
    /// The worker's `progress` at the previous tick.
    private var lastProgress: UInt64 = 0
    /// Monotonic time of the previous tick (0: none yet).
    private var lastTick: UInt64 = 0
    /// A stall of the worker was logged and has not ended yet (one warning per stall).
    private var workerStallReported = false

    /// Reads `$WATCHDOG_USEC`/`$WATCHDOG_PID`; arms nothing when they do not ask for a watchdog for this
    /// process.
    convenience init() {
        self.init(periodMicroseconds: ServiceNotify.watchdogMicroseconds())
    }

    /// `periodMicroseconds`: the whole `WatchdogSec=` (nil: no watchdog). Pings go out every half of it.
    init(periodMicroseconds: UInt64?) {
        guard let periodMicroseconds, let timer = try? TimerFD() else {
            intervalNanoseconds = 0
            timer = nil
            return
        }
        intervalNanoseconds = max(1, periodMicroseconds * 1000 / 2)
        self.timer = timer
        timer.arm(deadline: Clock.monotonicNanoseconds() + intervalNanoseconds)
    }

    /// Makes each tick check the action worker too, and report stalls to `logger`. Call before the
    /// matcher's thread starts.
    func follow(worker: ActionWorker, logger: Logger) {
        self.worker = worker
        self.logger = logger
    }

    /// The timer descriptor the matcher's epoll waits on; nil when no watchdog was asked for.
    var descriptor: CInt? { timer?.descriptor }

    /// Called on the matcher's thread when `descriptor` is readable: re-arms the timer, and pings unless the
    /// worker is stuck.
    func tick() {
        guard let timer else { return }
        timer.acknowledge()
        let now = Clock.monotonicNanoseconds()
        timer.arm(deadline: now + intervalNanoseconds)
        // Late by more than half an interval: the matcher's loop itself did not go round (systemd kills at
        // two intervals without a ping, so this is only seen after a stall shorter than that).
        if lastTick != 0 && now - lastTick > intervalNanoseconds * 3 / 2 {
            logger?.warning(
                "Watchdog: the file matcher's loop did not run for \((now - lastTick) / 1_000_000) ms (blocked writing an alert to a full pipe or a stalled file sink?); systemd restarts vigil when this reaches WatchdogSec="
            )
        }
        lastTick = now
        if let worker {
            // Even: the worker waits for work (nothing pending). Odd: it works; unchanged since the last
            // tick means it has not finished a batch for a whole interval.
            let progress = worker.progress.load(ordering: .acquiring)
            let stuck = progress == lastProgress && progress & 1 == 1
            lastProgress = progress
            if stuck {
                if !workerStallReported {
                    workerStallReported = true
                    logger?.warning(
                        "Watchdog: the action worker made no progress for \(intervalNanoseconds / 1_000_000) ms (blocked writing to an alert sink?); not pinging systemd, which restarts vigil if it stays stuck for WatchdogSec="
                    )
                }
                return
            }
            if workerStallReported {
                workerStallReported = false
                logger?.notice("Watchdog: the action worker makes progress again; pinging systemd again")
            }
        }
        ServiceNotify.watchdogPing()
    }
}
