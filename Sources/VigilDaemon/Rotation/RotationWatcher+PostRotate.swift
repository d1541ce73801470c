import Logging
import Synchronization
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// `postrotate:`: telling the writer to reopen its log, once per rule and batch of rotations. Where systemd is
// PID 1 and the rule names a unit: `systemctl reload UNIT`; else the rule's `command:` (argv, posix_spawn,
// never a shell); else `signal:` (SIGHUP by default) to every process `to:` selects, found by walking
// /proc. Commands are waited for through a pidfd in the watcher's epoll set, so the thread never blocks.
extension RotationWatcher {
    /// What postrotate did.
    struct PostOutcome {
        /// For the alerts' outcome; nil when the rule has no postrotate.
        var text: String?
        /// A command runs: the rule's compression waits for it.
        var spawned = false
    }

    func postRotate(rule index: Int, paths: [String]) -> PostOutcome {
        guard let post = rules[index].subject.postRotate else { return PostOutcome() }
        if settings.systemdRunning, let unit = post.unit {
            let name = ProcessWatcher.unitName(unit)
            let candidates = ["/usr/bin/systemctl", "/bin/systemctl"]
            if let systemctl = candidates.first(where: { candidate in access(candidate, X_OK) == 0 }) {
                return spawn(
                    rule: index,
                    argv: [systemctl, "reload", name],
                    description: "systemctl reload \(name)",
                    paths: paths
                )
            }
        }
        if var command = post.command, !command.isEmpty {
            let shown = command.joined(separator: " ")
            command[0] = settings.root.hostPath(command[0])
            return spawn(rule: index, argv: command, description: "'\(shown)'", paths: paths)
        }
        guard let selector = rules[index].signalTargets else {
            postRotateFailed(
                rule: index,
                paths: paths,
                "postrotate: cannot tell the writer of \(paths.joined(separator: ", ")) to reopen it: "
                    + (post.unit != nil
                        ? "systemd is not PID 1 here and the rule gives no command: or to:"
                        : "the rule gives neither unit:, command: nor to:")
                    + "; add command: [/path/to/reopen] or to: { exe: /usr/bin/the-writer }",
                signature: "unreachable"
            )
            return PostOutcome(text: "writer not told to reopen")
        }
        let signal = post.signal ?? SIGHUP
        let signalName = SignalNames.name(of: signal)
        // The processes `to:` selects, from /proc (parents read first so `parent:` selectors see them).
        var table: [Int32: ProcessEntry] = [:]
        for pid in procfs.pids() where pid != ownPid {
            if let entry = ProcessEntry.capture(
                pid: pid,
                procfs: procfs,
                users: selector.needsUsers,
                commandLine: selector.needsCommandLine,
                cgroup: selector.needsCgroup
            ) {
                table[pid] = entry
            }
        }
        let targets = table.values.filter { selector.matches($0, parent: { table[$0] }) }.map(\.pid).sorted()
        guard !targets.isEmpty else {
            postRotateFailed(
                rule: index,
                paths: paths,
                "postrotate: no running process matches to: of rule '\(rules[index].rule.id)', so no \(signalName) was sent after rotating \(paths.joined(separator: ", ")); a writer that keeps its old descriptor goes on writing into the rotation. Fix to: or start the writer",
                signature: "no-target"
            )
            return PostOutcome(text: "no writer to signal")
        }
        if settings.dryRun != nil {
            let named = targets.map { "\($0) (\(table[$0]?.name ?? "?"))" }
            return PostOutcome(text: "would send \(signalName) to pid \(named.joined(separator: ", "))")
        }
        var sent: [Int32] = []
        var refused: [String] = []
        for pid in targets {
            if kill(pid, signal) == 0 {
                sent.append(pid)
            } else {
                let code = errno
                if code != ESRCH {
                    refused.append(
                        "pid \(pid): \(String(cString: strerror(code)))"
                            + (code == EPERM ? " (vigil lacks CAP_KILL)" : "")
                    )
                }
            }
        }
        if !refused.isEmpty {
            postRotateFailed(
                rule: index,
                paths: paths,
                "postrotate: sending \(signalName) to the writer failed: \(refused.joined(separator: "; "))",
                signature: "kill"
            )
        }
        guard !sent.isEmpty else { return PostOutcome(text: "\(signalName) not delivered") }
        failures["post:\(index)"] = nil
        return PostOutcome(text: "\(signalName) sent to pid \(sent.map(String.init).joined(separator: ", "))")
    }

    private func spawn(rule index: Int, argv: [String], description: String, paths: [String]) -> PostOutcome {
        if settings.dryRun != nil { return PostOutcome(text: "would run \(description)") }
        var argv = argv
        // The pipeline runs at a raised priority (Daemon.raisePipelinePriority); a command must not inherit it.
        errno = 0
        let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        if errno == 0 && nice < 0 && access("/usr/bin/nice", X_OK) == 0 {
            argv = ["/usr/bin/nice", "-n", String(-nice)] + argv
        }
        let environment = [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "VIGIL_RULE=\(rules[index].rule.id)", "VIGIL_ACTION=postrotate",
            "VIGIL_PATHS=\(paths.joined(separator: " "))",
        ]
        let pid: Int32
        do {
            pid = try Spawn.start(
                argv[0],
                arguments: Array(argv.dropFirst()),
                environment: environment,
                streams: .null,
                newSession: true
            )
        } catch {
            postRotateFailed(
                rule: index,
                paths: paths,
                "postrotate: could not start \(description): \(error)",
                signature: "spawn"
            )
            return PostOutcome(text: "\(description) could not start")
        }
        let tag = nextChildTag
        nextChildTag += 1
        let deadline = Clock.monotonicNanoseconds() + settings.postRotateTimeoutNanoseconds
        // FIXME(kernel-baseline): without pidfd_open (Linux 5.3) the child is looked at every 100 ms instead.
        let pidfd = Syscall.pidfdOpen(pid) ?? -1
        if pidfd < 0 || (try? epoll.add(pidfd, tag: tag)) == nil {
            timers.push(Clock.monotonicNanoseconds() + 100_000_000, .childDeadline(tag: tag))
        }
        timers.push(deadline, .childDeadline(tag: tag))
        children[tag] = Child(pid: pid, pidfd: pidfd, rule: index, description: description, deadline: deadline)
        return PostOutcome(text: "\(description) run", spawned: true)
    }

    /// A postrotate child may have ended (its pidfd is readable, or a timer): reap it, alert a failure, and
    /// let the rule's compression go on. `force`: its deadline passed; go on without it (it is reaped when it
    /// ends).
    func reapChild(tag: UInt64, force: Bool) {
        guard var child = children[tag] else { return }
        let status = try? Spawn.poll(child.pid)
        let now = Clock.monotonicNanoseconds()
        if let status {
            if child.pidfd >= 0 {
                epoll.remove(child.pidfd)
                Syscall.close(child.pidfd)
            }
            children[tag] = nil
            let exit = ExitStatus(waitStatus: status)
            if exit.signal != nil || (exit.code ?? 0) != 0 {
                postRotateFailed(
                    rule: child.rule,
                    paths: [],
                    "postrotate: \(child.description) \(exit.description); the writer may still write into the rotated file. Check the command (run it by hand)",
                    signature: "exit:\(status)"
                )
            } else {
                failures["post:\(child.rule)"] = nil
            }
        } else if child.pidfd < 0 && (now < child.deadline || child.deadline == 0) {
            timers.push(now + 100_000_000, .childDeadline(tag: tag))
        } else if force && now >= child.deadline && child.deadline != 0 {
            postRotateFailed(
                rule: child.rule,
                paths: [],
                "postrotate: \(child.description) still runs after \(settings.postRotateTimeoutNanoseconds / 1_000_000_000) s; compressing without waiting for it",
                signature: "timeout"
            )
            child = Child(
                pid: child.pid,
                pidfd: child.pidfd,
                rule: child.rule,
                description: child.description,
                deadline: 0
            )
            children[tag] = child
        } else {
            return
        }
        // The rule's rotations waited for this child (unless another child of the rule still runs).
        let rule = child.rule
        guard !children.values.contains(where: { $0.rule == rule && $0.deadline != 0 }),
            let waiting = awaitingChild.removeValue(forKey: rule)
        else { return }
        complete(rule: rule, rotations: waiting, retention: false)
    }

    private func postRotateFailed(rule: Int, paths: [String], _ message: String, signature: String) {
        let key = "post:\(rule)"
        if failures[key]?.signature == signature {
            logger.debug("\(message)")
            return
        }
        failures[key] = FailureState(
            signature: signature,
            nextAttempt: 0,
            backoff: 0,
            firstSeen: Clock.realtime().seconds
        )
        emitFailure(
            rule: rule,
            path: paths.first ?? rules[rule].subject.paths.first?.raw ?? "",
            Failure(step: "postrotate", errno: 0, message: message),
            version: "postrotate:\(signature):\(Clock.realtime().seconds):\(Clock.monotonicNanoseconds())"
        )
    }
}
