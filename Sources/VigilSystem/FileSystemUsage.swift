import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// How full the filesystem holding a path is, as `df` shows it: `statfs(2)` for the figures, `stat(2)`
/// for the device, and `/proc/self/mountinfo` for the mount point (cold path: a few paths every few
/// seconds). See `man 2 statfs`, `man 5 proc` (`/proc/pid/mountinfo`).
public struct FileSystemUsage: Sendable, Equatable {
    /// The filesystem's size in bytes (`f_blocks` × `f_frsize`); `df`'s `size`.
    public var totalBytes: UInt64
    /// Free bytes, including those reserved for root (`f_bfree` × `f_frsize`).
    public var freeBytes: UInt64
    /// Bytes free to unprivileged users (`f_bavail` × `f_frsize`); `df`'s `avail`. On ext4 it is less than
    /// `freeBytes` by the reserved blocks (5 % by default).
    public var availableBytes: UInt64
    /// Used as a percentage of what users can have: used / (used + available) × 100, with used = total −
    /// free, as `df`'s `Use%` computes it (`df` then rounds up to a whole percent). It reaches 100 when
    /// unprivileged users can write nothing more, even while root's reserve remains. 0 for a filesystem
    /// with no blocks (`proc`, `sysfs`).
    public var usedPercent: Double
    /// The device of the path (`st_dev` of `stat(2)`), to tell two filesystems apart.
    public var device: UInt64
    /// Where the filesystem holding the path is mounted: the longest mount point in
    /// `/proc/self/mountinfo` that contains the path once symlinks are resolved, the last one mounted when
    /// several are stacked on one directory.
    public var mountPoint: String
    /// The filesystem type as mountinfo names it (`ext4`, `tmpfs`); empty when the mount was not found.
    public var type: String = ""
    /// Inodes the filesystem has (`f_files`); 0 where it has no fixed count (btrfs, some network ones).
    public var totalInodes: UInt64 = 0
    /// Free inodes (`f_ffree`).
    public var freeInodes: UInt64 = 0

    /// Used inodes in percent, as `df -i` computes it; 0 on a filesystem without an inode count.
    public var inodesUsedPercent: Double {
        totalInodes > 0 ? Double(totalInodes - min(freeInodes, totalInodes)) / Double(totalInodes) * 100 : 0
    }

    /// A usage with the given values.
    public init(
        totalBytes: UInt64,
        freeBytes: UInt64,
        availableBytes: UInt64,
        usedPercent: Double,
        device: UInt64,
        mountPoint: String
    ) {
        self.totalBytes = totalBytes
        self.freeBytes = freeBytes
        self.availableBytes = availableBytes
        self.usedPercent = usedPercent
        self.device = device
        self.mountPoint = mountPoint
    }

    /// This usage with the figures of `statfs(2)` on `path` (a path on the same filesystem) and the device,
    /// mount point and type kept: one system call, for re-checks after a write (no `realpath`, no
    /// mountinfo). Fails with the errno of `statfs(2)`.
    public func refreshed(_ path: String) -> Result<FileSystemUsage, Errno> {
        let figures: statfs
        do { figures = try FileSystemCalls.fileSystemStatus(path) } catch { return .failure(error) }
        var usage = self
        usage.apply(figures)
        return .success(usage)
    }

    /// Sets the block and inode figures from `figures`.
    private mutating func apply(_ figures: statfs) {
        // f_frsize is the unit of the block counts; f_bsize is only the preferred I/O size. They are equal on
        // most filesystems, and a kernel that leaves f_frsize 0 (before 2.6) means f_bsize (glibc statvfs).
        let unit = UInt64(figures.f_frsize > 0 ? figures.f_frsize : figures.f_bsize)
        totalBytes = UInt64(figures.f_blocks) &* unit
        freeBytes = UInt64(figures.f_bfree) &* unit
        availableBytes = UInt64(figures.f_bavail) &* unit
        let used = totalBytes >= freeBytes ? totalBytes - freeBytes : 0
        let base = used + availableBytes
        usedPercent = base > 0 ? Double(used) / Double(base) * 100 : 0
        totalInodes = UInt64(figures.f_files)
        freeInodes = UInt64(figures.f_ffree)
    }

    /// The usage of the filesystem holding `path` (a file or a directory, symlinks followed). Fails with
    /// the errno of `realpath(3)`, `statfs(2)` or `stat(2)` (`ENOENT`, `EACCES` on a directory above it,
    /// `ELOOP`), or of opening `/proc/self/mountinfo` when `/proc` is not mounted.
    public static func of(_ path: String) -> Result<FileSystemUsage, Errno> {
        let canonical: String
        let figures: statfs
        let info: stat
        let mounts: [UInt8]
        do {
            canonical = try FileSystemCalls.realPath(path)
            figures = try FileSystemCalls.fileSystemStatus(canonical)
            info = try FileSystemCalls.fileStatus(canonical)
            mounts = try FileSystemCalls.readAll("/proc/self/mountinfo")
        } catch {
            return .failure(error)
        }
        let entry = mountEntry(of: canonical, mountInfo: mounts)
        var usage = FileSystemUsage(
            totalBytes: 0,
            freeBytes: 0,
            availableBytes: 0,
            usedPercent: 0,
            device: UInt64(info.st_dev),
            mountPoint: entry?.point ?? "/"
        )
        usage.type = entry?.type ?? ""
        usage.apply(figures)
        return .success(usage)
    }

    /// The mount point in `mountInfo` (the bytes of a `/proc/PID/mountinfo`) that holds the canonical
    /// absolute `path`: the longest one that equals it or is a whole-component prefix of it, the later
    /// line when equal (a later mount on the same directory hides the earlier one). Nil when none does.
    ///
    /// A mount hidden by a later mount on one of its parents still matches here; the kernel lists it, and
    /// telling it apart would need the mount tree (field 2, the parent id), which `df` does not use either.
    static func mountPoint(of path: String, mountInfo: [UInt8]) -> String? {
        mountEntry(of: path, mountInfo: mountInfo)?.point
    }

    /// `mountPoint(of:mountInfo:)` with the filesystem type, the first field after the ` - ` separator.
    static func mountEntry(of path: String, mountInfo: [UInt8]) -> (point: String, type: String)? {
        var best: [UInt8]?
        var bestType = ""
        let target = Array(path.utf8)
        for line in mountInfo.split(separator: UInt8(ascii: "\n")) {
            // Fields: id, parent id, major:minor, root, mount point, options, optional fields…, "-", type, …
            let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
            guard fields.count >= 5 else { continue }
            let point = unescape(fields[4])
            guard contains(point, target), point.count >= (best?.count ?? 0) else { continue }
            best = point
            if let dash = fields.firstIndex(where: { $0.elementsEqual([UInt8(ascii: "-")]) }), dash + 1 < fields.count {
                bestType = String(decoding: fields[dash + 1], as: UTF8.self)
            } else {
                bestType = ""
            }
        }
        return best.map { (String(decoding: $0, as: UTF8.self), bestType) }
    }

    /// Whether mount point `point` holds `path`: equal, `/`, or a prefix ending at a `/` of the path.
    private static func contains(_ point: [UInt8], _ path: [UInt8]) -> Bool {
        guard path.starts(with: point) else { return false }
        return point.count == path.count || point == [UInt8(ascii: "/")] || path[point.count] == UInt8(ascii: "/")
    }

    /// Undoes the kernel's escaping of a mountinfo path: space, tab, newline and backslash are written as
    /// a backslash and three octal digits (`\040`, `\011`, `\012`, `\134`; `mangle_path` in
    /// fs/seq_file.c). Any other backslash is kept as it is.
    static func unescape(_ field: ArraySlice<UInt8>) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(field.count)
        var index = field.startIndex
        while index < field.endIndex {
            let byte = field[index]
            if byte == UInt8(ascii: "\\"), field.endIndex - index >= 4 {
                let digits = field[(index + 1)...(index + 3)]
                if digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) {
                    let value = digits.reduce(0) { $0 * 8 + Int($1 - UInt8(ascii: "0")) }
                    if value <= 0xFF {
                        result.append(UInt8(value))
                        index += 4
                        continue
                    }
                }
            }
            result.append(byte)
            index += 1
        }
        return result
    }
}

/// The system calls behind `FileSystemUsage`, one `@inline(never)` wrapper each, reading `errno` at once
/// (S1).
private enum FileSystemCalls {
    /// `realpath(3)`: the absolute path with symlinks, `.` and `..` resolved.
    @inline(never)
    static func realPath(_ path: String) throws(Errno) -> String {
        guard let resolved = path.withCString({ Glibc.realpath($0, nil) }) else {
            throw Errno(rawValue: errno)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// `statfs(2)`, retrying `EINTR` (possible on network filesystems).
    @inline(never)
    static func fileSystemStatus(_ path: String) throws(Errno) -> statfs {
        var figures = statfs()
        _ = try Syscall.valueOrErrno { path.withCString { statfs($0, &figures) } }
        return figures
    }

    /// `stat(2)`, following symlinks.
    @inline(never)
    static func fileStatus(_ path: String) throws(Errno) -> stat {
        var info = stat()
        _ = try Syscall.valueOrErrno { path.withCString { stat($0, &info) } }
        return info
    }

    /// Reads a whole file of unknown size (`/proc/self/mountinfo` runs to hundreds of KiB on a host with
    /// thousands of container mounts). A proc file is generated as it is read: one pass, no size beforehand.
    @inline(never)
    static func readAll(_ path: String) throws(Errno) -> [UInt8] {
        let fd = try Syscall.valueOrErrno { path.withCString { Glibc.open($0, O_RDONLY | O_CLOEXEC) } }
        defer { Syscall.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = try Syscall.valueOrErrno {
                chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }
}
