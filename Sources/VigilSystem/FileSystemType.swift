import CVigilLinux

/// What kind of filesystem holds a path, from `statfs(2)`'s magic number (see `man 2 statfs`).
public enum FileSystemType {
    /// The magic number, or nil when `path` cannot be examined.
    public static func magic(of path: String) -> UInt? {
        var value: UInt = 0
        return path.withCString { CVigilLinux_filesystem_magic($0, &value) } == 0 ? value : nil
    }

    /// A readable name for the common ones ("ext4", "tmpfs", …), else the magic in hex.
    public static func name(of path: String) -> String {
        guard let magic = magic(of: path) else { return "unknown filesystem" }
        switch magic {
        case 0xEF53: return "ext4"
        case 0x0102_1994: return "tmpfs"
        case 0x5846_5342: return "xfs"
        case 0x9123_683E: return "btrfs"
        case 0x794C_7630: return "overlayfs"
        default: return "filesystem magic 0x" + String(magic, radix: 16)
        }
    }
}
