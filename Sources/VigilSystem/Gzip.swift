import CVigilLinux
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Compressing a rotated log into a `.gz`: streaming, crash-safe, and safe to run as root.
///
/// The output is a gzip file as `gzip -<level>` writes it (RFC 1952; zlib's deflate, 32 KiB window,
/// memLevel 8; the header carries the source's name and mtime and OS 3, Unix), so `gzip -t`, `gzip -l`
/// and `gzip -dN` treat it as their own.
///
/// The steps, and why:
/// 1. The source is opened with `openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK)`
///    (no symlink as the last component; `O_NONBLOCK` so that a FIFO planted under the name cannot block the
///    open; it does not change reads of a regular file) and refused unless `fstat` says it is a regular file
///    with one link. A second link would mean that removing this name frees nothing, and a link planted
///    to a secret file would put its bytes into a `.gz` with the mode and owner asked for; gzip refuses
///    such files too.
/// 2. The compressed bytes go to an unnamed `O_TMPFILE` in the destination directory (`man 2 open`), so
///    a crash, a full disk or any failure leaves no partial file: closing the descriptor frees it. On a
///    filesystem without `O_TMPFILE` (`EOPNOTSUPP`, or `EISDIR` from a kernel before 3.11) a hidden
///    `.vigil-gzip-PID-N.tmp`, created `O_EXCL | O_NOFOLLOW`, is used instead and unlinked on failure
///    (only a crash can leave one behind).
/// 3. Reading and writing stream through two 256 KiB buffers allocated once per call, with zlib's own
///    state (about 270 KiB) the whole memory used, whatever the file's size. The source is read with
///    `POSIX_FADV_SEQUENTIAL`, and every 8 MiB compressed is dropped from the page cache
///    (`POSIX_FADV_DONTNEED`), so compressing a large log does not evict the host's working set; the
///    output's pages are dropped after its `fsync`.
/// 4. The destination gets its owner (`fchown`, when asked), then its mode (`fchmod`; after `fchown`,
///    which clears set-id bits), then the source's atime and mtime (`futimens`), and is `fsync`ed, all
///    before it has a name: no one ever sees it half-written or with the wrong owner or mode.
/// 5. It is linked into place with `linkat(AT_FDCWD, "/proc/self/fd/N", dir, name, AT_SYMLINK_FOLLOW)`,
///    which fails with `EEXIST` rather than replace anything, and the directory is `fsync`ed.
/// 6. Only then is the source removed (`unlinkat`), once `fstatat(AT_SYMLINK_NOFOLLOW)` shows its name
///    still refers to the file that was compressed.
///
/// A source that changes while it is compressed (a writer still appending after the rotation, or a
/// `copytruncate` cutting it) is left alone: its size when opened, the bytes read up to end of file and
/// its size and mtime afterwards must all agree, checked once before the destination is linked and again
/// right before the source is removed. If they do not, the call throws and leaves no destination. The
/// alternative, reading on until end of file stays put, was rejected: a writer that still holds the file
/// would go on appending to an inode that is about to be unlinked, and those lines would be lost without
/// a trace. Retrying later (after the writer reopened its log) loses nothing. A write that lands in the
/// microseconds between the last check and `unlinkat` cannot be detected; that window is the same for
/// gzip and logrotate.
///
/// A process that calls this must ignore `SIGXFSZ`, or a file over `RLIMIT_FSIZE` kills it instead of
/// failing with `EFBIG`.
public enum Gzip {
    /// What one `compress` call read and wrote.
    public struct Result: Sendable, Equatable {
        /// Bytes read from the source: its whole size.
        public let inputBytes: UInt64
        /// Bytes of the gzip file written.
        public let outputBytes: UInt64

        /// A result, for callers' tests; `compress` makes the real ones.
        public init(inputBytes: UInt64, outputBytes: UInt64) {
            self.inputBytes = inputBytes
            self.outputBytes = outputBytes
        }
    }

    /// The size of the read buffer and of the write buffer, each.
    static let bufferSize = 256 << 10
    /// How many compressed source bytes to let accumulate before dropping them from the page cache.
    static let cacheDropInterval: UInt64 = 8 << 20
    /// Makes the names of fallback temporary files unique between threads (the pid, between processes).
    static let temporaryCounter = Atomic<Int>(0)

    /// Compresses the regular file `sourceName` in directory `sourceDirectory` (an open directory descriptor)
    /// into a new file `destinationName` in `destinationDirectory` (gzip format, RFC 1952, zlib level `level`,
    /// like `gzip -<level>`: the header carries the source's base name and mtime), then removes the source.
    /// The destination gets `mode` (and `owner`/`group` when given, applied through the descriptor before it
    /// is linked into place) and the source's mtime/atime.
    ///
    /// Names are single path components. An existing destination is never replaced (`EEXIST`); a symlink
    /// as the source is refused (`ELOOP`); on a full disk (`ENOSPC`, `EDQUOT`, `EFBIG`) nothing is left in
    /// the destination directory and the source is intact. `removeSource: false` keeps the source. The
    /// directory descriptors may be `O_PATH`. Blocks for as long as the compression takes (a 1 GiB day of
    /// the seed's unified log: about 65 MB/s at level 6 on one core, against 55 MB/s for `gzip -6`; see
    /// `benchmarks/run --rotation-only`): call it from a worker thread, never from Swift's cooperative pool
    /// (C6). See the type's documentation for each step.
    public static func compress(
        sourceName: String,
        in sourceDirectory: CInt,
        to destinationName: String,
        in destinationDirectory: CInt,
        level: Int32 = 6,
        mode: UInt32 = 0o640,
        owner: UInt32? = nil,
        group: UInt32? = nil,
        removeSource: Bool = true
    ) throws(GzipError) -> Result {
        try compress(
            sourceName: sourceName,
            in: sourceDirectory,
            to: destinationName,
            in: destinationDirectory,
            level: level,
            mode: mode,
            owner: owner,
            group: group,
            removeSource: removeSource,
            hooks: Hooks()
        )
    }

    /// What tests change: the fallback temporary file, and code run at the points where a writer or
    /// another rotation could interfere.
    struct Hooks {
        /// false: go straight to the named temporary file, as on a filesystem without `O_TMPFILE`.
        var unnamedTemporary = true
        /// Runs after the source was read to its end, before it is checked for changes.
        var afterReading: (() -> Void)?
        /// Runs after the destination was linked, before the source is checked a last time and removed.
        var beforeRemovingSource: (() -> Void)?
    }

    static func compress(
        sourceName: String,
        in sourceDirectory: CInt,
        to destinationName: String,
        in destinationDirectory: CInt,
        level: Int32,
        mode: UInt32,
        owner: UInt32?,
        group: UInt32?,
        removeSource: Bool,
        hooks: Hooks
    ) throws(GzipError) -> Result {
        let job = GzipJob(
            sourceDirectory: sourceDirectory,
            sourceName: sourceName,
            destinationDirectory: destinationDirectory,
            destinationName: destinationName
        )
        for (role, name) in [("source", sourceName), ("destination", destinationName)] {
            if let problem = nameProblem(name) { throw job.invalid("the \(role) name '\(name)' \(problem)") }
        }
        guard (0...9).contains(level) else {
            throw job.invalid("level \(level) is not a zlib level; use 1 (fastest) to 9 (smallest), or 0 to store")
        }
        guard mode <= 0o7777 else {
            throw job.invalid("mode \(String(mode, radix: 8)) has bits beyond 07777; write e.g. 0640")
        }

        // 1. The source.
        let source = sourceName.withCString {
            openat(sourceDirectory, $0, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK)
        }
        guard source >= 0 else { throw job.openingSourceFailed(errno) }
        defer { Syscall.close(source) }
        var before = stat()
        guard fstat(source, &before) == 0 else { throw job.readingSourceFailed("fstat", errno) }
        let type = before.st_mode & S_IFMT
        guard type == S_IFREG else { throw job.refused("it is \(typeName(type)), not a regular file") }
        guard before.st_nlink == 1 else {
            if before.st_nlink == 0 { throw job.refused("it was removed as it was opened") }
            throw job.refused(
                "it has \(before.st_nlink) hard links, so removing this name would free nothing and another "
                    + "name could be a file that must not be copied; refusing, as gzip does (remove the other links)"
            )
        }
        _ = posix_fadvise(source, 0, 0, POSIX_FADV_SEQUENTIAL)

        // 2. The temporary output; closed (and, when named, unlinked) on every way out.
        var output = try openTemporary(in: destinationDirectory, unnamed: hooks.unnamedTemporary, job)
        defer {
            Syscall.close(output.fd)
            if let name = output.temporaryName { _ = unlinkat(destinationDirectory, name, 0) }
        }

        // 3. Compress.
        let (inputBytes, outputBytes) = try stream(
            from: source,
            to: output.fd,
            name: sourceName,
            mtime: before.st_mtim.tv_sec,
            level: level,
            job
        )
        hooks.afterReading?()

        // 4. Owner, mode, times, fsync; then a last look at the source before anything gets a name.
        // uid_t/gid_t -1 (UInt32.max) leaves that one unchanged.
        if owner != nil || group != nil {
            guard fchown(output.fd, owner ?? .max, group ?? .max) == 0 else {
                let code = errno
                let wanted = "\(owner.map { String($0) } ?? "(unchanged)"):\(group.map { String($0) } ?? "(unchanged)")"
                throw job.writingFailed("setting its owner to \(wanted)", code)
            }
        }
        guard fchmod(output.fd, mode_t(mode)) == 0 else { throw job.writingFailed("fchmod", errno) }
        var times = [before.st_atim, before.st_mtim]
        guard futimens(output.fd, &times) == 0 else { throw job.writingFailed("futimens", errno) }
        guard fsync(output.fd) == 0 else { throw job.writingFailed("fsync of the compressed data", errno) }
        _ = posix_fadvise(output.fd, 0, 0, POSIX_FADV_DONTNEED)
        if let change = change(of: source, since: before, bytesRead: inputBytes) { throw job.sourceChanged(change) }

        // 5. Link into place, never over an existing file, and make the name durable.
        try link(&output, into: destinationDirectory, as: destinationName, job)
        let code = syncDirectory(destinationDirectory)
        guard code == 0 else {
            let step = "fsync of '\(job.destinationFolder)'"
            throw removeDestination(output.fd, job) ? job.writingFailed(step, code) : job.leftBehind(step, code)
        }
        let result = Result(inputBytes: inputBytes, outputBytes: outputBytes)
        guard removeSource else { return result }

        // 6. Remove the source: still unchanged, and still under its name.
        hooks.beforeRemovingSource?()
        if let change = change(of: source, since: before, bytesRead: inputBytes) {
            throw job.sourceChanged(change, linkedAndRemoved: removeDestination(output.fd, job))
        }
        var now = stat()
        guard fstatat(sourceDirectory, sourceName, &now, AT_SYMLINK_NOFOLLOW) == 0 else {
            let code = errno
            throw job.removingSourceFailed("looking it up again returned '\(GzipJob.text(code))'", errno: code)
        }
        guard now.st_dev == before.st_dev && now.st_ino == before.st_ino else {
            throw job.removingSourceFailed(
                "the name now refers to another file (it was replaced while it was compressed), which was left alone"
            )
        }
        guard unlinkat(sourceDirectory, sourceName, 0) == 0 else {
            let code = errno
            throw job.removingSourceFailed("unlinkat returned '\(GzipJob.text(code))'", errno: code)
        }
        // Not durable is harmless: after a crash the source would be back beside its complete `.gz`.
        _ = syncDirectory(sourceDirectory)
        return result
    }

    // MARK: Steps

    /// Why `name` is not a single path component, or nil.
    static func nameProblem(_ name: String) -> String? {
        if name.isEmpty || name == "." || name == ".." { return "is not a file name" }
        if name.utf8.contains(UInt8(ascii: "/")) { return "contains '/'; names are single path components" }
        if name.utf8.contains(0) { return "contains a NUL byte" }
        return nil
    }

    /// The file type's name for a message.
    static func typeName(_ type: mode_t) -> String {
        switch type {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        default: "of an unknown type"
        }
    }

    /// The output descriptor and, for the fallback, the temporary name it still has (nil once linked
    /// and unlinked, or for an `O_TMPFILE`, which has none).
    struct Temporary {
        let fd: CInt
        var temporaryName: String?
    }

    /// An unnamed `O_TMPFILE` in `directory`, or a hidden named file where the filesystem has none.
    static func openTemporary(in directory: CInt, unnamed: Bool, _ job: GzipJob) throws(GzipError) -> Temporary {
        if unnamed {
            let fd = openat(directory, ".", CVigilLinux_o_tmpfile() | O_WRONLY | O_CLOEXEC, 0o600)
            if fd >= 0 { return Temporary(fd: fd, temporaryName: nil) }
            let code = errno
            // FIXME(kernel-baseline): EISDIR is a kernel before 3.11, which takes O_TMPFILE for O_DIRECTORY.
            guard code == EOPNOTSUPP || code == EISDIR else {
                throw job.writingFailed("creating a temporary file in '\(job.destinationFolder)'", code)
            }
        }
        while true {
            let name = ".vigil-gzip-\(getpid())-\(temporaryCounter.add(1, ordering: .relaxed).newValue).tmp"
            let fd = openat(directory, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 { return Temporary(fd: fd, temporaryName: name) }
            let code = errno
            // A stale file of a crashed process with a recycled pid: take the next number.
            if code == EEXIST { continue }
            throw job.writingFailed("creating a temporary file in '\(job.destinationFolder)'", code)
        }
    }

    /// Streams `source` through deflate into `output`; returns the bytes read and written.
    static func stream(
        from source: CInt,
        to output: CInt,
        name: String,
        mtime: Int,
        level: Int32,
        _ job: GzipJob
    ) throws(GzipError) -> (read: UInt64, written: UInt64) {
        let buffers = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * bufferSize, alignment: 4096)
        defer { buffers.deallocate() }
        let input = buffers.baseAddress!.assumingMemoryBound(to: Bytef.self)
        let compressed = input + bufferSize
        // zlib keeps a pointer back to the stream and to the header: both need addresses that do not move.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        let header = UnsafeMutablePointer<gz_header>.allocate(capacity: 1)
        header.initialize(to: gz_header())
        defer { header.deallocate() }
        let headerName = strdup(name)!
        defer { free(headerName) }

        var rc = CVigilLinux_deflateInit2(stream, level, 16 + 15, 8, Z_DEFAULT_STRATEGY)
        guard rc == Z_OK else { throw job.zlibFailed("deflateInit2", rc, message(stream)) }
        // On a failure part-way deflateEnd returns Z_DATA_ERROR (the stream was not finished): expected then.
        var ended = false
        defer { if !ended { _ = deflateEnd(stream) } }
        // As gzip writes it: the name and mtime (0 when it does not fit the header's 32 bits, as gzip does),
        // OS 3 (Unix), no FTEXT, no header CRC. zlib sets the extra flags from the level itself.
        header.pointee.name = UnsafeMutableRawPointer(headerName).assumingMemoryBound(to: Bytef.self)
        header.pointee.time = (0...Int(UInt32.max)).contains(mtime) ? uLong(mtime) : 0
        header.pointee.os = 3
        rc = deflateSetHeader(stream, header)
        guard rc == Z_OK else { throw job.zlibFailed("deflateSetHeader", rc, message(stream)) }

        var read: UInt64 = 0
        var written: UInt64 = 0
        var dropped: UInt64 = 0
        var finished = false
        while !finished {
            let n: Int
            do throws(Errno) {
                // nil (EAGAIN) does not happen on a regular file; count it as the error it would be.
                guard
                    let count = try Syscall.read(
                        source,
                        into: UnsafeMutableRawBufferPointer(start: input, count: bufferSize)
                    )
                else { throw Errno(rawValue: EAGAIN) }
                n = count
            } catch {
                throw job.readingSourceFailed("reading it", error.rawValue)
            }
            read += UInt64(n)
            let flush = n == 0 ? Z_FINISH : Z_NO_FLUSH
            stream.pointee.next_in = input
            stream.pointee.avail_in = uInt(n)
            // Run deflate until it has taken all the input (Z_NO_FLUSH) or written the trailer (Z_FINISH).
            // It stops early only when the output buffer is full, so a call that leaves room has consumed
            // everything. Z_BUF_ERROR means no progress was possible: harmless when the previous call had
            // filled the buffer exactly and nothing was pending, a bug anywhere else (it would loop forever).
            while true {
                stream.pointee.next_out = compressed
                stream.pointee.avail_out = uInt(bufferSize)
                rc = deflate(stream, flush)
                let produced = bufferSize - Int(stream.pointee.avail_out)
                if produced > 0 {
                    do throws(Errno) {
                        try Syscall.writeAll(output, UnsafeRawBufferPointer(start: compressed, count: produced))
                    } catch {
                        throw job.writingFailed("writing the compressed data", error.rawValue)
                    }
                    written += UInt64(produced)
                }
                if rc == Z_STREAM_END {
                    finished = true
                    break
                }
                if rc == Z_BUF_ERROR && flush == Z_NO_FLUSH && stream.pointee.avail_in == 0 { break }
                guard rc == Z_OK else { throw job.zlibFailed("deflate", rc, message(stream)) }
                if flush == Z_NO_FLUSH && stream.pointee.avail_out != 0 { break }
            }
            guard stream.pointee.avail_in == 0 else {
                throw job.zlibFailed("deflate", Z_STREAM_ERROR, "left input unconsumed")
            }
            if read - dropped >= cacheDropInterval {
                _ = posix_fadvise(source, off_t(dropped), off_t(read - dropped), POSIX_FADV_DONTNEED)
                dropped = read
            }
        }
        ended = true
        rc = deflateEnd(stream)
        guard rc == Z_OK else { throw job.zlibFailed("deflateEnd", rc, message(stream)) }
        return (read, written)
    }

    /// zlib's message for the last failure, if it set one.
    static func message(_ stream: UnsafeMutablePointer<z_stream>) -> String? {
        stream.pointee.msg.map { String(cString: $0) }
    }

    /// How the source changed since `before` was taken, or nil: its size then, the bytes read to end of
    /// file, and its size and mtime now must agree. A source that cannot be examined counts as changed.
    static func change(of source: CInt, since before: stat, bytesRead: UInt64) -> String? {
        var now = stat()
        guard fstat(source, &now) == 0 else {
            return "examining it again returned '\(GzipJob.text(errno))', so it may have changed"
        }
        let opened = UInt64(before.st_size)
        let current = UInt64(now.st_size)
        if bytesRead > opened { return "it grew from \(opened) to \(bytesRead) bytes while it was compressed" }
        if bytesRead < opened { return "it shrank from \(opened) to \(bytesRead) bytes while it was compressed" }
        if current > bytesRead { return "it grew from \(bytesRead) to \(current) bytes while it was compressed" }
        if current < bytesRead { return "it shrank from \(bytesRead) to \(current) bytes while it was compressed" }
        if now.st_mtim.tv_sec != before.st_mtim.tv_sec || now.st_mtim.tv_nsec != before.st_mtim.tv_nsec {
            return "it was modified while it was compressed"
        }
        return nil
    }

    /// Gives the temporary output its name. `EEXIST` is the destination's own error: it is never replaced.
    static func link(
        _ output: inout Temporary,
        into directory: CInt,
        as name: String,
        _ job: GzipJob
    ) throws(GzipError) {
        var code: CInt = 0
        if let temporary = output.temporaryName {
            if linkat(directory, temporary, directory, name, 0) != 0 { code = errno }
        } else {
            if linkat(AT_FDCWD, "/proc/self/fd/\(output.fd)", directory, name, AT_SYMLINK_FOLLOW) != 0 { code = errno }
            // Without /proc mounted (a bare chroot): AT_EMPTY_PATH, which needs CAP_DAC_READ_SEARCH.
            if code == ENOENT && access("/proc/self/fd", F_OK) != 0 {
                code = linkat(output.fd, "", directory, name, CVigilLinux_at_empty_path()) == 0 ? 0 : errno
            }
        }
        guard code == 0 else {
            if code == EEXIST { throw job.destinationExists() }
            throw job.writingFailed("linking it into place", code)
        }
        if let temporary = output.temporaryName {
            _ = unlinkat(directory, temporary, 0)
            output.temporaryName = nil
        }
    }

    /// Removes the destination just linked (after a later failure), if it still is the file written.
    /// Returns whether it is gone.
    static func removeDestination(_ output: CInt, _ job: GzipJob) -> Bool {
        var mine = stat()
        var named = stat()
        guard fstat(output, &mine) == 0,
            fstatat(job.destinationDirectory, job.destinationName, &named, AT_SYMLINK_NOFOLLOW) == 0,
            mine.st_dev == named.st_dev && mine.st_ino == named.st_ino,
            unlinkat(job.destinationDirectory, job.destinationName, 0) == 0
        else { return false }
        _ = syncDirectory(job.destinationDirectory)
        return true
    }

    /// `fsync` of a directory: 0, or the errno. An `O_PATH` descriptor cannot be synced (`EBADF`); the
    /// directory is then opened through it.
    static func syncDirectory(_ fd: CInt) -> CInt {
        if fsync(fd) == 0 { return 0 }
        let code = errno
        guard code == EBADF else { return code }
        let directory = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return errno }
        defer { Syscall.close(directory) }
        return fsync(directory) == 0 ? 0 : errno
    }
}
