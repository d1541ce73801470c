import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// The demo's system-health reactions (issue 7): a runaway process, a filling disk, an unexpected listener
// and the fix of the root cron job that ran a user's script. Each is a real kernel event in the sandbox.

extension Demo {
    /// Rules the demo adds to the shipped ones: the shipped `cpu-hog` holds 30 s, too long to wait for in a
    /// demo, so a copy with a 2 s hold watches the demo's runaway job by name.
    static let demoRules = """
        # vigil demo: the shipped cpu-hog rule with a hold short enough to watch, and a limit a busy loop
        # passes even on a loaded 2-core machine.
        - rule: demo-cpu-hog
          description: The demo's runaway batch job (the shipped cpu-hog holds 30 s).
          severity: warning
          process: { name: analytics-batch }
          above: { cpu: 50%, for: 2s }
          sample: 500ms

        """

    /// Server paths the health steps use.
    static let batchJob = "/opt/analytics/bin/analytics-batch"
    static let debugServer = "/opt/analytics/bin/debug-server"
    static let databaseVolume = "/var/lib/postgresql"
    static let rootOwnedScript = "/usr/local/sbin/analytics_maintenance.sh"

    /// Writes the demo's extra rule file into the sandbox; its host path.
    static func installDemoRules(_ sandbox: SeedSandbox) throws(HarnessError) -> String {
        try sandbox.makeDirectories("/etc/vigil")
        try sandbox.write("/etc/vigil/demo.yaml", demoRules)
        return sandbox.hostPath("/etc/vigil/demo.yaml")
    }

    /// The health steps, in order; each is run by `perform` like the others. `cleanup` collects what must
    /// be undone at the end (children to kill, a tmpfs to unmount).
    static func healthSteps(_ sandbox: SeedSandbox, executable: String, cleanup: HealthCleanup) -> [Step] {
        var steps: [Step] = []
        steps.append(
            Step(
                title:
                    "A runaway batch job (analytics-batch) burns a whole core; the demo's copy of cpu-hog (above 50 %) holds 2 s, sampled every 500 ms",
                act: { sandbox throws(HarnessError) in
                    try StandIn.install("/bin/sh", at: sandbox.hostPath(batchJob))
                    cleanup.batch = try ChildProcess(
                        executable: sandbox.hostPath(batchJob),
                        arguments: ["-c", "while :; do :; done"]
                    )
                    // A runaway job at nice -10 (as root), so a machine busy with other work still gives it
                    // most of a core.
                    if let pid = cleanup.batch?.pid {
                        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(pid), -10)
                    }
                },
                expectRule: "demo-cpu-hog",
                expectState: "firing",
                untimed: "fires 2 s (the hold) after the job starts, within one sampling interval",
                timeoutMilliseconds: 20_000
            )
        )
        steps.append(
            Step(
                title: "Someone kills the runaway job",
                act: { _ throws(HarnessError) in
                    cleanup.batch?.signal(SIGKILL)
                    _ = cleanup.batch?.wait(timeoutMilliseconds: 5000)
                    cleanup.batch = nil
                },
                expectRule: "demo-cpu-hog",
                expectState: "resolved"
            )
        )
        if cleanup.mounted {
            steps.append(
                Step(
                    title:
                        "The database volume fills: 14 MiB written to \(databaseVolume) (a 16 MiB tmpfs mounted in the sandbox) in one write",
                    act: { sandbox throws(HarnessError) in
                        try writeFile(sandbox.hostPath(databaseVolume) + "/base.1", bytes: 14 << 20)
                    },
                    expectRule: "disk-usage",
                    expectState: "firing"
                )
            )
            steps.append(
                Step(
                    title: "The DBA removes the dump that filled it",
                    act: { sandbox throws(HarnessError) in unlink(sandbox.hostPath(databaseVolume + "/base.1")) },
                    expectRule: "disk-usage",
                    expectState: "resolved"
                )
            )
        }
        steps.append(
            Step(
                title: "A debug server starts listening on 0.0.0.0 on a port nobody allowed (ss -tulpn would show it)",
                act: { sandbox throws(HarnessError) in
                    try StandIn.install(executable, at: sandbox.hostPath(debugServer))
                    cleanup.listener = try ChildProcess(
                        executable: sandbox.hostPath(debugServer),
                        arguments: ["demo", "--stand-in-listen", "0"]
                    )
                },
                expectRule: "unexpected-listener",
                expectState: "firing"
            )
        )
        steps.append(
            Step(
                title: "The debug server is stopped",
                act: { _ throws(HarnessError) in
                    cleanup.listener?.signal(SIGTERM)
                    _ = cleanup.listener?.wait(timeoutMilliseconds: 5000)
                    cleanup.listener = nil
                },
                expectRule: "unexpected-listener",
                expectState: "resolved"
            )
        )
        steps.append(
            Step(
                title:
                    "Fatima moves Aanya's root job out of /home: the script to \(rootOwnedScript) (root:root 0755), /etc/crontab rewritten",
                act: { sandbox throws(HarnessError) in
                    try sandbox.makeDirectories("/usr/local/sbin")
                    try sandbox.write(
                        rootOwnedScript,
                        "#!/bin/sh\n# Nightly analytics maintenance (reviewed)\nexit 0\n"
                    )
                    chmod(sandbox.hostPath(rootOwnedScript), 0o755)
                    try sandbox.writeReplacing(
                        "/etc/crontab",
                        """
                        # /etc/crontab: system-wide crontab (the user field comes before the command)
                        SHELL=/bin/sh
                        PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin

                        17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly
                        0 2 * * * root \(rootOwnedScript)

                        """
                    )
                },
                expectRule: "root-runs-user-writable",
                expectState: "resolved"
            )
        )
        steps.append(
            Step(
                title: "Someone makes the reviewed script writable by everyone (chmod 777)",
                act: { sandbox throws(HarnessError) in
                    guard chmod(sandbox.hostPath(rootOwnedScript), 0o777) == 0 else {
                        throw HarnessError("chmod failed: \(String(cString: strerror(errno)))")
                    }
                },
                expectRule: "root-runs-user-writable",
                expectState: "firing"
            )
        )
        // Hot reload (issue 8): a rule saved into the running daemon's rules, as an editor saves it.
        steps.append(
            Step(
                title:
                    "An SRE adds a rule to /etc/vigil/demo.yaml while Vigil runs (saved by rename): picked up without a restart, judged at once",
                act: { sandbox throws(HarnessError) in
                    try sandbox.write("/etc/vigil/.demo.yaml.tmp", demoRules + reloadedRule)
                    guard
                        rename(sandbox.hostPath("/etc/vigil/.demo.yaml.tmp"), sandbox.hostPath("/etc/vigil/demo.yaml"))
                            == 0
                    else {
                        throw HarnessError("rename failed: \(String(cString: strerror(errno)))")
                    }
                },
                expectRule: "demo-ssl-verified",
                expectState: "firing",
                untimed: "250 ms of it is the debounce that makes an editor's save one reload"
            )
        )
        return steps
    }

    /// The rule the reload step adds: a state rule already true (Fatima's fix from step 4 holds), so it
    /// fires the moment the reload judges it.
    static let reloadedRule = """
        - rule: demo-ssl-verified
          description: Added by the demo while vigil runs, to show a hot reload.
          severity: info
          config: /etc/analytics/upload-service.conf
          when: { key: verify_ssl, is: true }
          message: "verify_ssl is on in {path} (a rule added by a hot reload)"

        """

    /// As root, mounts a 16 MiB tmpfs on the sandbox's database volume before Vigil starts (as the volume
    /// of a real server is); the filling-disk steps run only when it is mounted.
    static func mountDatabaseVolume(_ sandbox: SeedSandbox, cleanup: HealthCleanup) {
        guard geteuid() == 0 else { return }
        let volume = sandbox.hostPath(databaseVolume)
        guard
            let mount = try? ChildProcess(
                executable: "/bin/mount",
                arguments: ["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", volume]
            ), mount.wait(timeoutMilliseconds: 10_000) == 0
        else { return }
        cleanup.mounted = true
        cleanup.mountPoint = volume
    }

    /// Writes `bytes` to a new file in one write(2).
    static func writeFile(_ path: String, bytes: Int) throws(HarnessError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HarnessError("Failed to create '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let buffer = [UInt8](repeating: 0x30, count: bytes)
        let written = buffer.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes else {
            throw HarnessError("Failed to write '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// `vigil demo --stand-in-listen PORT`: the demo's debug server. Listens on 0.0.0.0:PORT (0: a port the
    /// kernel picks) and waits to be stopped.
    static func listenForever(port: UInt16) -> Never {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard fd >= 0, bound == 0, listen(fd, 16) == 0 else { exit(1) }
        while true { pause() }
    }
}

/// What the health steps leave running, undone at the end of the demo (or on Ctrl-C).
final class HealthCleanup: @unchecked Sendable {
    // @unchecked Sendable: used by the demo's main thread, and by its signal thread only after that one stops.
    var batch: ChildProcess?
    var listener: ChildProcess?
    var mounted = false
    var mountPoint = ""

    /// Kills what still runs and unmounts the volume.
    func undo() {
        for child in [batch, listener].compactMap({ $0 }) {
            child.signal(SIGKILL)
            _ = child.wait(timeoutMilliseconds: 5000)
        }
        batch = nil
        listener = nil
        if mounted {
            _ = umount2(mountPoint, Int32(MNT_DETACH))
            mounted = false
        }
    }
}
