import Testing
import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The built `vigil` executable, run as a user would. `$VIGIL_BINARY` overrides the default
/// `.build/debug/vigil` of this checkout (the README's test command builds it first).
enum VigilBinary {
    /// The repository root, from this file's path.
    static let repositoryRoot: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(3)  // Tests/VigilIntegrationTests/VigilBinary.swift
        return parts.joined(separator: "/")
    }()

    static let path: String = {
        if let override = getenv("VIGIL_BINARY") { return String(cString: override) }
        return repositoryRoot + "/.build/debug/vigil"
    }()

    static var exists: Bool { access(path, X_OK) == 0 }

    /// `vigil run` with the repository's `rules/` on a seed sandbox, alerts also to `alerts`; ready when it returns.
    static func runShippedRules(
        on sandbox: SeedSandbox,
        alerts: String,
        launcher: [String] = []
    ) throws -> DaemonProcess {
        try DaemonProcess(
            executable: path,
            arguments: ["--rules", repositoryRoot + "/rules", "--root", sandbox.root, "--alerts", alerts],
            workDirectory: sandbox.hostPath("/run/vigil"),
            launcher: launcher
        )
    }

    /// Runs `vigil ARGUMENTS` to completion; returns exit code, stdout and stderr. `XDG_CACHE_HOME` points
    /// into the run's scratch directory unless `environment` says otherwise, so `vigil match` never caches
    /// patterns in the home directory of whoever runs the tests.
    static func run(
        _ arguments: [String],
        environment: [String: String] = [:],
        timeoutMilliseconds: Int = 30_000
    ) throws -> (code: Int32, out: String, err: String) {
        try Command.run(path, arguments, environment: environment, timeoutMilliseconds: timeoutMilliseconds) {
            work in ["XDG_CACHE_HOME": work + "/cache"]
        }
    }
}

/// Any command run to completion, its output captured (the vigil binary, python3 for the schema check).
enum Command {
    static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        timeoutMilliseconds: Int = 30_000,
        scratchEnvironment: (String) -> [String: String] = { _ in [:] }
    ) throws -> (code: Int32, out: String, err: String) {
        let work = TempDirectory("cmd")
        defer { work.remove() }
        let child = try ChildProcess(
            executable: executable,
            arguments: arguments,
            environment: scratchEnvironment(work.path).merging(environment) { _, given in given },
            standardOutput: work.path + "/out",
            standardError: work.path + "/err"
        )
        guard let status = child.wait(timeoutMilliseconds: timeoutMilliseconds) else {
            child.signal(SIGKILL)
            _ = child.wait(timeoutMilliseconds: 5000)
            throw HarnessError("\(executable) \(arguments.prefix(1)) did not finish in \(timeoutMilliseconds) ms")
        }
        return (
            ChildProcess.exitCode(status), ProcFile.readText(work.path + "/out", limit: 1 << 20) ?? "",
            ProcFile.readText(work.path + "/err", limit: 1 << 20) ?? ""
        )
    }
}

/// A scratch directory removed by `remove()`.
struct TempDirectory {
    let path: String

    init(_ label: String) {
        var template = Array("/tmp/vigil-\(label)-XXXXXX".utf8CString)
        path = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
    }

    func write(_ name: String, _ content: String) {
        let fd = open(path + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let bytes = Array(content.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func remove() {
        FileTree.remove(path)
    }
}

extension LineFollower {
    /// The next alert line that is not about processes, or nil after the timeout. The seed's services do not
    /// run in a test sandbox and the start-up review judges this host's root processes, so process alerts
    /// come and go around what a file test waits for.
    /// True for alerts about the host rather than the sandbox's files: processes, listeners, pressure,
    /// disks, programs root runs, Vigil's own health (they arrive in any order on a busy host).
    static func isHostAlert(_ line: String) -> Bool {
        let kind = JSONField.string(line, "kind") ?? ""
        return ["process.", "listening.", "pressure.", "escalation.", "disk.", "vigil."].contains(where: kind.hasPrefix)
    }

    /// The next alert about a file (config, file, log, mode and owner, rotation), skipping the others.
    func nextFileAlert(timeoutMilliseconds: Int = 5000) -> String? {
        while let line = next(timeoutMilliseconds: timeoutMilliseconds)?.line {
            if !Self.isHostAlert(line) { return line }
        }
        return nil
    }
}
