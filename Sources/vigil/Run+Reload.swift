import Logging
import VigilDaemon
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

extension Run {
    /// How long the rule files must stay quiet after a change before they are compiled (an editor's save
    /// is several events), and the longest a stream of changes can put a reload off.
    static let reloadSettleNanoseconds: UInt64 = 250_000_000
    static let reloadLongestDelayNanoseconds: UInt64 = 2_000_000_000

    /// The daemon's own thread after start-up, until SIGTERM or SIGINT: reloads on SIGHUP and on changes in
    /// the rule files (debounced), saves the firing conditions when they change, and resolves inherited
    /// conditions that were not asserted again in time. `ruleWatch` was set up before the rules were read.
    func serve(daemon: Daemon, signals: SignalFD, ruleWatch: RuleWatch?, logger: Logger) {
        var reloadDue: UInt64?
        var firstChange: UInt64 = 0
        var sweepDue = daemon.runDueSweeps(now: Clock.monotonicNanoseconds())
        var fds = [
            pollfd(fd: signals.descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: daemon.firingStateDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: ruleWatch?.descriptor ?? -1, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let now = Clock.monotonicNanoseconds()
            let next = [reloadDue, sweepDue].compactMap { $0 }.min()
            let timeout: CInt = next.map { $0 <= now ? 0 : CInt(min(60_000, ($0 - now) / 1_000_000 + 1)) } ?? -1
            _ = poll(&fds, nfds_t(fds.count), timeout)
            while let signal = signals.next() {
                if signal == SIGHUP {
                    daemon.reopenAlertFiles()
                    reload(daemon, cause: "SIGHUP", logger: logger)
                    reloadDue = nil
                    continue
                }
                logger.info("Signal \(signal) received; draining the pipeline and stopping")
                return
            }
            if fds[1].revents != 0 { daemon.saveFiringState(durable: false) }
            let woke = Clock.monotonicNanoseconds()
            if fds[2].revents != 0, let ruleWatch, ruleWatch.drain() {
                if reloadDue == nil { firstChange = woke }
                reloadDue = min(woke + Self.reloadSettleNanoseconds, firstChange + Self.reloadLongestDelayNanoseconds)
            }
            if let due = reloadDue, due <= woke {
                reloadDue = nil
                reload(daemon, cause: "rule files changed", logger: logger)
            }
            sweepDue = daemon.runDueSweeps(now: Clock.monotonicNanoseconds())
        }
    }

    /// Compiles the rule files and swaps them in; on any error the running rules stay, and the error is
    /// logged and alerted (`vigil.reload_failed`).
    private func reload(_ daemon: Daemon, cause: String, logger: Logger) {
        let started = Clock.monotonicNanoseconds()
        ServiceNotify.reloading(status: "reloading rules (\(cause))")
        defer { ServiceNotify.reloaded(status: "watching") }
        switch ruleOptions.compile() {
        case .failed(let lines):
            // The last line is the compiler's summary ("no rules were loaded"), which is not true of a reload.
            for line in lines.dropLast() { logger.error("\(line)") }
            logger.error("Reloading the rules (\(cause)) failed; the running rules are kept")
            daemon.reportReloadFailure(Array(lines.dropLast()), cause: cause)
        case .loaded(let ruleSet, let warnings):
            for line in warnings { logger.warning("\(line)") }
            do {
                let summary = try daemon.reload(to: ruleSet)
                let elapsed = Double(Clock.monotonicNanoseconds() - started) / 1e6
                logger.notice("Rules reloaded (\(cause)) in \(String(format2: elapsed)) ms: \(summary)")
                daemon.reportReloadSuccess(summary, cause: cause)
            } catch {
                logger.error("Reloading the rules (\(cause)) failed: \(error)")
                daemon.reportReloadFailure([error.description], cause: cause)
            }
        }
    }
}
