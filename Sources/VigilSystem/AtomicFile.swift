import SystemPackage

#if canImport(Glibc)
public import Glibc
#endif

/// Replaces a whole file so that a crash leaves either the old content or the new: the bytes go to a
/// temporary file beside it (`PATH.tmp`, `O_NOFOLLOW`), which is then renamed over. Used for Vigil's state
/// files (log offsets, firing conditions) and the metrics textfile.
public enum AtomicFile {
    /// Writes `bytes` as the new content of `path`, created with `mode`. `durable`: fsync the file and its
    /// directory too (at shutdown; between saves the rename alone survives a crash of the daemon). Throws the
    /// errno and the path that failed.
    public static func replace(
        _ path: String,
        with bytes: UnsafeRawBufferPointer,
        mode: mode_t = 0o600,
        durable: Bool
    ) throws(AtomicFileError) {
        let temporary = path + ".tmp"
        let fd = temporary.withCString { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode) }
        guard fd >= 0 else { throw AtomicFileError(path: temporary, errno: errno) }
        do throws(Errno) {
            try Syscall.writeAll(fd, bytes)
        } catch {
            Syscall.close(fd)
            throw AtomicFileError(path: temporary, errno: error.rawValue)
        }
        if durable && fsync(fd) != 0 {
            let code = errno
            Syscall.close(fd)
            throw AtomicFileError(path: temporary, errno: code)
        }
        Syscall.close(fd)
        guard rename(temporary, path) == 0 else { throw AtomicFileError(path: path, errno: errno) }
        if durable, let slash = path.lastIndex(of: "/") {
            let directory = slash == path.startIndex ? "/" : String(path[..<slash])
            let dfd = directory.withCString { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            if dfd >= 0 {
                _ = fsync(dfd)
                Syscall.close(dfd)
            }
        }
    }
}

extension AtomicFile {
    /// `replace(_:with:mode:durable:)` for bytes in an array.
    public static func replace(
        _ path: String,
        with bytes: [UInt8],
        mode: mode_t = 0o600,
        durable: Bool
    ) throws(AtomicFileError) {
        let failure: AtomicFileError? = bytes.withUnsafeBytes { buffer in
            do throws(AtomicFileError) {
                try replace(path, with: buffer, mode: mode, durable: durable)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }
}

/// A file that could not be replaced: the path that failed and the errno.
public struct AtomicFileError: Error, Sendable {
    public let path: String
    public let errno: CInt

    /// The system's text for the errno.
    public var reason: String { String(cString: strerror(errno)) }
}
