import CVigilLinux
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Reading, writing and pruning `patterns-<key>.hsdb` files (see `PatternDatabase+Cache.swift`).
///
/// Everything goes through a descriptor of the directory, checked once (`fstat` on the open directory,
/// then `openat`/`renameat`/`unlinkat` relative to it), so the checks describe the directory actually used
/// even if its name is swapped meanwhile; the file itself is opened `O_NOFOLLOW`.
///
/// Layout, integers little-endian:
/// ```
/// 0  magic "VIGILHSD"   8  format 1 (u32)   12  header size 64 (u32)   16  key (high u64, low u64)
/// 32 payload length (u64)   40  CRC-32 of the payload (u32, zlib's)   44  zeros   64  hs_serialize_database bytes
/// ```
enum PatternCacheFile {
    static let magic: [UInt8] = Array("VIGILHSD".utf8)
    static let format: UInt32 = 1
    static let headerSize = 64
    /// Larger files are refused unread: a database of thousands of patterns is a few MiB.
    static let sizeLimit = 1 << 30
    /// Temporary files older than this are a crashed writer's and are removed when pruning.
    static let staleTemporarySeconds = 3600
    /// Makes temporary names unique between threads of one process (the pid tells processes apart).
    static let temporaryCounter = Atomic<Int>(0)

    enum Loaded {
        /// A database the caller owns.
        case loaded(OpaquePointer)
        /// No cache yet: the directory or the file does not exist. Not a problem.
        case missing
        /// A file or directory that must not or cannot be used, as a clause for a message.
        case refused(String)
    }

    // MARK: Loading

    static func load(directory: String, name: String, key: PatternCacheKey) -> Loaded {
        let directoryFD: CInt
        switch openDirectory(directory) {
        case .opened(let fd): directoryFD = fd
        case .missing: return .missing
        case .refused(let problem): return .refused(problem)
        }
        defer { Syscall.close(directoryFD) }
        let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        // O_NONBLOCK: a FIFO planted under the name must not block the open.
        let fd = openat(directoryFD, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        if fd < 0 {
            let code = errno
            if code == ENOENT { return .missing }
            if code == ELOOP { return .refused("'\(path)' is a symbolic link") }
            return .refused("'\(path)' cannot be opened: \(String(cString: strerror(code)))")
        }
        defer { Syscall.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            return .refused("'\(path)' cannot be examined: \(String(cString: strerror(errno)))")
        }
        if let problem = ownershipProblem(info, "'\(path)'", type: S_IFREG, typeName: "a regular file") {
            return .refused(problem)
        }
        let size = Int(info.st_size)
        guard size > headerSize, size <= sizeLimit else {
            return .refused("'\(path)' is truncated or corrupt (\(size) bytes)")
        }
        // 64-byte aligned, so the serialized bytes after the 64-byte header are too.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        var total = 0
        while total < size {
            let n = pread(fd, buffer.baseAddress! + total, size - total, off_t(total))
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                return .refused("'\(path)' cannot be read: \(String(cString: strerror(code)))")
            }
            if n == 0 { break }
            total += n
        }
        guard total == size else { return .refused("'\(path)' is truncated or corrupt (it shrank while read)") }
        let header = UnsafeRawBufferPointer(rebasing: buffer[0..<headerSize])
        guard Array(header[0..<8]) == magic, readU32(header, 8) == format, readU32(header, 12) == UInt32(headerSize)
        else { return .refused("'\(path)' is not a Vigil pattern cache file (or another format version)") }
        guard PatternCacheKey(high: readU64(header, 16), low: readU64(header, 24)) == key else {
            return .refused("'\(path)' holds other patterns than its name says")
        }
        let length = Int(truncatingIfNeeded: readU64(header, 32))
        guard length == size - headerSize else {
            return .refused("'\(path)' is truncated or corrupt (\(size - headerSize) of \(length) bytes)")
        }
        let payload = UnsafeRawBufferPointer(rebasing: buffer[headerSize...])
        guard checksum(payload) == readU32(header, 40) else {
            return .refused("'\(path)' is corrupt (its checksum does not match)")
        }
        var database: OpaquePointer?
        let status = hs_deserialize_database(
            payload.baseAddress!.assumingMemoryBound(to: CChar.self),
            payload.count,
            &database
        )
        guard status == HS_SUCCESS, let database else {
            return .refused("Vectorscan refuses '\(path)' (error \(status))")
        }
        // Marks the file used, so pruning removes the least recently used files first.
        _ = futimens(fd, nil)
        return .loaded(database)
    }

    // MARK: Storing

    /// Writes `database` to `directory/name` atomically (a 0600 temporary file renamed over the name), creating
    /// the directory 0700 when missing, then prunes. Returns a problem clause, or nil when stored.
    static func store(_ database: OpaquePointer, directory: String, name: String, key: PatternCacheKey) -> String? {
        if !FileTree.makeDirectories(directory, mode: 0o700) {
            return "the cache directory '\(directory)' cannot be created: \(String(cString: strerror(errno)))"
        }
        let directoryFD: CInt
        switch openDirectory(directory) {
        case .opened(let fd): directoryFD = fd
        case .missing: return "the cache directory '\(directory)' vanished while being written"
        case .refused(let problem): return problem
        }
        defer { Syscall.close(directoryFD) }
        var bytes: UnsafeMutablePointer<CChar>?
        var length = 0
        guard hs_serialize_database(database, &bytes, &length) == HS_SUCCESS, let bytes else {
            return "Vectorscan cannot serialize the patterns for the cache"
        }
        // hs_serialize_database allocates with the engine's allocator, malloc by default.
        defer { free(bytes) }
        let payload = UnsafeRawBufferPointer(start: bytes, count: length)
        var header = [UInt8](repeating: 0, count: headerSize)
        header.replaceSubrange(0..<8, with: magic)
        writeU32(&header, 8, format)
        writeU32(&header, 12, UInt32(headerSize))
        writeU64(&header, 16, key.high)
        writeU64(&header, 24, key.low)
        writeU64(&header, 32, UInt64(length))
        writeU32(&header, 40, checksum(payload))

        let serial = temporaryCounter.add(1, ordering: .relaxed).newValue
        let temporary = "\(name).tmp.\(getpid()).\(serial)"
        let fd = openat(directoryFD, temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            return "'\(directory)/\(temporary)' cannot be created: \(String(cString: strerror(errno)))"
        }
        do {
            // A closure with typed throws inside withUnsafeBytes crashes the 6.3.1 compiler (IRGen): a
            // Result carries the error out instead.
            let written = header.withUnsafeBytes { raw in Result { () throws(Errno) in try Syscall.writeAll(fd, raw) } }
            try written.get()
            try Syscall.writeAll(fd, payload)
        } catch {
            Syscall.close(fd)
            _ = unlinkat(directoryFD, temporary, 0)
            return "'\(directory)/\(temporary)' cannot be written: \(error)"
        }
        Syscall.close(fd)
        // No fsync: a file cut short by a crash fails the length or checksum test and is compiled again.
        guard renameat(directoryFD, temporary, directoryFD, name) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = unlinkat(directoryFD, temporary, 0)
            return "'\(directory)/\(temporary)' cannot be renamed to '\(name)': \(reason)"
        }
        prune(directoryFD, keeping: name)
        return nil
    }

    /// Removes the least recently used `patterns-*.hsdb` files other than `current` beyond
    /// `PatternDatabase.cacheFileLimit`, and temporary files a crashed writer left.
    static func prune(_ directoryFD: CInt, keeping current: String) {
        let listFD = dup(directoryFD)
        guard listFD >= 0 else { return }
        guard let stream = fdopendir(listFD) else {
            Syscall.close(listFD)
            return
        }
        defer { closedir(stream) }
        var files: [(name: String, modified: Int, nanoseconds: Int)] = []
        let now = time(nil)
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.hasPrefix("patterns-"), name != current else { continue }
            var info = stat()
            guard fstatat(directoryFD, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if name.contains(".hsdb.tmp.") {
                if now - info.st_mtim.tv_sec > staleTemporarySeconds { _ = unlinkat(directoryFD, name, 0) }
                continue
            }
            guard name.hasSuffix(".hsdb"), (info.st_mode & S_IFMT) == S_IFREG else { continue }
            files.append((name, info.st_mtim.tv_sec, info.st_mtim.tv_nsec))
        }
        let excess = files.count - (PatternDatabase.cacheFileLimit - 1)
        guard excess > 0 else { return }
        files.sort { ($0.modified, $0.nanoseconds, $0.name) < ($1.modified, $1.nanoseconds, $1.name) }
        for file in files.prefix(excess) { _ = unlinkat(directoryFD, file.name, 0) }
    }

    // MARK: Checks

    enum DirectoryOpening {
        case opened(CInt)
        case missing
        case refused(String)
    }

    /// Opens `path` as a directory (symlinks followed: what counts is the directory reached) and checks it.
    static func openDirectory(_ path: String) -> DirectoryOpening {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if code == ENOENT { return .missing }
            return .refused("the cache directory '\(path)' cannot be opened: \(String(cString: strerror(code)))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            Syscall.close(fd)
            return .refused("the cache directory '\(path)' cannot be examined: \(reason)")
        }
        if let problem = ownershipProblem(info, "the cache directory '\(path)'", type: S_IFDIR, typeName: "a directory")
        {
            Syscall.close(fd)
            return .refused(problem)
        }
        return .opened(fd)
    }

    /// Why `info` must not be trusted: another owner than the effective uid, write permission for group or
    /// others, or the wrong file type; nil when it is fine.
    static func ownershipProblem(_ info: stat, _ subject: String, type: mode_t, typeName: String) -> String? {
        if (info.st_mode & S_IFMT) != type { return "\(subject) is not \(typeName)" }
        let user = geteuid()
        if info.st_uid != user { return "\(subject) is owned by uid \(info.st_uid), not by uid \(user) running vigil" }
        if info.st_mode & 0o022 != 0 {
            return "\(subject) is writable by group or others (mode 0\(String(info.st_mode & 0o7777, radix: 8)))"
        }
        return nil
    }

    // MARK: Bytes

    /// zlib's CRC-32 (already linked for gzip rotation), in chunks its 32-bit length can take.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = crc32(0, nil, 0)
        var offset = 0
        while offset < bytes.count {
            let count = min(bytes.count - offset, 1 << 30)
            crc = crc32(crc, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self), UInt32(count))
            offset += count
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    static func readU32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        var value: UInt32 = 0
        for index in (0..<4).reversed() { value = value << 8 | UInt32(bytes[offset + index]) }
        return value
    }

    static func readU64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in (0..<8).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
        return value
    }

    static func writeU32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt32(8 * index)) }
    }

    static func writeU64(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt64) {
        for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt64(8 * index)) }
    }
}
