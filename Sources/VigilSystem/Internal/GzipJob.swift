#if canImport(Glibc)
import Glibc
#endif

/// The files of one `Gzip.compress` call, and the messages that name them (E2: what failed, the files in
/// single quotes, the cause, what to do, and what was left). The directories are known only as descriptors;
/// their paths are looked up (`/proc/self/fd/N`) when a message is built, never on the way to success.
struct GzipJob {
    let sourceDirectory: CInt
    let sourceName: String
    let destinationDirectory: CInt
    let destinationName: String

    /// The source as a path, for messages.
    var source: String { Self.directoryPath(sourceDirectory) + sourceName }
    /// The destination directory as a path ending in `/` (N6), for messages.
    var destinationFolder: String { Self.directoryPath(destinationDirectory) }
    /// The destination as a path, for messages.
    var destination: String { destinationFolder + destinationName }

    /// Where a directory descriptor points, ending in `/`: the kernel's name for it
    /// (`readlink /proc/self/fd/N`, or `/proc/self/cwd` for `AT_FDCWD`), which follows renames.
    static func directoryPath(_ fd: CInt) -> String {
        let link = fd == AT_FDCWD ? "/proc/self/cwd" : "/proc/self/fd/\(fd)"
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let n = buffer.withUnsafeMutableBytes {
            readlink(link, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
        }
        guard n > 0 else { return "(directory descriptor \(fd))/" }
        let path = String(decoding: buffer[0..<n], as: UTF8.self)
        return path.hasSuffix("/") ? path : path + "/"
    }

    /// `strerror(code)`, as the user knows it from other tools.
    static func text(_ code: CInt) -> String { String(cString: strerror(code)) }

    /// The message's last clause for every failure before the destination is linked into place.
    var nothingLeft: String { "nothing was left in '\(destinationFolder)', and the original '\(source)' is intact" }

    // MARK: Refusals and the source

    /// The source or an argument cannot be used; nothing was created.
    func refused(_ cause: String, errno code: CInt = 0) -> GzipError {
        GzipError(errno: code, message: "Failed to compress '\(source)': \(cause)")
    }

    /// An argument that no call should pass (a name with `/`, an unknown level).
    func invalid(_ cause: String) -> GzipError {
        GzipError(errno: 0, message: "Failed to compress '\(sourceName)' into '\(destinationName)': \(cause)")
    }

    /// `openat` of the source failed.
    func openingSourceFailed(_ code: CInt) -> GzipError {
        switch code {
        case ENOENT:
            refused("it does not exist", errno: code)
        case ELOOP:
            refused(
                "it is a symbolic link, which is never followed ('\(Self.text(code))'); "
                    + "name the file it points to instead",
                errno: code
            )
        case EACCES, EPERM:
            refused(
                "opening it returned '\(Self.text(code))'; give vigil read access (root, or CAP_DAC_READ_SEARCH)",
                errno: code
            )
        default:
            refused("opening it returned '\(Self.text(code))'", errno: code)
        }
    }

    /// `fstat` or `read` of the open source failed.
    func readingSourceFailed(_ step: String, _ code: CInt) -> GzipError {
        let remedy = code == EIO ? "the device reported an I/O error; check the kernel log (dmesg); " : ""
        return GzipError(
            errno: code,
            message: "Failed to compress '\(source)' into '\(destination)': \(step) returned '\(Self.text(code))'; "
                + remedy + nothingLeft
        )
    }

    // MARK: The destination

    /// A step of writing the destination failed: a full disk and its kin get their fix.
    func writingFailed(_ step: String, _ code: CInt) -> GzipError {
        let folder = destinationFolder
        let remedy: String
        switch code {
        case ENOSPC:
            remedy = "free space on the filesystem holding '\(folder)'; "
        case EDQUOT:
            remedy = "the disk quota on the filesystem holding '\(folder)' is used up; raise it or free space there; "
        case EFBIG:
            remedy = "the file would exceed the largest file allowed (RLIMIT_FSIZE or the filesystem's limit); "
        case EROFS:
            remedy = "'\(folder)' is on a read-only filesystem; rotate into a writable directory; "
        case EIO:
            remedy = "the device holding '\(folder)' reported an I/O error; check the kernel log (dmesg); "
        case EACCES, EPERM:
            remedy = "vigil needs write access to '\(folder)' (and CAP_CHOWN/CAP_FOWNER to set an owner); "
        default:
            remedy = ""
        }
        return GzipError(
            errno: code,
            message: "Failed to compress '\(source)' into '\(destination)': \(step) returned '\(Self.text(code))'; "
                + remedy + nothingLeft
        )
    }

    /// A step after the destination was linked failed, and the destination could not be removed again.
    func leftBehind(_ step: String, _ code: CInt) -> GzipError {
        GzipError(
            errno: code,
            message: "Failed to compress '\(source)' into '\(destination)': \(step) returned '\(Self.text(code))', "
                + "and '\(destination)' could not be removed again; the original '\(source)' is intact, "
                + "remove '\(destination)' by hand"
        )
    }

    /// `linkat` found the destination name taken; it is never replaced.
    func destinationExists() -> GzipError {
        GzipError(
            errno: EEXIST,
            message: "Failed to compress '\(source)' into '\(destination)': '\(destination)' already exists "
                + "and is never replaced ('\(Self.text(EEXIST))'); move it away or rotate under another name; "
                + nothingLeft
        )
    }

    /// zlib refused a call; `detail` is the stream's `msg` when it set one.
    func zlibFailed(_ function: String, _ code: CInt, _ detail: String?) -> GzipError {
        let cause = code == -4 ? "out of memory" : detail.map { "\(code), '\($0)'" } ?? "\(code)"
        return GzipError(
            errno: 0,
            message: "Failed to compress '\(source)' into '\(destination)': zlib's \(function) returned \(cause); "
                + nothingLeft
        )
    }

    // MARK: The source changed, or cannot be removed

    /// The source changed while it was read (`change` says how); it is kept. `linkedAndRemoved`: nil before
    /// the destination was linked; after, whether it could be removed again.
    func sourceChanged(_ change: String, linkedAndRemoved: Bool? = nil) -> GzipError {
        let kept =
            switch linkedAndRemoved {
            case nil: "it was left in place, and nothing was left in '\(destinationFolder)'"
            case true?: "it was left in place, and '\(destination)' was removed again"
            case false?: "it was left in place, but '\(destination)' could not be removed again; remove it by hand"
            }
        return GzipError(
            errno: 0,
            message: "Failed to compress '\(source)': \(change), so a process still writes to it; \(kept); "
                + "compress it once the writer has reopened its log (signal it to reopen, or compress one rotation later)"
        )
    }

    /// After the destination was linked the source could not be removed; both files are complete.
    func removingSourceFailed(_ cause: String, errno code: CInt = 0) -> GzipError {
        GzipError(
            errno: code,
            message: "Failed to remove '\(source)' after compressing it into '\(destination)': \(cause); "
                + "'\(destination)' is complete"
        )
    }
}
