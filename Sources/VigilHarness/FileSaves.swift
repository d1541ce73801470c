import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The ways people and tools save a file, on host paths: what the demo, the tests and the benchmarks do to
/// a watched config.
public enum FileSaves {
    /// In place: open with `O_TRUNC`, one write, close (as `echo … >` and many programs do).
    public static func inPlace(_ path: String, _ content: String, mode: UInt32 = 0o644) throws(HarnessError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw HarnessError("Failed to write '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(content.utf8)
        do {
            try bytes.withUnsafeBytes { raw in try Syscall.writeAll(fd, raw) }
        } catch {
            throw HarnessError("Failed to write '\(path)': \(error)")
        }
    }

    /// A temporary file renamed over the name (`sed -i`, `install`, config management, many editors).
    public static func replacing(_ path: String, _ content: String, mode: UInt32 = 0o644) throws(HarnessError) {
        let temporary = path + ".vigil-save"
        try inPlace(temporary, content, mode: mode)
        guard rename(temporary, path) == 0 else {
            throw HarnessError("Failed to rename over '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// vim's default: rename the original to `name~`, write a new file under the name, delete the backup.
    public static func likeVim(_ path: String, _ content: String, mode: UInt32 = 0o644) throws(HarnessError) {
        guard rename(path, path + "~") == 0 else {
            throw HarnessError("Failed to rename '\(path)' away: \(String(cString: strerror(errno)))")
        }
        try inPlace(path, content, mode: mode)
        unlink(path + "~")
    }
}
