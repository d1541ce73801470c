import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Starting and reaping child processes: `posix_spawn(3)` with an argv, never `fork` (a threaded
/// process must not fork, see DESIGN.md "Actions") and never through a shell.
public enum Spawn {
    /// Where the child's standard input, output and error go.
    public enum Streams: Sendable {
        /// The parent's descriptors.
        case inherit
        /// `/dev/null` for all three.
        case null
        /// Standard input from `/dev/null`, output and error appended to this file (created 0600).
        case file(String)
        /// Standard input inherited; output and error each appended to its file (created 0644), or inherited
        /// when nil.
        case separate(output: String?, error: String?)
    }

    /// `posix_spawn(3)`: starts `executable` (an absolute path; no `$PATH` search) with `arguments` as
    /// argv[1...]. `environment` nil passes the parent's environment; otherwise exactly these `KEY=value`
    /// strings. The child starts with an empty signal mask and every signal at its default action, so
    /// signals the parent blocks for its signalfd or ignores (SIGPIPE) behave normally in it.
    /// Returns the child's pid. See `man 3 posix_spawn`.
    @inline(never)
    public static func start(
        _ executable: String,
        arguments: [String] = [],
        environment: [String]? = nil,
        workingDirectory: String? = nil,
        streams: Streams = .inherit,
        newSession: Bool = false
    ) throws(SpawnError) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        switch streams {
        case .inherit:
            break
        case .null:
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        case .separate(let output, let error):
            if let output {
                posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            }
            if let error { posix_spawn_file_actions_addopen(&actions, 2, error, O_WRONLY | O_CREAT | O_APPEND, 0o644) }
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        if let workingDirectory {
            let rc = CVigilLinux_spawn_addchdir(&actions, workingDirectory)
            guard rc == 0 else { throw SpawnError(executable: executable, errno: Errno(rawValue: rc)) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        sigdelset(&allSignals, SIGKILL)
        sigdelset(&allSignals, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        // A new session (POSIX_SPAWN_SETSID, 0x80 in glibc 2.26+, visible only under _GNU_SOURCE) detaches a
        // service that Vigil starts from Vigil's session and process group.
        let sessionFlag: CInt = newSession ? 0x80 : 0
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | sessionFlag))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }

        var child = pid_t()
        let rc: CInt
        if envp != nil {
            rc = posix_spawn(&child, executable, &actions, &attributes, argv, &envp!)
        } else {
            rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        }
        // posix_spawn returns the error number instead of setting errno.
        guard rc == 0 else { throw SpawnError(executable: executable, errno: Errno(rawValue: rc)) }
        return child
    }

    /// `waitpid(pid, &status, 0)`: blocks until `pid` exits and reaps it; returns its wait status.
    /// `EINTR` is retried. See `man 2 waitpid`.
    @inline(never)
    public static func wait(_ pid: Int32) throws(Errno) -> Int32 {
        var status: CInt = 0
        while true {
            let r = waitpid(pid, &status, 0)
            if r == pid { return status }
            let code = errno
            if r < 0 && code == EINTR { continue }
            throw Errno(rawValue: code)
        }
    }

    /// `waitpid(pid, &status, WNOHANG)`: the wait status when `pid` has exited (and is now reaped),
    /// nil while it runs.
    @inline(never)
    public static func poll(_ pid: Int32) throws(Errno) -> Int32? {
        var status: CInt = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return status }
            if r == 0 { return nil }
            let code = errno
            if code == EINTR { continue }
            throw Errno(rawValue: code)
        }
    }

    /// Waits up to `timeoutMilliseconds` for `pid` to exit, sleeping in `poll(2)` on a pidfd
    /// (`pidfd_open(2)`, Linux 5.3), and reaps it. Returns the wait status, or nil at the deadline.
    public static func wait(_ pid: Int32, timeoutMilliseconds: Int) throws(Errno) -> Int32? {
        let deadline = Clock.monotonicNanoseconds() + UInt64(max(timeoutMilliseconds, 0)) * 1_000_000
        let pidfd = Syscall.pidfdOpen(pid) ?? -1
        defer { if pidfd >= 0 { Syscall.close(pidfd) } }
        while true {
            if let status = try poll(pid) { return status }
            let now = Clock.monotonicNanoseconds()
            if now >= deadline { return nil }
            let remaining = CInt(min((deadline - now) / 1_000_000 + 1, UInt64(CInt.max)))
            // Without a pidfd (no pidfd_open) wake every 5 ms to look again.
            var descriptor = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            _ = Glibc.poll(&descriptor, pidfd >= 0 ? 1 : 0, pidfd >= 0 ? remaining : min(remaining, 5))
        }
    }
}

/// Why a child process could not be started.
public struct SpawnError: Error, Sendable, CustomStringConvertible {
    /// The program that was to run.
    public let executable: String
    /// What `posix_spawn` returned.
    public let errno: Errno

    /// Creates the error for `executable`.
    public init(executable: String, errno: Errno) {
        self.executable = executable
        self.errno = errno
    }

    /// One line: what failed, the program in quotes, the cause, what to do (E2).
    public var description: String {
        let remedy: String
        switch errno {
        case .noSuchFileOrDirectory: remedy = "; check the path (no $PATH search is done)"
        case .permissionDenied: remedy = "; it must be executable by the user vigil runs as"
        case .resourceTemporarilyUnavailable: remedy = "; the process limit (ulimit -u, pids cgroup) was reached"
        default: remedy = ""
        }
        return "Failed to start '\(executable)': \(errno)\(remedy)"
    }
}
