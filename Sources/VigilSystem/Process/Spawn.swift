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
        return try spawn(
            executable,
            arguments: arguments,
            environment: environment,
            newSession: newSession,
            actions: &actions
        )
    }

    /// `posix_spawn(3)` with the given file actions: the child starts with an empty signal mask and every
    /// signal at its default action, in a new session or a process group of its own when asked. Shared
    /// by `start`, `startFeeding` and `startCapturing`.
    static func spawn(
        _ executable: String,
        arguments: [String],
        environment: [String]?,
        newSession: Bool = false,
        newProcessGroup: Bool = false,
        actions: inout posix_spawn_file_actions_t
    ) throws(SpawnError) -> Int32 {
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
        // A process group of its own (pgid = its pid): a timeout can signal the program and its children.
        if newProcessGroup { posix_spawnattr_setpgroup(&attributes, 0) }
        let groupFlag: CInt = newProcessGroup ? CInt(POSIX_SPAWN_SETPGROUP) : 0
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | sessionFlag | groupFlag)
        )

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

/// A child started by `Spawn.startFeeding`: its standard input is fed by the caller, its standard error is
/// read back by the caller.
public struct FedChild: Sendable {
    /// The child's pid.
    public let pid: Int32
    /// The caller's end of the child's standard input (non-blocking, close-on-exec).
    public let input: CInt
    /// The caller's end of the child's standard error (non-blocking, close-on-exec).
    public let error: CInt
}

/// How `Spawn.communicate` ended.
public struct Communication: Sendable {
    /// The child's wait status; nil when it timed out, or when it could not be waited for (reaped
    /// elsewhere: `ECHILD`).
    public var status: Int32?
    /// The deadline passed: the child was killed with SIGKILL and reaped.
    public var timedOut: Bool
    /// The first bytes of what the child wrote to its standard error (at most the limit asked for).
    public var errorOutput: [UInt8]
    /// How many bytes of the input the child took before it exited, closed its standard input or was killed.
    public var inputWritten: Int
}

extension Spawn {
    /// Starts `executable` (an absolute path, argv as in `start`) with its standard input and standard error
    /// connected to the caller and standard output on `/dev/null`; for programs fed a document on standard
    /// input, such as the sendmail interface.
    ///
    /// The two channels are `socketpair(2)`s rather than `pipe(2)`s: `socketpair` takes `SOCK_CLOEXEC`
    /// atomically (`pipe2` is not exported by the Swift Glibc module), so a child that another thread spawns
    /// at the same moment never inherits the input's write end and holds back the end of file; and `send`
    /// with `MSG_NOSIGNAL` reports a reader that went away as `EPIPE` instead of raising `SIGPIPE`. The child
    /// sees ordinary byte streams on descriptors 0 and 2. See `man 2 socketpair`, `man 3 posix_spawn`.
    @inline(never)
    public static func startFeeding(
        _ executable: String,
        arguments: [String] = [],
        environment: [String]? = nil
    ) throws(SpawnError) -> FedChild {
        let kind = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        var input: [CInt] = [-1, -1]
        var output: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, kind, 0, &input) == 0 else {
            throw SpawnError(executable: executable, errno: Errno(rawValue: errno))
        }
        guard socketpair(AF_UNIX, kind, 0, &output) == 0 else {
            let code = errno
            Syscall.close(input[0])
            Syscall.close(input[1])
            throw SpawnError(executable: executable, errno: Errno(rawValue: code))
        }
        // input[1] and output[1] become the child's 0 and 2 (dup2 clears close-on-exec on the copy); the
        // originals close at exec. The child only reads its input and only writes its error output.
        shutdown(input[1], CInt(SHUT_WR))
        shutdown(output[1], CInt(SHUT_RD))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[1], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 2)
        let pid: Int32
        do {
            pid = try spawn(executable, arguments: arguments, environment: environment, actions: &actions)
        } catch {
            for fd in input + output { Syscall.close(fd) }
            throw error
        }
        Syscall.close(input[1])
        Syscall.close(output[1])
        // Our ends: no reading from the input, no writing to the error output, never blocking.
        shutdown(input[0], CInt(SHUT_RD))
        shutdown(output[0], CInt(SHUT_WR))
        _ = fcntl(input[0], F_SETFL, fcntl(input[0], F_GETFL) | O_NONBLOCK)
        _ = fcntl(output[0], F_SETFL, fcntl(output[0], F_GETFL) | O_NONBLOCK)
        return FedChild(pid: pid, input: input[0], error: output[0])
    }

    /// Writes `input` to a child from `startFeeding`, closes its input, collects the first `errorLimit`
    /// bytes of its error output (the rest is read and dropped, so a chatty child never blocks on a full
    /// buffer), and waits for it to exit, all within `timeoutMilliseconds`. At the deadline the child is
    /// killed with SIGKILL and reaped. Closes both descriptors. A child that exits or closes its input
    /// before taking everything is not an error here: its exit status says what happened.
    /// Sleeps in `poll(2)` on the two sockets and a pidfd. See `man 2 poll`, `man 2 pidfd_open`.
    public static func communicate(
        _ child: FedChild,
        input: [UInt8],
        errorLimit: Int,
        timeoutMilliseconds: Int
    ) -> Communication {
        let deadline = Clock.monotonicNanoseconds() + UInt64(max(timeoutMilliseconds, 0)) * 1_000_000
        let pidfd = Syscall.pidfdOpen(child.pid) ?? -1
        var inputFD: CInt = child.input
        var errorFD: CInt = child.error
        defer {
            if pidfd >= 0 { Syscall.close(pidfd) }
            if inputFD >= 0 { Syscall.close(inputFD) }
            if errorFD >= 0 { Syscall.close(errorFD) }
        }
        var result = Communication(status: nil, timedOut: false, errorOutput: [], inputWritten: 0)
        var scratch = [UInt8](repeating: 0, count: 4096)
        if input.isEmpty {
            Syscall.close(inputFD)
            inputFD = -1
        }
        while true {
            let exited: Bool
            do {
                result.status = try poll(child.pid)
                exited = result.status != nil
            } catch {
                exited = true
            }
            if exited {
                // Whatever the child wrote before it exited is already in the socket.
                if errorFD >= 0 { _ = drain(errorFD, into: &result.errorOutput, limit: errorLimit, scratch: &scratch) }
                return result
            }
            let now = Clock.monotonicNanoseconds()
            if now >= deadline {
                _ = kill(child.pid, SIGKILL)
                _ = try? wait(child.pid)
                result.timedOut = true
                if errorFD >= 0 { _ = drain(errorFD, into: &result.errorOutput, limit: errorLimit, scratch: &scratch) }
                return result
            }
            var descriptors = [
                pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0),
                pollfd(fd: errorFD, events: Int16(POLLIN), revents: 0),
                pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
            ]
            // Without a pidfd (before Linux 5.3) wake every 5 ms to look for the exit.
            let remaining = CInt(min((deadline - now) / 1_000_000 + 1, UInt64(CInt.max)))
            _ = Glibc.poll(&descriptors, 3, pidfd >= 0 ? remaining : min(remaining, 5))
            if inputFD >= 0 && descriptors[0].revents != 0 {
                let open = feed(inputFD, input, written: &result.inputWritten)
                if !open || result.inputWritten == input.count {
                    // End of file for the child (sendmail -oi reads to EOF).
                    Syscall.close(inputFD)
                    inputFD = -1
                }
            }
            if errorFD >= 0 && descriptors[1].revents != 0 {
                if !drain(errorFD, into: &result.errorOutput, limit: errorLimit, scratch: &scratch) {
                    Syscall.close(errorFD)
                    errorFD = -1
                }
            }
        }
    }

    /// Sends what the socket takes of `input[written...]` without blocking; false when the child will
    /// take no more (it closed its input or exited: `EPIPE`, `ECONNRESET`).
    private static func feed(_ fd: CInt, _ input: [UInt8], written: inout Int) -> Bool {
        while written < input.count {
            let n = input.withUnsafeBytes { bytes -> Int in
                guard let base = bytes.baseAddress else { return 0 }
                return send(fd, base + written, bytes.count - written, CInt(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n > 0 {
                written += n
                continue
            }
            let code = errno
            if n < 0 && code == EINTR { continue }
            return n < 0 && (code == EAGAIN || code == EWOULDBLOCK)
        }
        return true
    }

    /// Reads what is waiting on `fd`, keeping at most `limit` bytes in `output`; false at end of file.
    private static func drain(_ fd: CInt, into output: inout [UInt8], limit: Int, scratch: inout [UInt8]) -> Bool {
        while true {
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
            if n > 0 {
                let keep = min(n, max(limit - output.count, 0))
                output.append(contentsOf: scratch[0..<keep])
                continue
            }
            if n == 0 { return false }
            let code = errno
            if code == EINTR { continue }
            return code == EAGAIN || code == EWOULDBLOCK
        }
    }
}

/// Why a child process could not be started.
public struct SpawnError: Error, Sendable, CustomStringConvertible {
    /// The program that was to run.
    public let executable: String
    /// What `posix_spawn` returned.
    public let errno: Errno

    /// The program file is open for writing somewhere (`ETXTBSY`): a copy just written, whose descriptor a
    /// process being spawned by another thread still holds between its clone and its exec.
    public var isTextFileBusy: Bool { errno == .textFileBusy }

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
