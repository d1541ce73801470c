#if canImport(Glibc)
import Glibc
#endif

/// Readers of `/proc/PID/…` (`man 5 proc`) for the process table: each returns nil when the process is
/// gone (or the file cannot be read), never throws. They run at exec and start-up, not per datagram.
public enum ProcFS {
    /// `/proc/PID/stat`: the fields the table keeps.
    public struct Stat: Sendable, Equatable {
        /// The kernel's name (`comm`), at most 15 bytes.
        public var comm: String
        /// State: `R`, `S`, `D`, `Z` (zombie), `T`, `X`…
        public var state: UInt8
        public var parentPid: Int32
        /// Start time after boot in clock ticks (field 22): with the pid, the process's identity.
        public var startTime: UInt64
    }

    /// `/proc/PID/status`: ids.
    public struct Status: Sendable, Equatable {
        public var threadGroupId: Int32
        public var realUserId: UInt32
        public var effectiveUserId: UInt32
        public var realGroupId: UInt32
        public var effectiveGroupId: UInt32
    }

    /// Where `/proc` is (tests may point elsewhere).
    nonisolated(unsafe) public static var procRoot = "/proc"
    // nonisolated(unsafe): set once before any thread reads it (tests only).

    /// Reads a small file into bytes; nil when it cannot be opened.
    static func readBytes(_ path: String, limit: Int = 8192) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: limit)
        var total = 0
        while total < limit {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, limit - total) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return total == 0 ? nil : Array(bytes[0..<total]) }
            if n == 0 { break }
            total += n
        }
        return Array(bytes[0..<total])
    }

    /// `/proc/PID/stat`. `comm` may hold spaces and parentheses, so the fields after it are found from the
    /// last `)`.
    public static func stat(pid: Int32) -> Stat? {
        guard let bytes = readBytes("\(procRoot)/\(pid)/stat", limit: 1024),
            let open = bytes.firstIndex(of: UInt8(ascii: "(")),
            let close = bytes.lastIndex(of: UInt8(ascii: ")")), close > open
        else { return nil }
        let comm = String(decoding: bytes[(open + 1)..<close], as: UTF8.self)
        // After ") ": field 3 (state) onwards, space separated.
        let rest = bytes[(close + 2)...].split(separator: UInt8(ascii: " "))
        guard rest.count >= 20, let state = rest[0].first else { return nil }
        guard let parent = Int32(String(decoding: rest[1], as: UTF8.self)),
            let start = UInt64(String(decoding: rest[19], as: UTF8.self))
        else { return nil }
        return Stat(comm: comm, state: state, parentPid: parent, startTime: start)
    }

    /// `/proc/PID/status`: Tgid, Uid and Gid lines.
    public static func status(pid: Int32) -> Status? {
        guard let bytes = readBytes("\(procRoot)/\(pid)/status", limit: 4096) else { return nil }
        var result = Status(
            threadGroupId: pid,
            realUserId: .max,
            effectiveUserId: .max,
            realGroupId: .max,
            effectiveGroupId: .max
        )
        var found = 0
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let text = String(decoding: line, as: UTF8.self)
            if text.hasPrefix("Tgid:") {
                result.threadGroupId = Int32(text.dropFirst(5).trimmingSpaces()) ?? pid
            } else if text.hasPrefix("Uid:") || text.hasPrefix("Gid:") {
                let ids = text.dropFirst(4).split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { UInt32($0) }
                guard ids.count >= 2 else { continue }
                if text.hasPrefix("Uid:") {
                    (result.realUserId, result.effectiveUserId) = (ids[0], ids[1])
                } else {
                    (result.realGroupId, result.effectiveGroupId) = (ids[0], ids[1])
                }
                found += 1
                if found == 2 { break }
            }
        }
        return result
    }

    /// `readlink /proc/PID/exe`: the executable (without the " (deleted)" the kernel appends when it was
    /// replaced or removed). Nil for kernel threads, zombies, gone processes, or without the right to look
    /// (other users' processes need CAP_SYS_PTRACE).
    public static func executable(pid: Int32) -> (path: String, deleted: Bool)? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink("\(procRoot)/\(pid)/exe", &buffer, 4096)
        guard n > 0 else { return nil }
        var path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let suffix = " (deleted)"
        var deleted = false
        if path.hasSuffix(suffix) {
            path.removeLast(suffix.count)
            deleted = true
        }
        return (path, deleted)
    }

    /// `/proc/PID/cmdline` split on NUL, read up to `limit` bytes; empty for kernel threads and zombies.
    public static func commandLine(pid: Int32, limit: Int = 4096) -> [String]? {
        guard let bytes = readBytes("\(procRoot)/\(pid)/cmdline", limit: limit) else { return nil }
        return bytes.split(separator: 0, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
            .reversed().drop(while: { $0.isEmpty }).reversed()
    }

    /// `/proc/PID/cgroup`: the cgroup v2 path (`0::/system.slice/x.service`), or v1's `name=systemd` one.
    public static func cgroup(pid: Int32) -> String? {
        guard let bytes = readBytes("\(procRoot)/\(pid)/cgroup", limit: 4096) else { return nil }
        var fallback: String?
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("0::") { return String(line.dropFirst(3)) }
            if let range = line.firstRange(of: ":name=systemd:") { fallback = String(line[range.upperBound...]) }
        }
        return fallback
    }

    /// The systemd unit a cgroup path names: its last component ending in `.service` or `.scope`
    /// (`/system.slice/upload-service.service` → `upload-service.service`); nil for `/` and slices only.
    public static func unit(fromCgroup path: String) -> String? {
        path.split(separator: "/").last(where: { $0.hasSuffix(".service") || $0.hasSuffix(".scope") }).map(String.init)
    }

    /// Every process id in `/proc`.
    public static func pids() -> [Int32] {
        guard let directory = opendir(procRoot) else { return [] }
        defer { closedir(directory) }
        var result: [Int32] = []
        while let entry = readdir(directory) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) { raw -> Int32? in
                var value: Int32 = 0
                var any = false
                for byte in raw {
                    if byte == 0 { break }
                    guard byte >= 48 && byte <= 57 else { return nil }
                    value = value &* 10 &+ Int32(byte - 48)
                    any = true
                }
                return any ? value : nil
            }
            if let pid { result.append(pid) }
        }
        return result
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).prefix(while: { $0 != " " && $0 != "\t" }))
    }
}
