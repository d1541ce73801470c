public import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil run` as a child process, the way a user (or systemd) runs it: started with `$NOTIFY_SOCKET`
/// pointing at a socket we own, so `start` returns exactly when the daemon reports `READY=1`, with no
/// sleeping and no guessing.
public final class DaemonProcess: @unchecked Sendable {
    // @unchecked Sendable: used by one thread at a time.

    public let process: ChildProcess
    /// Where the daemon's stderr (its log) goes.
    public let logPath: String
    /// The socket the daemon reports to (`$NOTIFY_SOCKET`): READY=1 was read from it; later messages
    /// (STOPPING=1, WATCHDOG=1) can be waited for with `notifications.next`.
    public let notifications: NotifyListener

    /// Starts `executable run ARGUMENTS` and waits up to `readyTimeoutMilliseconds` for READY=1. A `launcher`
    /// (e.g. `capsh --drop=… -- -c 'exec "$@"' vigil`) is put in front of the command line; without one,
    /// `$VIGIL_UNIT_CAPABILITIES` (a unit file) puts the unit's capability set there (`UnitCapabilities`).
    /// `environment` is added to the daemon's (e.g. `WATCHDOG_USEC`); `standardOutput` is a file its stdout
    /// is appended to (nil: inherited).
    public init(
        executable: String,
        arguments: [String],
        workDirectory: String,
        readyTimeoutMilliseconds: Int = 20_000,
        launcher: [String] = [],
        environment: [String: String] = [:],
        standardOutput: String? = nil,
        onSpawn: (Int32) -> Void = { _ in }
    ) throws(HarnessError) {
        let socketPath = workDirectory + "/notify.sock"
        guard let listener = NotifyListener(path: socketPath) else {
            throw HarnessError("Failed to bind a notify socket at '\(socketPath)'")
        }
        logPath = workDirectory + "/vigil.log"
        notifications = listener
        let prefix = launcher.isEmpty ? (try UnitCapabilities.fromEnvironment()?.launcher ?? []) : launcher
        let command = prefix + [executable, "run"] + arguments
        process = try ChildProcess(
            executable: command[0],
            arguments: Array(command.dropFirst()),
            environment: environment.merging(["NOTIFY_SOCKET": socketPath]) { _, notify in notify },
            standardOutput: standardOutput,
            standardError: logPath
        )
        onSpawn(process.pid)
        guard listener.waitFor("READY=1", timeoutMilliseconds: readyTimeoutMilliseconds) else {
            process.signal(SIGKILL)
            _ = process.wait(timeoutMilliseconds: 5000)
            throw HarnessError("vigil did not report READY=1 within \(readyTimeoutMilliseconds) ms; its log:\n\(log())")
        }
    }

    /// The daemon's log so far.
    public func log() -> String {
        ProcFile.readText(logPath, limit: 1 << 20) ?? ""
    }

    /// SIGTERM, then waits; returns the exit code (or nil when it did not exit in time, after SIGKILL).
    @discardableResult
    public func stop(timeoutMilliseconds: Int = 5000) -> Int32? {
        process.signal(SIGTERM)
        if let status = process.wait(timeoutMilliseconds: timeoutMilliseconds) { return ChildProcess.exitCode(status) }
        process.signal(SIGKILL)
        _ = process.wait(timeoutMilliseconds: 5000)
        return nil
    }
}
