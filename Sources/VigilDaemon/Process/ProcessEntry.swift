import VigilSystem

/// What Vigil knows about one live process: captured from `/proc` when it was found at start-up or when
/// it ran a new program, inherited from its parent when it forked. The kernel's events carry only pids, and
/// a process may be gone before `/proc` can be read, so this table entry is the truth at its exit.
///
/// Memory: about 200 bytes plus the strings; the command line is kept to `commandLineLimit` bytes. The
/// table holds one entry per live process (threads are not entries), so it is bounded by the host's
/// process count.
struct ProcessEntry {
    /// Longest command line kept (bytes). Selectors see up to `ProcessSnapshot.commandLineReadLimit` at exec.
    static let commandLineLimit = 1024

    var pid: Int32
    /// Parent's pid (the thread group id of the parent).
    var parent: Int32
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22); with the pid, the process's
    /// identity across pid reuse. 0 when unknown (a fork whose child was not read).
    var startTime: UInt64 = 0
    /// Real and effective uid; `.max` when unknown.
    var realUser: UInt32 = .max
    var effectiveUser: UInt32 = .max
    /// The kernel's name (`comm`, at most 15 bytes).
    var comm: String = ""
    /// Executable as a host path; empty when unknown (a kernel thread, or gone before it could be read).
    var executable: String = "" {
        didSet { executableName = Self.baseName(executable) }
    }
    /// The executable's base name, kept with it (names are matched at every exec).
    private(set) var executableName: String = ""
    /// Arguments joined by single spaces, cut to `commandLineLimit` bytes.
    var commandLine: String = ""
    /// cgroup v2 path, and the systemd unit it names.
    var cgroup: String = ""
    var unit: String?
    /// Indices of the rules with a selector (not `process: any`) that match this process.
    var matched: [Int] = []
    /// Started by one of Vigil's own restart or reload commands (or the probe), or forked from one: the
    /// root rule trusts what the rules themselves run.
    var startedByVigil = false
    /// False when the details were inherited at fork or the process was gone before `/proc` was read.
    var captured = false

    init(pid: Int32, parent: Int32) {
        self.pid = pid
        self.parent = parent
    }

    /// The base name of the executable, or `comm` when the executable is unknown.
    var name: String { executableName.isEmpty ? comm : executableName }

    private static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

extension ProcessEntry {
    /// Reads what process `pid` is now from `/proc` (stat and exe always; status, the command line and the
    /// cgroup only when asked, each one more read); nil when it is gone. Shared by the process watcher (at
    /// exec and in walks) and the rotation watcher (finding the writers a `postrotate:` signal goes to).
    static func capture(pid: Int32, procfs: ProcFS, users: Bool, commandLine: Bool, cgroup: Bool) -> ProcessEntry? {
        guard let stat = procfs.stat(pid) else { return nil }
        var entry = ProcessEntry(pid: pid, parent: stat.ppid)
        entry.startTime = stat.startTime
        entry.comm = stat.comm
        if users, let status = procfs.status(pid) {
            entry.realUser = status.ruid
            entry.effectiveUser = status.euid
        }
        entry.executable = procfs.executable(pid)?.path ?? ""
        if commandLine {
            let arguments = procfs.commandLine(pid, limit: 4096) ?? []
            var line = arguments.joined(separator: " ")
            if line.utf8.count > commandLineLimit {
                line = String(decoding: line.utf8.prefix(commandLineLimit), as: UTF8.self)
            }
            entry.commandLine = line
        }
        if cgroup, let path = procfs.cgroup(pid) {
            entry.cgroup = path
            entry.unit = ProcFS.unit(fromCgroup: path)
        }
        entry.captured = true
        return entry
    }
}
