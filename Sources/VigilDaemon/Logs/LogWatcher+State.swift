import Logging
import Synchronization
import VigilCore
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

extension LogWatcher {
    /// The state as it is now: every followed file's offset, and each JSON Lines sink's size.
    func snapshot() -> LogState {
        let time = Clock.realtime()
        var state = LogState(savedAtNanoseconds: time.seconds * 1_000_000_000 + Int64(time.nanoseconds))
        for file in byIdentity.values.sorted(by: { ($0.key.device, $0.key.inode) < ($1.key.device, $1.key.inode) }) {
            state.files.append(
                LogState.File(
                    device: file.key.device,
                    inode: file.key.inode,
                    fingerprint: file.fingerprint,
                    offset: file.offset,
                    path: file.path,
                    copyPath: file.sanitizer?.copyPath,
                    copySize: file.sanitizer?.copySize ?? 0
                )
            )
        }
        for case let path? in settings.sinkPaths {
            var info = stat()
            if stat(path, &info) == 0 { state.sinkSizes[path] = Int64(info.st_size) }
        }
        return state
    }

    /// Saves the state when something changed and the interval has passed. Offsets are recorded only once
    /// the alerts of the lines before them are in the sinks: a snapshot waits (`pendingState`) until the
    /// worker has taken every alert sent before it.
    func saveState(now: UInt64) {
        if let pending = pendingState, outlet.delivered(upTo: pending.pushed) {
            write(pending.state, durable: false)
            pendingState = nil
        }
        guard stateChanged else {
            nextSave = now + settings.saveIntervalNanoseconds
            return
        }
        let state = snapshot()
        let pushed = outlet.pushedFrames
        stateChanged = false
        if outlet.delivered(upTo: pushed) {
            write(state, durable: false)
            pendingState = nil
        } else {
            pendingState = (state, pushed)
        }
        for index in rules.indices where rules[index].windows != nil { rules[index].windows!.sweep(now: now) }
        nextSave = now + settings.saveIntervalNanoseconds
    }

    /// At shutdown: waits (up to two seconds) for the worker to deliver what this thread sent, then saves the
    /// state durably. If a sink still holds alerts back, the last delivered state stays, and the lines after
    /// it are processed again at the next start.
    func finalSave() {
        let state = snapshot()
        let pushed = outlet.pushedFrames
        let deadline = Clock.monotonicNanoseconds() + 2_000_000_000
        while !outlet.delivered(upTo: pushed) && Clock.monotonicNanoseconds() < deadline { usleep(1000) }
        if outlet.delivered(upTo: pushed) {
            write(state, durable: true)
        } else if let pending = pendingState, outlet.delivered(upTo: pending.pushed) {
            write(pending.state, durable: true)
        }
        for file in byIdentity.values { file.close() }
        byIdentity.removeAll()
        byName.removeAll()
    }

    private func write(_ state: LogState, durable: Bool) {
        // A dry run reads the saved offsets but leaves them as they were.
        if settings.dryRun != nil { return }
        do {
            try store.save(state, durable: durable)
            if reportedStateFailure {
                logger.notice("The log state file '\(store.path)' is written again")
                reportedStateFailure = false
            }
        } catch {
            if !reportedStateFailure {
                logger.error("\(error)")
                reportedStateFailure = true
            }
            stateChanged = true
        }
    }
}
