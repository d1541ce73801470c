#if canImport(Glibc)
import Glibc
#endif

/// Directory-tree helpers shared by the daemon (alert file directories), the harness and the tests.
public enum FileTree {
    /// `mkdir -p`: creates `path` and every missing parent with `mode`. Returns false when a component
    /// could not be created (the caller's next open reports why).
    @discardableResult
    public static func makeDirectories(_ path: String, mode: UInt32) -> Bool {
        // A relative path stays relative (`--root sandbox` from the current directory).
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            current += "/" + component
            if mkdir(current, mode_t(mode)) != 0 && errno != EEXIST { return false }
        }
        return true
    }

    /// The names in a directory, sorted, without `.` and `..` (empty when it cannot be listed).
    public static func names(in path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// `rm -rf` that never follows a symlink: links are removed, not their targets.
    public static func remove(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            unlink(path)
            return
        }
        for name in names(in: path) { remove(path + "/" + name) }
        rmdir(path)
    }
}
