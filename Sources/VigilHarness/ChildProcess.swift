import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn` (never `fork` in a threaded process), for the demo, the
/// end-to-end tests and the benchmarks.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked Sendable: the pid is immutable; wait/kill are process-wide syscalls.

    public let pid: Int32
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments` (argv[1...]), the current environment plus `environment`,
    /// stdout and stderr appended to the given files (nil: inherited).
    public init(
        executable: String,
        arguments: [String],
        environment: [String: String] = [:],
        standardOutput: String? = nil,
        standardError: String? = nil
    ) throws(HarnessError) {
        var env: [String: String] = [:]
        var index = 0
        while let entry = environ[index] {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") { env[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
            index += 1
        }
        for (key, value) in environment { env[key] = value }
        // Through VigilSystem's spawn: an empty signal mask and default actions in the child, so a stand-in
        // started by a process that blocks signals (for its signalfd) still dies of SIGTERM.
        var child: Int32 = -1
        // A stand-in just copied can be refused with ETXTBSY for a moment: a process another thread of this
        // program is spawning (tests run in parallel) holds a copy of the write descriptor between its clone
        // and its exec. That ends within microseconds, so the spawn is tried again for up to a second.
        let deadline = Clock.monotonicNanoseconds() + 1_000_000_000
        while child < 0 {
            do {
                child = try Spawn.start(
                    executable,
                    arguments: arguments,
                    environment: env.map { "\($0.key)=\($0.value)" },
                    streams: .separate(output: standardOutput, error: standardError)
                )
            } catch {
                guard error.isTextFileBusy, Clock.monotonicNanoseconds() < deadline else {
                    throw HarnessError("Failed to start '\(executable)': \(error)")
                }
                sched_yield()
            }
        }
        pid = child
    }

    /// Sends `signal`.
    public func signal(_ signal: Int32) {
        _ = kill(pid, signal)
    }

    /// Waits for the child to exit, up to `timeoutMilliseconds`; returns its wait status, or nil on timeout.
    public func wait(timeoutMilliseconds: Int) -> Int32? {
        if let exitStatus { return exitStatus }
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        let pidfd = Syscall.pidfdOpen(pid) ?? -1
        defer { if pidfd >= 0 { close(pidfd) } }
        while true {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                exitStatus = status
                return status
            }
            let now = Clock.monotonicNanoseconds()
            if now >= deadline { return nil }
            if pidfd >= 0 {
                var pfd = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, Int32((deadline - now) / 1_000_000) + 1)
            } else {
                var pfd = pollfd(fd: -1, events: 0, revents: 0)
                _ = poll(&pfd, 0, 5)
            }
        }
    }

    /// SIGTERM, then SIGKILL when it has not exited after `graceMilliseconds`; returns the wait status, or
    /// nil when even SIGKILL did not end it within as long again.
    @discardableResult
    public func terminate(graceMilliseconds: Int = 5000) -> Int32? {
        signal(SIGTERM)
        if let status = wait(timeoutMilliseconds: graceMilliseconds) { return status }
        signal(SIGKILL)
        return wait(timeoutMilliseconds: graceMilliseconds)
    }

    /// Exit code when the child exited normally, or 128 + signal when a signal ended it.
    public static func exitCode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// The path of the running executable (`/proc/self/exe`).
    public static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink("/proc/self/exe", &buffer, 4096)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "vigil"
    }
}

/// A harness failure, one line.
public struct HarnessError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
