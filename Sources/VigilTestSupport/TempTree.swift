import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A temporary directory tree for tests, removed when `remove()` is called.
public struct TempTree: Sendable {
    /// Absolute path of the tree's root (no trailing slash).
    public let root: String

    /// Creates a fresh directory under `$TMPDIR` (or /tmp) named `vigil-<label>-XXXXXX`.
    public init(_ label: String = "test") {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/vigil-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed: errno \(errno)")
        root = String(cString: made!)
    }

    /// `root` joined with a relative path.
    public func path(_ relative: String) -> String {
        relative.isEmpty ? root : root + "/" + relative
    }

    /// Creates directories (like `mkdir -p`) below the root.
    public func makeDirectory(_ relative: String, mode: UInt32 = 0o755) {
        precondition(
            FileTree.makeDirectories(path(relative), mode: mode),
            "mkdir -p \(path(relative)) failed: errno \(errno)"
        )
    }

    /// Writes `content` to `relative` in place (open with O_TRUNC, one write, close).
    public func write(_ relative: String, _ content: String, mode: UInt32 = 0o644) {
        do { try FileSaves.inPlace(path(relative), content, mode: mode) } catch { preconditionFailure("\(error)") }
    }

    /// Saves `content` the way many editors and `sed -i` do: write a temporary file, rename it over.
    public func writeReplacing(_ relative: String, _ content: String, mode: UInt32 = 0o644) {
        do { try FileSaves.replacing(path(relative), content, mode: mode) } catch { preconditionFailure("\(error)") }
    }

    /// Saves `content` the way vim does by default: rename the original to `name~`, write a new file, delete the backup.
    public func writeLikeVim(_ relative: String, _ content: String, mode: UInt32 = 0o644) {
        do { try FileSaves.likeVim(path(relative), content, mode: mode) } catch { preconditionFailure("\(error)") }
    }

    /// Creates a symlink at `relative` pointing to `target` (written as given).
    public func symlink(_ relative: String, to target: String) {
        precondition(Glibc.symlink(target, path(relative)) == 0, "symlink failed: errno \(errno)")
    }

    /// Deletes a file below the root.
    public func unlinkFile(_ relative: String) {
        precondition(unlink(path(relative)) == 0, "unlink \(path(relative)) failed: errno \(errno)")
    }

    /// Changes a file's mode.
    public func chmodFile(_ relative: String, _ mode: UInt32) {
        precondition(chmod(path(relative), mode_t(mode)) == 0, "chmod failed: errno \(errno)")
    }

    /// Reads a file below the root, or nil when it cannot be opened.
    public func read(_ relative: String) -> String? {
        let fd = open(path(relative), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Removes the whole tree (`rm -rf`, never following symlinks).
    public func remove() {
        FileTree.remove(root)
    }
}
