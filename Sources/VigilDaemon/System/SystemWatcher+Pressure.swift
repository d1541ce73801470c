import Logging
import VigilCore
import VigilRules
import VigilSystem

// `pressure:` rules: a kernel trigger fires the rule, a timer at each window end while it fires resolves it.
extension SystemWatcher {
    /// Creates the trigger of each pressure rule this host can run. Each rule it cannot run is reported once,
    /// with its position and the fix, and is not loaded; the others run.
    func setUpPressure() {
        let pressureRules = rules.indices.filter { if case .pressure = rules[$0].rule.subject { true } else { false } }
        guard !pressureRules.isEmpty else { return }
        let support = Pressure.support(root: settings.procRoot)
        let privileged = Capabilities.has(.sysResource)
        for index in pressureRules {
            let rule = rules[index].rule
            guard case .pressure(let subject) = rule.subject else { continue }
            func skip(_ why: String) {
                logger.warning("\(rule.location): warning: rule '\(rule.id)' is not loaded: \(why)")
            }
            guard support.triggersAllowed else {
                skip(support.reason ?? "this kernel accepts no PSI triggers here; run 'vigil probe'")
                continue
            }
            let multiple = support.windowMultipleMicroseconds ?? Pressure.unprivilegedWindowMultipleMicroseconds
            if !privileged && subject.windowMicroseconds % multiple != 0 {
                skip(
                    "within: must be a multiple of \(Self.durationText(microseconds: multiple)) without CAP_SYS_RESOURCE (add it to CapabilityBoundingSet= / AmbientCapabilities= in vigil.service) or use within: \(Self.durationText(microseconds: multiple))"
                )
                continue
            }
            let path: String
            if let cgroup = subject.cgroup {
                guard let cgroupRoot = settings.cgroupRoot ?? Self.cgroup2Mount() else {
                    skip(
                        "cgroup: needs the cgroup v2 hierarchy, and none is mounted (no cgroup2 line in /proc/self/mountinfo); mount it or remove cgroup:"
                    )
                    continue
                }
                let directory = cgroupRoot + cgroup
                path = directory + "/\(subject.resource.rawValue).pressure"
                if case .failure(let error) = Pressure.read(path: path) {
                    let cause = error.cause.map { "\($0)" } ?? "\(error.code)"
                    skip(
                        "cgroup '\(cgroup)' has no readable '\(path)' (\(cause)); check cgroup: against /proc/PID/cgroup of the service (the cgroup must exist when vigil starts; cgroup v2 only)"
                    )
                    continue
                }
            } else {
                path = settings.procRoot + "/pressure/\(subject.resource.rawValue)"
            }
            let trigger: PressureTrigger
            do {
                trigger = try PressureTrigger(
                    path: path,
                    resource: PressureResource(rawValue: subject.resource.rawValue) ?? .memory,
                    kind: subject.scope == .full ? .full : .some,
                    stallMicroseconds: subject.stallMicroseconds,
                    windowMicroseconds: subject.windowMicroseconds
                )
            } catch {
                skip(error.description)
                continue
            }
            let watchIndex = pressureWatches.count
            do {
                try epoll.add(
                    trigger.descriptor,
                    tag: Self.pressureTagBase + UInt64(watchIndex),
                    events: PressureTrigger.epollEvents
                )
            } catch {
                trigger.close()
                skip("Failed to wait on the PSI trigger on '\(path)': \(error)")
                continue
            }
            pressureWatches.append(PressureWatch(rule: index, subject: subject, path: path, trigger: trigger))
        }
    }

    /// Where the cgroup v2 hierarchy is mounted: the first `cgroup2` mount of `/proc/self/mountinfo`.
    /// PSI accounts each task to its v2 cgroup whichever controllers are enabled, so on a hybrid host
    /// (`/sys/fs/cgroup/unified`) the pressure files are there too.
    static func cgroup2Mount() -> String? {
        guard let text = ProcFile.readText("/proc/self/mountinfo", limit: 1 << 20) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, fields[dash + 1] == "cgroup2",
                fields.count > 4
            else { continue }
            return String(fields[4])
        }
        return nil
    }

    /// The kernel reported the stall threshold crossed (`EPOLLPRI`), or the file went away (`EPOLLERR`:
    /// the cgroup was removed). Fires the rule when it is not firing; while it fires, the window timer
    /// decides (the kernel keeps reporting once per window while the stall lasts).
    func pressureEvent(_ index: Int) {
        guard pressureWatches.indices.contains(index) else { return }
        let watch = pressureWatches[index]
        guard !watch.dead else { return }
        eventTime = Clock.monotonicNanoseconds()
        let totals: PressureTotals
        switch Pressure.read(path: watch.path) {
        case .success(let read):
            guard let chosen = watch.subject.scope == .full ? read.full : read.some else { return }
            totals = chosen
        case .failure(let error):
            gone(watch, error)
            return
        }
        guard !watch.firing else { return }
        watch.firing = true
        watch.windowStartTotal = totals.total
        watch.avg10 = totals.avg10
        watch.windowEnd = eventTime + UInt64(watch.subject.windowMicroseconds) * 1000
        emitPressure(watch, state: .firing)
        schedule(.window(index), at: watch.windowEnd)
    }

    /// A window of a firing rule ended: resolved when less than `stall` accumulated in it, else another
    /// window is watched.
    func pressureWindowEnded(_ index: Int, now: UInt64) {
        let watch = pressureWatches[index]
        guard watch.firing, !watch.dead else { return }
        switch Pressure.read(path: watch.path) {
        case .success(let read):
            guard let totals = watch.subject.scope == .full ? read.full : read.some else { return }
            let stalled = totals.total &- watch.windowStartTotal
            watch.windowStartTotal = totals.total
            if stalled < UInt64(watch.subject.stallMicroseconds) {
                watch.firing = false
                watch.avg10 = totals.avg10
                emitPressure(watch, state: .resolved)
            } else {
                watch.windowEnd = now + UInt64(watch.subject.windowMicroseconds) * 1000
                schedule(.window(index), at: watch.windowEnd)
            }
        case .failure(let error):
            gone(watch, error)
        }
    }

    /// The pressure file cannot be read any more (its cgroup was removed): the trigger is dropped, a firing
    /// rule resolved, and the loss reported once.
    private func gone(_ watch: PressureWatch, _ error: PressureError) {
        watch.dead = true
        epoll.remove(watch.trigger.descriptor)
        watch.trigger.close()
        let rule = rules[watch.rule].rule
        logger.warning(
            "\(rule.location): warning: rule '\(rule.id)' stopped: '\(watch.path)' cannot be read any more (\(error.code)); the cgroup was removed? Restart or reload vigil once it exists again"
        )
        if watch.firing {
            watch.firing = false
            emitPressure(watch, state: .resolved)
        }
    }

    /// Sends a pressure rule's alert.
    private func emitPressure(_ watch: PressureWatch, state: AlertState) {
        let compiled = rules[watch.rule]
        let rule = compiled.rule
        let subject = watch.subject
        let host = settings.host
        let avg10 = String(watch.avg10)
        let scope = subject.cgroup ?? "host"
        let fields: (String) -> String? = { field in
            switch field {
            case "rule": rule.id
            case "severity": rule.severity.rawValue
            case "host": host
            case "resource": subject.resource.rawValue
            case "scope": subject.scope.rawValue
            case "stall": Self.durationText(microseconds: subject.stallMicroseconds)
            case "window": Self.durationText(microseconds: subject.windowMicroseconds)
            case "avg10": avg10
            case "cgroup": scope
            case "path": watch.path
            default: nil
            }
        }
        let message = rule.renderMessage(resolved: state == .resolved, fields)
        var labels = compiled.labels
        labels["resource"] = subject.resource.rawValue
        labels["scope"] = subject.scope.rawValue
        labels["cgroup"] = scope
        labels["avg10"] = avg10
        outlet.sendRuleAlert(
            host: host,
            rule: rule.id,
            severity: rule.severity.rawValue,
            instance: "pressure:\(subject.resource.rawValue):\(subject.scope.rawValue):\(scope)",
            state: state,
            version: "\(state.rawValue):\(Clock.monotonicNanoseconds())",
            kind: state == .firing ? "pressure.stalled" : "pressure.calm",
            path: watch.path,
            message: message,
            labels: labels,
            sinkMask: compiled.sinkMask,
            eventTime: eventTime
        )
    }
}
