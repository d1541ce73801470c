import Synchronization
import VigilCore
import VigilRules
import VigilSystem

// Zombies: nothing reports a reap, so each exited process that a zombie rule covers gets a timer. When its
// grace period ends it is checked once (`/proc/PID/stat` state `Z`, same start time); a zombie is alerted
// and checked again on its own timer until it is gone. No periodic scan of every process.
extension ProcessWatcher {
    func watchForZombie(_ entry: ProcessEntry, rule index: Int, exit: ExitStatus) {
        guard case .zombie(let grace) = rules[index].process.trigger else { return }
        if var watch = zombies[entry.pid] {
            if !watch.rules.contains(index) { watch.rules.append(index) }
            zombies[entry.pid] = watch
            return
        }
        guard zombies.count < settings.zombieLimit else {
            zombiesNotTracked += 1
            if zombiesNotTracked == 1 {
                // Bounded memory: past the limit, exits are not followed one by one. Said once, as an alert.
                emitInternal(
                    rule: "vigil.zombies_not_tracked",
                    severity: .warning,
                    kind: "vigil.zombies_not_tracked",
                    message:
                        "More than \(settings.zombieLimit) exited processes are waiting for their zombie check at once (a fork storm, or a parent that reaps nothing); Vigil follows \(settings.zombieLimit) and skips the zombie check of the rest until the number drops",
                    version: "zombie-limit:\(Clock.monotonicNanoseconds())"
                )
            }
            return
        }
        zombies[entry.pid] = ZombieWatch(
            entry: entry,
            rules: [index],
            exit: exit,
            exitedAt: Clock.monotonicNanoseconds()
        )
        schedule(
            .zombieCheck(pid: entry.pid, startTime: entry.startTime),
            at: Clock.monotonicNanoseconds() + UInt64(grace) * 1_000_000
        )
    }

    func checkZombie(pid: Int32, startTime: UInt64) {
        guard var watch = zombies[pid], watch.entry.startTime == startTime else { return }
        let stat = procfs.stat(pid)
        let stillZombie =
            stat.map { $0.isZombie && (startTime == 0 || $0.startTime == startTime) } ?? false
        if !stillZombie {
            zombies[pid] = nil
            if zombies.count < settings.zombieLimit / 2 { zombiesNotTracked = 0 }
            if watch.alerted {
                for index in watch.rules { emitZombie(index, watch, state: .resolved) }
            }
            return
        }
        // The parent may have changed (reparented to a subreaper); name the one that holds it now.
        if let stat, stat.ppid != watch.entry.parent { watch.entry.parent = stat.ppid }
        if !watch.alerted {
            watch.alerted = true
            for index in watch.rules { emitZombie(index, watch, state: .firing) }
        }
        zombies[pid] = watch
        schedule(
            .zombieCheck(pid: pid, startTime: startTime),
            at: Clock.monotonicNanoseconds() + settings.zombieRecheckNanoseconds
        )
    }
}
