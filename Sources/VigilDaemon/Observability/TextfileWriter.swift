#if canImport(Glibc)
import Glibc
#endif

/// Writes a node_exporter textfile (`--metrics-textfile`) atomically: the whole scrape goes to a temporary
/// file in the same directory, is synced (`fsync(2)`), then renamed over the target (`rename(2)` is atomic
/// within a filesystem), so node_exporter never reads half a file. Its textfile collector reads only
/// `*.prom`, so the temporary name (`PATH.tmp`) is never collected.
struct TextfileWriter: Sendable {
    let path: String

    /// Writes `contents`; returns nil, or one line naming what failed, the path and the fix.
    func write(_ contents: String) -> String? {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return failure("creating '\(temporary)'") }
        var ok = true
        let bytes = Array(contents.utf8)
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    ok = false
                    return
                }
                offset += n
            }
        }
        if !ok {
            let problem = failure("writing '\(temporary)'")
            close(fd)
            unlink(temporary)
            return problem
        }
        if fsync(fd) != 0 {
            let problem = failure("syncing '\(temporary)'")
            close(fd)
            unlink(temporary)
            return problem
        }
        close(fd)
        if rename(temporary, path) != 0 {
            let problem = failure("renaming '\(temporary)' to '\(path)'")
            unlink(temporary)
            return problem
        }
        return nil
    }

    private func failure(_ step: String) -> String {
        "Failed to write the metrics textfile '\(path)' (\(step)): \(String(cString: strerror(errno))); make its directory writable by vigil (ReadWritePaths= in vigil.service) or change --metrics-textfile; retrying every period"
    }
}
