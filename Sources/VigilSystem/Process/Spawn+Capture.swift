import CVigilLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A child started by `Spawn.startCapturing`: standard input on `/dev/null`, standard output and error
/// both into one socket the caller reads, and a pidfd that polls readable when it exits.
public struct CapturedChild: Sendable {
    /// The child's pid; also its process group (it leads a group of its own, so a timeout reaches the
    /// programs it started too).
    public let pid: Int32
    /// The caller's end of the child's standard output and error (non-blocking, close-on-exec).
    public let output: CInt
    /// `pidfd_open(2)` of the child; -1 where the kernel has none (before Linux 5.3).
    public let pidfd: CInt
}

extension Spawn {
    /// Starts `executable` (an absolute path; no `$PATH` search, no shell) with `arguments` as argv[1...],
    /// exactly `environment` (`KEY=value` strings), standard input from `/dev/null`, and standard output
    /// and error into one `socketpair(2)` (close-on-exec taken atomically, which `pipe(2)` cannot do here:
    /// a child another thread spawns at the same moment never inherits it). The child leads a new process
    /// group (`POSIX_SPAWN_SETPGROUP`), starts with an empty signal mask and default signal actions.
    /// See `man 3 posix_spawn`, `man 2 pidfd_open`.
    @inline(never)
    public static func startCapturing(
        _ executable: String,
        arguments: [String],
        environment: [String]
    ) throws(SpawnError) -> CapturedChild {
        let kind = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        var pair: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, kind, 0, &pair) == 0 else {
            throw SpawnError(executable: executable, errno: Errno(rawValue: errno))
        }
        shutdown(pair[1], CInt(SHUT_RD))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pair[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pair[1], 2)

        let child: Int32
        do {
            child = try spawn(
                executable,
                arguments: arguments,
                environment: environment,
                newProcessGroup: true,
                actions: &actions
            )
        } catch {
            Syscall.close(pair[1])
            Syscall.close(pair[0])
            throw error
        }
        Syscall.close(pair[1])
        shutdown(pair[0], CInt(SHUT_WR))
        _ = fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK)
        return CapturedChild(pid: child, output: pair[0], pidfd: Syscall.pidfdOpen(child) ?? -1)
    }

    /// Reads what is waiting on a `CapturedChild`'s output without blocking, keeping at most `limit` bytes
    /// in `kept` (the rest is read and dropped, so a chatty child never blocks on a full buffer). False at
    /// end of file or on an error: the caller stops watching the descriptor.
    public static func drainCaptured(_ fd: CInt, into kept: inout [UInt8], limit: Int) -> Bool {
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 8) { scratch -> Bool in
            while true {
                let n = recv(fd, scratch.baseAddress, scratch.count, CInt(MSG_DONTWAIT))
                if n > 0 {
                    let keep = min(n, max(limit - kept.count, 0))
                    if keep > 0 { kept.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<keep])) }
                    continue
                }
                if n == 0 { return false }
                let code = errno
                if code == EINTR { continue }
                return code == EAGAIN || code == EWOULDBLOCK
            }
        }
    }
}
