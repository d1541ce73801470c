import VigilCore
import VigilRules
import VigilSystem

/// The run-time state of `above:` rules (CPU, memory share or resident set held above a limit), kept by
/// the process watcher on its own thread.
///
/// Which processes a rule selects is known without sampling: the set of pids is kept up to date from the
/// events the watcher already handles (fork, exec, name and user changes, exit, and the walks of `/proc`
/// at start-up and after lost events). Only those pids are read, on a `TimerFD` deadline that exists only
/// while a threshold rule is loaded: without one, nothing here ever wakes the thread.
///
/// Rules are grouped by their `sample:` period; each group has its own `ProcessSampler` (a sampler keeps
/// the previous sample only of the pids of its last round, so two periods sharing one would forget each
/// other's pids). A group's round reads the union of its rules' pids once.
///
/// Per (rule, process) a `HoldThreshold` is kept only from the first sample above the limit until the
/// process is back at or below it (or exits), so the state grows with the processes above a limit, not
/// with the processes watched.
struct ThresholdState {
    /// A `sample:` period and the rules sampled at it.
    struct Group {
        let periodNanoseconds: UInt64
        var rules: [Int]
        let sampler: ProcessSampler
        /// When the next round is due (monotonic); 0 until sampling starts.
        var nextDue: UInt64 = 0
        /// The round's pids, reused between rounds.
        var pids: [Int32] = []
    }

    /// One process above one rule's limit: its hold, and what was last measured (for the resolution
    /// that follows its exit).
    struct Track {
        var startTime: UInt64
        var hold: HoldThreshold
        var since: UInt64 = 0
        var last: ProcessSampler.Sample
    }

    /// A (rule, pid) pair.
    struct Key: Hashable {
        var rule: Int
        var pid: Int32
    }

    /// Indices (into the watcher's rules) of the threshold rules, and each one's threshold.
    private(set) var rules: [Int] = []
    private(set) var thresholds: [Int: ProcessThreshold] = [:]
    /// The pids each threshold rule selects now.
    var members: [Int: Set<Int32>] = [:]
    var groups: [Group] = []
    var tracks: [Key: Track] = [:]

    /// Threshold state for the compiled process rules; empty (and never scheduled) when none has `above:`.
    init(_ compiled: [ProcessWatcher.CompiledRule]) {
        for (index, rule) in compiled.enumerated() {
            guard case .threshold(let threshold) = rule.process.trigger else { continue }
            rules.append(index)
            thresholds[index] = threshold
            members[index] = []
            let period = UInt64(threshold.sampleMilliseconds) * 1_000_000
            if let group = groups.firstIndex(where: { $0.periodNanoseconds == period }) {
                groups[group].rules.append(index)
            } else {
                groups.append(
                    Group(
                        periodNanoseconds: period,
                        rules: [index],
                        sampler: ProcessSampler(youngNanoseconds: period * 2)
                    )
                )
            }
        }
    }

    var isEmpty: Bool { rules.isEmpty }
}

extension ProcessWatcher {
    /// Arms the first round of each sampling period (after the start-up walk has filled the member sets).
    /// Does nothing without threshold rules.
    func startThresholdSampling() {
        guard !thresholds.isEmpty else { return }
        let now = Clock.monotonicNanoseconds()
        for group in thresholds.groups.indices {
            thresholds.groups[group].nextDue = now
        }
        schedule(.thresholdSample, at: now)
    }

    /// Keeps the member sets in line with what `entry` matches now: called whenever the watcher (re)computes
    /// a process's matches, and at fork (a child matches what its parent did until it execs).
    func updateThresholdMembership(_ entry: ProcessEntry) {
        guard !thresholds.isEmpty else { return }
        for index in thresholds.rules {
            let member = rules[index].selector.matchesEverything || entry.matched.contains(index)
            if member {
                thresholds.members[index, default: []].insert(entry.pid)
            } else if thresholds.members[index]?.remove(entry.pid) != nil {
                // No longer selected (it ran another program): a firing alert about it resolves.
                endThresholdTrack(index, pid: entry.pid, entry: entry, status: "no longer selected")
            }
        }
    }

    /// A process ended: it leaves every member set, and its firing alerts resolve.
    func thresholdProcessEnded(_ entry: ProcessEntry) {
        guard !thresholds.isEmpty else { return }
        for index in thresholds.rules where thresholds.members[index]?.remove(entry.pid) != nil {
            endThresholdTrack(index, pid: entry.pid, entry: entry, status: "exited")
        }
    }

    /// Forgets the (rule, pid) track; resolves it first when it was firing.
    private func endThresholdTrack(_ index: Int, pid: Int32, entry: ProcessEntry, status: String) {
        guard let track = thresholds.tracks.removeValue(forKey: .init(rule: index, pid: pid)) else { return }
        guard track.hold.isFiring else { return }
        emitThreshold(
            index,
            entry: entry,
            sample: track.last,
            state: .resolved,
            since: track.since,
            now: Clock.monotonicNanoseconds(),
            status: status
        )
    }

    /// The timer: runs every group whose round is due, then arms the next round.
    func sampleThresholds() {
        let now = Clock.monotonicNanoseconds()
        // A round due within a millisecond runs now rather than waking the thread again for it.
        let slack: UInt64 = 1_000_000
        var next = UInt64.max
        for group in thresholds.groups.indices {
            var due = thresholds.groups[group].nextDue
            if due <= now &+ slack {
                sampleGroup(group)
                // The next round keeps the period's phase; rounds missed (the thread was busy) are skipped.
                let period = thresholds.groups[group].periodNanoseconds
                due &+= period
                if due <= now { due = now &+ period - (now - due) % period }
                thresholds.groups[group].nextDue = due
            }
            next = min(next, due)
        }
        if next != .max { schedule(.thresholdSample, at: next) }
    }

    /// Samples the union of a group's member pids once and feeds each rule's holds.
    private func sampleGroup(_ group: Int) {
        var pids = thresholds.groups[group].pids
        pids.removeAll(keepingCapacity: true)
        let groupRules = thresholds.groups[group].rules
        if groupRules.count == 1, let only = thresholds.members[groupRules[0]] {
            pids.append(contentsOf: only)
        } else {
            var union = Set<Int32>()
            for index in groupRules { union.formUnion(thresholds.members[index] ?? []) }
            pids.append(contentsOf: union)
        }
        let samples = thresholds.groups[group].sampler.sample(pids)
        thresholds.groups[group].pids = pids
        let now = Clock.monotonicNanoseconds()
        for index in groupRules {
            guard let threshold = thresholds.thresholds[index], let members = thresholds.members[index] else {
                continue
            }
            for sample in samples where members.contains(sample.pid) {
                feedThreshold(index, threshold, sample, now: now)
            }
        }
    }

    /// One sample of one process for one rule: starts, holds, fires or clears its track.
    private func feedThreshold(
        _ index: Int,
        _ threshold: ProcessThreshold,
        _ sample: ProcessSampler.Sample,
        now: UInt64
    ) {
        let value: Double
        switch threshold.measure {
        case .cpu:
            guard let cpu = sample.cpuPercent else { return }  // a first sample has no CPU figure yet
            value = cpu
        case .memory: value = sample.memoryPercent
        case .rss: value = Double(sample.rssBytes)
        }
        let key = ThresholdState.Key(rule: index, pid: sample.pid)
        var track = thresholds.tracks[key]
        if let existing = track, existing.startTime != sample.startTime {
            // The pid names another process now (its exit was lost): the old one's alert resolves.
            let old = table[sample.pid] ?? ProcessEntry(pid: sample.pid, parent: 0)
            endThresholdTrack(index, pid: sample.pid, entry: old, status: "exited")
            track = nil
        }
        guard value > threshold.limit || track != nil else { return }  // at or below, and nothing held
        var current =
            track
            ?? ThresholdState.Track(
                startTime: sample.startTime,
                hold: HoldThreshold(
                    threshold: threshold.limit,
                    holdNanoseconds: UInt64(threshold.holdMilliseconds) * 1_000_000
                ),
                last: sample
            )
        current.last = sample
        // CPU is a share of the interval since the previous sample: a run above counts from its start.
        let transition =
            threshold.measure == .cpu
            ? current.hold.feed(value, at: now, intervalStart: sample.intervalStart)
            : current.hold.feed(value, at: now)
        let entry = table[sample.pid] ?? ProcessEntry(pid: sample.pid, parent: 0)
        switch transition {
        case .fired(let since):
            current.since = since
            thresholds.tracks[key] = current
            emitThreshold(index, entry: entry, sample: sample, state: .firing, since: since, now: now, status: nil)
        case .cleared:
            thresholds.tracks[key] = nil
            emitThreshold(
                index,
                entry: entry,
                sample: sample,
                state: .resolved,
                since: current.since,
                now: now,
                status: "back at or below the limit"
            )
        case nil:
            // Below again before the hold was reached: nothing to keep.
            thresholds.tracks[key] = value > threshold.limit ? current : nil
        }
    }

    /// The fields a threshold alert adds to a process's fields.
    static func thresholdText(_ threshold: ProcessThreshold) -> String {
        let limit: String
        switch threshold.measure {
        case .cpu, .memory: limit = percentText(threshold.limit)
        case .rss: limit = bytesText(UInt64(threshold.limit))
        }
        return "\(threshold.measure.rawValue) \(limit)"
    }

    /// `93.4%`: one decimal, enough for a limit compared by the percent.
    static func percentText(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)%"
    }

    /// `512.0 MiB`, `3.2 GiB`, `900 KiB`, `12 B`: 1024-based, as `rss:` is written.
    static func bytesText(_ bytes: UInt64) -> String {
        let units: [(String, UInt64)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)]
        for (name, size) in units where bytes >= size {
            let tenths = Int((Double(bytes) / Double(size) * 10).rounded())
            return "\(tenths / 10).\(tenths % 10) \(name)"
        }
        return bytes >= 1024 ? "\(bytes / 1024) KiB" : "\(bytes) B"
    }
}
