#if canImport(Glibc)
import Glibc
#endif

/// What `stat(2)` says about one version of a file: enough to tell whether it changed, was replaced,
/// or had its mode or owner changed, without reading it.
public struct FileIdentity: Sendable, Equatable, Hashable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modificationNanoseconds: Int64
    public var changeNanoseconds: Int64
    /// Full `st_mode`, type bits included.
    public var mode: UInt32
    public var owner: UInt32
    public var group: UInt32
    public var links: UInt64

    /// Builds an identity from a `struct stat`.
    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modificationNanoseconds = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        changeNanoseconds = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
        mode = UInt32(info.st_mode)
        owner = UInt32(info.st_uid)
        group = UInt32(info.st_gid)
        links = UInt64(info.st_nlink)
    }

    /// Same file (device and inode)?
    public func isSameFile(as other: FileIdentity) -> Bool {
        device == other.device && inode == other.inode
    }

    /// Content may differ (replaced, resized or modified)?
    public func contentMayDiffer(from other: FileIdentity) -> Bool {
        !isSameFile(as: other) || size != other.size || modificationNanoseconds != other.modificationNanoseconds
    }

    /// Mode, owner or group differ?
    public func attributesDiffer(from other: FileIdentity) -> Bool {
        mode != other.mode || owner != other.owner || group != other.group
    }

    /// A stable text form, `dev:ino:mtime:size`, used to derive alert ids.
    public var versionString: String { "\(device):\(inode):\(modificationNanoseconds):\(size)" }
}
