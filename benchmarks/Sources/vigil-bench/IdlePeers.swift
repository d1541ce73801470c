import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

extension ProcessUsage {
    /// The usage of `pid` and every process descended from it, added up (a peer may run helpers: swatchdog
    /// its generated script and `tail`, fail2ban-server its threads). VmHWM is the sum of each process's
    /// peak, an upper bound on the tree's. Nil when `pid` is gone.
    static func readTree(_ pid: Int32) -> ProcessUsage? {
        guard var total = read(pid) else { return nil }
        var parents: [Int32: [Int32]] = [:]
        if let dir = opendir("/proc") {
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                guard let child = Int32(name), let stat = ProcFile.readText("/proc/\(child)/stat"),
                    let close = stat.lastIndex(of: ")")
                else { continue }
                // After "pid (comm)": state, then ppid.
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 1, let parent = Int32(fields[1]) { parents[parent, default: []].append(child) }
            }
        }
        var queue = parents[pid] ?? []
        while let next = queue.popLast() {
            queue += parents[next] ?? []
            guard let usage = read(next) else { continue }
            total.ticks += usage.ticks
            total.runNanoseconds += usage.runNanoseconds
            total.contextSwitches += usage.contextSwitches
            total.threads += usage.threads
            total.rssKiB += usage.rssKiB
            total.hwmKiB += usage.hwmKiB
        }
        return total
    }
}

/// One peer daemon's idle cost over the same window as vigil's, set up to watch the seed's files.
struct PeerIdle {
    var subject: String
    /// The command line, with the sandbox written `SANDBOX`, for the report.
    var command: String
    var before = ProcessUsage()
    var after = ProcessUsage()
    /// Why there is no figure (not installed, exited during the window), or nil.
    var failure: String?

    var cpuNanoseconds: UInt64 { after.runNanoseconds &- before.runNanoseconds }
    var wakeups: Int { after.contextSwitches - before.contextSwitches }
}

/// The peers of the idle measurement: each started in its own session in a sandbox directory, with config
/// files there only (no system file is touched), and stopped with its whole process group.
final class IdlePeers {
    /// A started peer, or the reason it is not running.
    private struct Running {
        var subject: String
        var command: String
        var process: ChildProcess?
        var failure: String?
    }

    private var running: [Running] = []
    /// A `sleep` that Monit's process check watches through a pid file.
    private var monitTarget: ChildProcess?

    /// Starts every peer against the seed files of `sandbox`: the config directory `/etc/analytics` and
    /// today's unified log.
    init(sandbox: SeedSandbox) {
        let work = sandbox.hostPath("/bench/peers")
        FileTree.makeDirectories(work, mode: 0o700)
        let configDirectory = sandbox.hostPath("/etc/analytics")
        let configFile = sandbox.hostPath(SeedSandbox.configPath)
        let log = sandbox.hostPath(SeedSandbox.unifiedLogPath())
        let pattern = "SSL certificate verification disabled"

        start(
            "inotifywait -m",
            "inotifywait",
            ["-m", "-q", "-e", "modify,attrib,close_write,moved_to,create,delete", configDirectory],
            work: work
        )

        // incrond: its own config (tables, lock file, allow list all in the sandbox), foreground.
        let incron = work + "/incron"
        FileTree.makeDirectories(incron + "/incron.d", mode: 0o755)
        FileTree.makeDirectories(incron + "/spool", mode: 0o755)
        writeFile(
            incron + "/incron.conf",
            """
            system_table_dir = \(incron)/incron.d
            user_table_dir = \(incron)/spool
            allowed_users = \(incron)/allow
            denied_users = \(incron)/deny
            lockfile_dir = \(incron)
            lockfile_name = incrond

            """
        )
        writeFile(incron + "/allow", "root\n")
        writeFile(
            incron + "/incron.d/vigil-idle",
            "\(configDirectory) IN_CLOSE_WRITE,IN_MOVED_TO,IN_ATTRIB /bin/true $@/$#\n"
        )
        start("incrond", "incrond", ["-n", "-f", incron + "/incron.conf"], work: work)

        // Monit at its shortest cycle, a file check (checksum) and a process check (a sleep, by pid file).
        let monit = work + "/monit"
        FileTree.makeDirectories(monit, mode: 0o700)
        do {
            let target = try ChildProcess(executable: "/bin/sleep", arguments: ["100000"])
            monitTarget = target
            writeFile(monit + "/target.pid", "\(target.pid)\n")
        } catch {
            running.append(Running(subject: "monit", command: "monit", failure: error.description))
        }
        writeFile(
            monit + "/monitrc",
            """
            set daemon 1
            set logfile \(monit)/monit.log
            set pidfile \(monit)/monit.pid
            set idfile \(monit)/monit.id
            set statefile \(monit)/monit.state
            check file upload-config with path \(configFile)
                if changed checksum then alert
            check process idle-target with pidfile \(monit)/target.pid
                if does not exist then alert

            """,
            mode: 0o600
        )
        if monitTarget != nil { start("monit (set daemon 1)", "monit", ["-I", "-c", monit + "/monitrc"], work: work) }

        // fail2ban-server: one jail on the log, its own configuration directory, socket, pid file and
        // database in the sandbox, in the foreground.
        let f2b = work + "/fail2ban"
        FileTree.makeDirectories(f2b + "/filter.d", mode: 0o755)
        FileTree.makeDirectories(f2b + "/action.d", mode: 0o755)
        writeFile(
            f2b + "/fail2ban.conf",
            """
            [Definition]
            loglevel = INFO
            logtarget = \(f2b)/fail2ban.log
            socket = \(f2b)/fail2ban.sock
            pidfile = \(f2b)/fail2ban.pid
            dbfile = \(f2b)/fail2ban.sqlite3
            dbpurgeage = 1d

            """
        )
        writeFile(
            f2b + "/jail.conf",
            """
            [DEFAULT]
            backend = auto
            [vigil-idle]
            enabled = true
            filter = vigil-idle
            logpath = \(log)
            maxretry = 3
            findtime = 600
            bantime = 600
            action =

            """
        )
        writeFile(
            f2b + "/filter.d/vigil-idle.conf",
            """
            [Definition]
            failregex = ^.*\(pattern).* from <HOST>$
            ignoreregex =

            """
        )
        start(
            "fail2ban-server (1 jail)",
            "fail2ban-server",
            ["-f", "-x", "-c", f2b, "-s", f2b + "/fail2ban.sock", "-p", f2b + "/fail2ban.pid"],
            work: work
        )

        // swatchdog tailing the log (it writes its generated script into --script-dir).
        writeFile(work + "/swatchdog.conf", "watchfor /\(pattern)/\n  echo\n")
        start(
            "swatchdog",
            "swatchdog",
            ["--config-file=" + work + "/swatchdog.conf", "--tail-file=" + log, "--script-dir=" + work],
            work: work
        )

        // SEC following the log (its default: tail, polling the input).
        writeFile(
            work + "/sec.conf",
            "type=Single\nptype=RegExp\npattern=\(pattern)\ndesc=ssl\naction=write \(work)/sec.out $0\n"
        )
        start("SEC", "sec", ["--conf=" + work + "/sec.conf", "--input=" + log], work: work)

        // forkstat: the process-death peer (the proc connector; it watches no file).
        start("forkstat -e exit", "forkstat", ["-e", "exit"], work: work)
    }

    /// Starts `tool` in a session of its own (`setsid`), output to `WORK/<tool>.out`.
    private func start(_ subject: String, _ tool: String, _ arguments: [String], work: String) {
        let command = ([tool] + arguments).joined(separator: " ")
        guard let executable = findExecutable(tool) else {
            running.append(
                Running(
                    subject: subject,
                    command: command,
                    failure: "\(tool) is not installed (benchmarks/run installs it)"
                )
            )
            return
        }
        do {
            let process = try ChildProcess(
                executable: "/usr/bin/setsid",
                arguments: [executable] + arguments,
                standardOutput: work + "/\(tool).out",
                standardError: work + "/\(tool).out"
            )
            running.append(Running(subject: subject, command: command, process: process))
        } catch {
            running.append(Running(subject: subject, command: command, failure: error.description))
        }
    }

    private func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) {
        do {
            try FileSaves.inPlace(path, text, mode: UInt32(mode))
            chmod(path, mode)  // inPlace keeps an existing file's mode
        } catch {
            print("idle: \(error)")
        }
    }

    /// Reads every running peer's usage (its process tree).
    func read() -> [Int32: ProcessUsage] {
        var usages: [Int32: ProcessUsage] = [:]
        for peer in running {
            if let pid = peer.process?.pid, let usage = ProcessUsage.readTree(pid) { usages[pid] = usage }
        }
        return usages
    }

    /// The results, from a reading before and one after the window; a peer gone by then says so with
    /// the tail of its output.
    func results(before: [Int32: ProcessUsage], after: [Int32: ProcessUsage], sandbox: SeedSandbox) -> [PeerIdle] {
        running.map { peer in
            var result = PeerIdle(
                subject: peer.subject,
                command: peer.command.split(separator: sandbox.root, omittingEmptySubsequences: false).joined(
                    separator: "SANDBOX"
                ),
                failure: peer.failure
            )
            if let pid = peer.process?.pid, result.failure == nil {
                if let b = before[pid], let a = after[pid] {
                    result.before = b
                    result.after = a
                } else {
                    let tool = String(peer.command.prefix(while: { $0 != " " }))
                    let output = ProcFile.readText(sandbox.hostPath("/bench/peers/\(tool).out")) ?? ""
                    result.failure =
                        "exited before the end of the window: \(output.split(separator: "\n").suffix(2).joined(separator: " / "))"
                }
            }
            return result
        }
    }

    /// Stops every peer: SIGTERM to its process group, SIGKILL after 3 s.
    func stop() {
        for peer in running {
            guard let process = peer.process else { continue }
            kill(-process.pid, SIGTERM)
            if process.wait(timeoutMilliseconds: 3_000) == nil {
                kill(-process.pid, SIGKILL)
                _ = process.wait(timeoutMilliseconds: 3_000)
            }
            kill(-process.pid, SIGKILL)  // helpers left in the group (swatchdog's tail)
        }
        running.removeAll()
        monitTarget?.terminate(graceMilliseconds: 1_000)
        monitTarget = nil
    }

    deinit { stop() }
}
