import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A sandbox copy of the seed's server (CloudCrest's analytics-prod-03, `shared/seed/day6-process-monitoring.md`)
/// in a temporary directory, for `vigil run --root`: the upload service's config as the seed leaves it
/// (`verify_ssl = true  # FIXED…`) and the log directories with the seed's modes.
public struct SeedSandbox: Sendable {
    /// Host path of the sandbox root (stands for `/`).
    public let root: String

    /// The seed's config after Fatima's fix.
    public static let fixedConfig = """
        # API Connection Settings
        api_url = https://api.analytics-partner.com
        metrics_url = https://metrics.analytics-partner.com
        verify_ssl = true  # FIXED: SSL verification enabled for security

        """

    /// The seed's config as Fatima found it.
    public static let insecureConfig = """
        # API Connection Settings
        api_url = https://api.analytics-partner.com
        metrics_url = https://metrics.analytics-partner.com
        verify_ssl = false  # TODO: Enable for production

        """

    /// Server path of the upload service's config.
    public static let configPath = "/etc/analytics/upload-service.conf"

    /// Creates the sandbox under `$TMPDIR` (or /tmp).
    public init(label: String = "sandbox") throws(HarnessError) {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/vigil-\(label)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw HarnessError("Failed to create a sandbox under '\(base)': errno \(errno)")
        }
        root = String(cString: made)
        for (dir, mode) in [
            ("/etc/analytics", 0o755), ("/var/log/analytics", 0o750), ("/var/log/analytics/unified", 0o750),
            ("/var/log/analytics/reports", 0o750), ("/var/log/analytics/alerts", 0o700), ("/var/log/archive", 0o750),
            ("/var/log/vigil", 0o750), ("/run/vigil", 0o755),
        ] {
            try makeDirectories(dir, mode: UInt32(mode))
        }
        try write(Self.configPath, Self.fixedConfig)
    }

    /// Host path for a server path.
    public func hostPath(_ serverPath: String) -> String { root + serverPath }

    /// Writes a file in place: open with O_TRUNC, one write, close (as `echo … >` does).
    public func write(_ serverPath: String, _ content: String) throws(HarnessError) {
        let path = hostPath(serverPath)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HarnessError("Failed to write '\(path)': errno \(errno)") }
        defer { close(fd) }
        let bytes = Array(content.utf8)
        do {
            try bytes.withUnsafeBytes { raw in try Syscall.writeAll(fd, raw) }
        } catch {
            throw HarnessError("Failed to write '\(path)': \(error)")
        }
    }

    /// Saves a file the way `sed -i`, `install` and many editors do: a temporary file renamed over it.
    public func writeReplacing(_ serverPath: String, _ content: String) throws(HarnessError) {
        let temporary = serverPath + ".vigil-save"
        try write(temporary, content)
        guard rename(hostPath(temporary), hostPath(serverPath)) == 0 else {
            throw HarnessError("Failed to rename over '\(hostPath(serverPath))': errno \(errno)")
        }
    }

    /// Saves a file the way vim does by default: rename the original to `file~`, write a new file under
    /// the name, then delete the backup.
    public func writeLikeVim(_ serverPath: String, _ content: String) throws(HarnessError) {
        let backup = hostPath(serverPath) + "~"
        guard rename(hostPath(serverPath), backup) == 0 else {
            throw HarnessError("Failed to rename '\(hostPath(serverPath))' away: errno \(errno)")
        }
        try write(serverPath, content)
        unlink(backup)
    }

    /// `mkdir -p` inside the sandbox.
    public func makeDirectories(_ serverPath: String, mode: UInt32 = 0o755) throws(HarnessError) {
        var current = root
        for component in serverPath.split(separator: "/") {
            current += "/" + component
            if mkdir(current, mode_t(mode)) != 0 && errno != EEXIST {
                throw HarnessError("Failed to create '\(current)': errno \(errno)")
            }
        }
        _ = chmod(current, mode_t(mode))
    }

    /// Removes the sandbox (`rm -rf`, never following symlinks).
    public func remove() {
        Self.removeTree(root)
    }

    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            if let dir = opendir(path) {
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                    }
                    if name == "." || name == ".." { continue }
                    removeTree(path + "/" + name)
                }
                closedir(dir)
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}
