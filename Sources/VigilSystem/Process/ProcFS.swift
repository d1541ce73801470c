import CVigilLinux

#if canImport(Glibc)
import Glibc
#endif

/// Readers of `/proc/PID/…` for the process table (cold path: at exec time, at start-up and after lost
/// events). A process event carries only pids; everything else about a process is read here, and any
/// read may find the process already gone: every reader returns nil then (`ENOENT`/`ESRCH`).
///
/// One instance owns one read buffer and is used by one thread at a time. `root` is `/proc`, or a
/// directory laid out like it for tests. See `man 5 proc`.
public final class ProcFS {
    /// The proc root, `/proc` by default.
    public let root: String

    private let buffer: UnsafeMutableRawBufferPointer

    /// A reader of `root`, with a reusable buffer of `bufferSize` bytes (the largest file it reads whole;
    /// `/proc/PID/status` is about 1.5 KiB).
    public init(root: String = "/proc", bufferSize: Int = 16384) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        buffer = .allocate(byteCount: max(bufferSize, 4096), alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// `/proc/PID/stat`, the fields Vigil uses.
    public struct Stat: Sendable, Equatable {
        /// The process id (field 1).
        public var pid: Int32
        /// The `comm` name, up to 15 bytes (field 2, between the parentheses).
        public var comm: String
        /// The state letter: `R`, `S`, `D`, `Z` (zombie), `T`, `t`, `X`, `I` (field 3).
        public var state: UInt8
        /// The parent process (field 4).
        public var ppid: Int32
        /// The process group (field 5).
        public var processGroup: Int32
        /// The session (field 6).
        public var session: Int32
        /// User-mode CPU time in clock ticks (field 14).
        public var userTicks: UInt64
        /// Kernel-mode CPU time in clock ticks (field 15).
        public var systemTicks: UInt64
        /// Threads in the process (field 20).
        public var threads: Int
        /// When the process started, in clock ticks since boot (field 22). With the pid it identifies a
        /// process across pid reuse.
        public var startTime: UInt64

        /// Whether the process is a zombie: exited, not yet reaped by its parent.
        public var isZombie: Bool { state == UInt8(ascii: "Z") }
    }

    /// `/proc/PID/status`, the ids Vigil uses.
    public struct Status: Sendable, Equatable {
        /// The process (thread group) id, `Tgid:`; differs from the pid for a thread read through its tid.
        public var tgid: Int32
        /// The parent, `PPid:`.
        public var ppid: Int32
        /// Real user id, the first `Uid:` field.
        public var ruid: UInt32
        /// Effective user id, the second `Uid:` field.
        public var euid: UInt32
        /// Real group id, the first `Gid:` field.
        public var rgid: UInt32
        /// Effective group id, the second `Gid:` field.
        public var egid: UInt32
    }

    /// Where `/proc/PID/exe` points.
    public struct Executable: Sendable, Equatable {
        /// The path, without the kernel's ` (deleted)` suffix.
        public var path: String
        /// True when the file was deleted or replaced after the process started it (the kernel appended
        /// ` (deleted)`), as after a package upgrade.
        public var deleted: Bool
    }

    /// Reads and parses `/proc/PID/stat`; nil when the process is gone or the file is malformed.
    public func stat(_ pid: Int32) -> Stat? {
        guard let count = readWhole("\(root)/\(pid)/stat") else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
        // comm may itself hold ')' and spaces: it runs from the first '(' to the *last* ')'.
        guard let open = bytes.firstIndex(of: UInt8(ascii: "(")),
            let close = bytes.lastIndex(of: UInt8(ascii: ")")),
            open < close
        else { return nil }
        let comm = String(decoding: bytes[(open + 1)..<close], as: UTF8.self)
        guard let pidField = Self.integer(bytes[0..<open]) else { return nil }
        // Fields 3… follow ") ", separated by single spaces; parsed in place (this runs at every exec).
        var values = (state: UInt8(0), ppid: Int64(0), group: Int64(0), session: Int64(0))
        var user: Int64 = 0
        var system: Int64 = 0
        var threads: Int64 = 0
        var start: Int64 = 0
        var field = 3
        var index = close + 2
        while index < count && field <= 22 {
            var end = index
            while end < count && bytes[end] != UInt8(ascii: " ") && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            let slice = bytes[index..<end]
            switch field {
            case 3: values.state = slice.first ?? 0
            case 4: values.ppid = Self.integer(slice) ?? 0
            case 5: values.group = Self.integer(slice) ?? 0
            case 6: values.session = Self.integer(slice) ?? 0
            case 14: user = Self.integer(slice) ?? 0
            case 15: system = Self.integer(slice) ?? 0
            case 20: threads = Self.integer(slice) ?? 0
            case 22: start = Self.integer(slice) ?? -1
            default: break
            }
            field += 1
            index = end + 1
        }
        guard field > 22, values.state != 0, start >= 0 else { return nil }
        return Stat(
            pid: Int32(truncatingIfNeeded: pidField),
            comm: comm,
            state: values.state,
            ppid: Int32(truncatingIfNeeded: values.ppid),
            processGroup: Int32(truncatingIfNeeded: values.group),
            session: Int32(truncatingIfNeeded: values.session),
            userTicks: UInt64(max(user, 0)),
            systemTicks: UInt64(max(system, 0)),
            threads: Int(threads),
            startTime: UInt64(start)
        )
    }

    /// What a sampler needs of `/proc/PID/stat`: CPU times, start time and resident set, parsed without
    /// building the `comm` string (a sampler reads it for every selected process every round).
    public struct Usage: Sendable, Equatable {
        /// User-mode CPU time in clock ticks (field 14).
        public var userTicks: UInt64
        /// Kernel-mode CPU time in clock ticks (field 15).
        public var systemTicks: UInt64
        /// When the process started, in clock ticks since boot (field 22).
        public var startTime: UInt64
        /// Resident set size in pages (field 24): the counter `statm`'s second field shows (`get_mm_rss`),
        /// so one read gives CPU and memory. Zero for a zombie and a kernel thread.
        public var residentPages: UInt64
    }

    /// Reads `/proc/PID/stat` (open, read, close) for a sampler; nil when the process is gone.
    public func usage(_ pid: Int32) -> Usage? {
        guard let count = readWhole("\(root)/\(pid)/stat", limit: 1024) else { return nil }
        return Self.parseUsage(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }

    /// Opens `/proc/PID/stat` to be read again and again with `usage(descriptor:)`; the descriptor, or nil
    /// with `errno` set (`ENOENT`: gone; `EMFILE`/`ENFILE`: out of descriptors).
    public func openStat(_ pid: Int32) -> CInt? {
        let fd = "\(root)/\(pid)/stat".withCString { CVigilLinux_open($0, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0) }
        return fd >= 0 ? fd : nil
    }

    /// Reads a descriptor from `openStat` again from offset 0 (`pread(2)`: procfs regenerates the text on
    /// every read from 0). A descriptor of a process that has exited reads `ESRCH`, also once its pid is
    /// reused, so a kept descriptor always names the process it was opened for: nil then.
    public func usage(descriptor fd: CInt) -> Usage? {
        let capacity = min(1024, buffer.count)
        var n: Int
        repeat { n = pread(fd, buffer.baseAddress!, capacity, 0) } while n < 0 && errno == EINTR
        guard n > 0 else { return nil }
        return Self.parseUsage(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
    }

    /// Fields 14, 15, 22 and 24 of a stat line; nil when it is malformed. `comm` (field 2) may hold spaces
    /// and ')': the fields after it start after the *last* ')'.
    static func parseUsage(_ bytes: UnsafeRawBufferPointer) -> Usage? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        var user: UInt64 = 0
        var system: UInt64 = 0
        var start: UInt64 = 0
        var resident: UInt64 = 0
        var field = 3
        var value: UInt64 = 0
        var negative = false
        var index = close + 2
        while index <= bytes.count && field <= 24 {
            let byte = index < bytes.count ? bytes[index] : UInt8(ascii: " ")
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") {
                switch field {
                case 14: user = value
                case 15: system = value
                case 22: start = value
                case 24: resident = negative ? 0 : value
                default: break
                }
                field += 1
                value = 0
                negative = false
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                value = value &* 10 &+ UInt64(byte - UInt8(ascii: "0"))
            } else if byte == UInt8(ascii: "-") {
                negative = true
            }
            index += 1
        }
        guard field > 24 else { return nil }
        return Usage(userTicks: user, systemTicks: system, startTime: start, residentPages: resident)
    }

    /// `/proc/PID/statm`, the memory figures Vigil uses, in pages (see `pageSize`).
    public struct Statm: Sendable, Equatable {
        /// Total program size, the virtual memory of the process (field 1).
        public var sizePages: UInt64
        /// Resident set size: pages in RAM, anonymous, file-backed and shared memory together (field 2);
        /// the `RSS` of `ps`. Zero for a zombie and for a kernel thread.
        public var residentPages: UInt64
    }

    /// Reads and parses the first two fields of `/proc/PID/statm`; nil when the process is gone or the
    /// file is malformed. The kernel keeps `statm` as one short line of page counts, cheaper to read than
    /// `status`'s `VmRSS:`.
    public func statm(_ pid: Int32) -> Statm? {
        guard let count = readWhole("\(root)/\(pid)/statm", limit: 256) else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
        var fields: (Int64, Int64) = (-1, -1)
        var field = 0
        var index = 0
        while index < count && field < 2 {
            var end = index
            while end < count && bytes[end] != UInt8(ascii: " ") && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            let value = Self.integer(bytes[index..<end]) ?? -1
            if field == 0 { fields.0 = value } else { fields.1 = value }
            field += 1
            index = end + 1
        }
        guard fields.0 >= 0, fields.1 >= 0 else { return nil }
        return Statm(sizePages: UInt64(fields.0), residentPages: UInt64(fields.1))
    }

    /// `MemTotal:` of `/proc/meminfo` in bytes: the RAM the kernel manages (physical memory less what
    /// firmware and the kernel image reserve), the base of a process's memory share as `top` shows it.
    /// Nil when the file cannot be read or has no such line.
    public func memoryTotal() -> UInt64? {
        // MemTotal is the first line; 256 bytes are enough and spare reading the ~1.5 KiB file.
        guard let count = readWhole("\(root)/meminfo", limit: 256) else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
        let key = "MemTotal:".utf8
        guard count > key.count, bytes[0..<key.count].elementsEqual(key) else { return nil }
        var index = key.count
        while index < count && bytes[index] == UInt8(ascii: " ") { index += 1 }
        var end = index
        while end < count && bytes[end] >= UInt8(ascii: "0") && bytes[end] <= UInt8(ascii: "9") { end += 1 }
        guard end > index, let kibibytes = Self.integer(bytes[index..<end]), kibibytes >= 0 else { return nil }
        return UInt64(kibibytes) &* 1024  // the kernel writes "kB" and means KiB
    }

    /// `sysconf(_SC_PAGESIZE)`: the bytes in one page of `Statm` (4096 on x86-64, 4–64 KiB on arm64).
    public static let pageSize: Int = {
        let size = sysconf(CInt(_SC_PAGESIZE))
        return size > 0 ? size : 4096
    }()

    /// Reads and parses `/proc/PID/status`; nil when the process is gone or a field is missing. Scans the
    /// bytes for the four lines it needs, without building strings.
    public func status(_ pid: Int32) -> Status? {
        guard let count = readWhole("\(root)/\(pid)/status") else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
        var tgid: Int64?
        var ppid: Int64?
        var uids: (Int64, Int64)?
        var gids: (Int64, Int64)?
        var lineStart = 0
        while lineStart < count {
            var lineEnd = lineStart
            while lineEnd < count && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            let line = bytes[lineStart..<lineEnd]
            if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
                let key = line[lineStart..<colon]
                var numbers: [Int64] = []
                if key.elementsEqual("Tgid".utf8) || key.elementsEqual("PPid".utf8) || key.elementsEqual("Uid".utf8)
                    || key.elementsEqual("Gid".utf8)
                {
                    var i = colon + 1
                    while i < lineEnd && numbers.count < 2 {
                        while i < lineEnd && (bytes[i] == 9 || bytes[i] == 32) { i += 1 }
                        var j = i
                        while j < lineEnd && bytes[j] != 9 && bytes[j] != 32 { j += 1 }
                        if j > i, let value = Self.integer(bytes[i..<j]) { numbers.append(value) }
                        i = j
                    }
                }
                if key.elementsEqual("Tgid".utf8) {
                    tgid = numbers.first
                } else if key.elementsEqual("PPid".utf8) {
                    ppid = numbers.first
                } else if key.elementsEqual("Uid".utf8), numbers.count == 2 {
                    uids = (numbers[0], numbers[1])
                } else if key.elementsEqual("Gid".utf8), numbers.count == 2 {
                    gids = (numbers[0], numbers[1])
                    break  // Gid comes after Tgid, PPid and Uid
                }
            }
            lineStart = lineEnd + 1
        }
        guard let tgid, let ppid, let uids, let gids else { return nil }
        return Status(
            tgid: Int32(truncatingIfNeeded: tgid),
            ppid: Int32(truncatingIfNeeded: ppid),
            ruid: UInt32(truncatingIfNeeded: uids.0),
            euid: UInt32(truncatingIfNeeded: uids.1),
            rgid: UInt32(truncatingIfNeeded: gids.0),
            egid: UInt32(truncatingIfNeeded: gids.1)
        )
    }

    /// `readlink(2)` of `/proc/PID/exe`; nil when the process is gone, is a kernel thread, or its
    /// executable may not be read (`EACCES`: another user's process without `CAP_SYS_PTRACE`).
    public func executable(_ pid: Int32) -> Executable? {
        let path = "\(root)/\(pid)/exe"
        let n = path.withCString { name in
            readlink(name, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
        }
        guard n > 0 else { return nil }
        var target = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<n]), as: UTF8.self)
        let suffix = " (deleted)"
        let deleted = target.hasSuffix(suffix)
        if deleted { target.removeLast(suffix.count) }
        return Executable(path: target, deleted: deleted)
    }

    /// `/proc/PID/cmdline` split at its NULs, reading at most `limit` bytes; empty for a kernel thread or a
    /// zombie, nil when the process is gone. Also empty for a moment during `execve`: a parent's
    /// `posix_spawn` returns once the child's memory is replaced, before the kernel has copied argv into
    /// it (measured on 6.18). Read it at the process's exec event, which the kernel sends when exec is done.
    public func commandLine(_ pid: Int32, limit: Int = 4096) -> [String]? {
        guard let count = readWhole("\(root)/\(pid)/cmdline", limit: limit) else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
        var arguments = bytes.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        if bytes.last == 0 || count == 0 { arguments.removeLast() }  // the NUL ends the last argument
        return arguments
    }

    /// The cgroup v2 path of the process (the `0::` line of `/proc/PID/cgroup`), or on a host without
    /// the unified hierarchy the `name=systemd` v1 path; nil when the process is gone.
    public func cgroup(_ pid: Int32) -> String? {
        guard let count = readWhole("\(root)/\(pid)/cgroup") else { return nil }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
        var systemd: String?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty { return String(parts[2]) }
            if parts[1] == "name=systemd" { systemd = String(parts[2]) }
        }
        return systemd
    }

    /// The systemd unit a cgroup path belongs to: its last component that ends in `.service` or `.scope`,
    /// so a user service under `user@1000.service` is named by itself. Nil for `/` and for paths in no unit.
    ///
    ///     /system.slice/upload-service.service → upload-service.service
    ///     /user.slice/user-1000.slice/user@1000.service/app.slice/foo.service → foo.service
    public static func unit(fromCgroup path: String) -> String? {
        for component in path.split(separator: "/").reversed()
        where component.hasSuffix(".service") || component.hasSuffix(".scope") {
            return String(component)
        }
        return nil
    }

    /// Every process id: the numeric entries of the proc root (threads are not listed there).
    public func pids() -> [Int32] {
        numericEntries(root)
    }

    /// The thread ids of process `pid` (`/proc/PID/task`), the main thread included; nil when it is gone.
    public func threadIds(_ pid: Int32) -> [Int32]? {
        let tasks = numericEntries("\(root)/\(pid)/task")
        return tasks.isEmpty ? nil : tasks
    }

    /// `gettid(2)`: the calling thread's id, which process events report as `pid` (and as the parent of
    /// the children this thread starts).
    public static func currentThreadID() -> Int32 { CVigilLinux_gettid() }

    /// When the host booted, in seconds since the Unix epoch (`btime` in `/proc/stat`).
    public func bootTime() -> Int64? {
        guard let count = readWhole("\(root)/stat", limit: buffer.count) else { return nil }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Int64(line.dropFirst(6))
        }
        return nil
    }

    /// `sysconf(_SC_CLK_TCK)`: the clock ticks per second of `Stat.startTime` and the CPU times (100 on
    /// every Linux architecture Vigil runs on).
    public static let clockTicksPerSecond: Int = {
        let ticks = sysconf(CInt(_SC_CLK_TCK))
        return ticks > 0 ? ticks : 100
    }()

    /// Converts clock ticks since boot (`Stat.startTime`) to nanoseconds since boot, the time base of
    /// `CLOCK_BOOTTIME` (equal to `CLOCK_MONOTONIC`, the proc connector's clock, until the host suspends).
    public static func nanosecondsSinceBoot(ticks: UInt64) -> UInt64 {
        ticks &* (1_000_000_000 / UInt64(clockTicksPerSecond))
    }

    /// Reads `path` whole into the buffer (up to `limit` or the buffer's size); the byte count, or nil when
    /// it cannot be opened or read (the process is gone: `ENOENT`, `ESRCH`; or no permission).
    private func readWhole(_ path: String, limit: Int? = nil) -> Int? {
        let capacity = min(limit ?? buffer.count, buffer.count)
        let fd = path.withCString { CVigilLinux_open($0, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0) }
        guard fd >= 0 else { return nil }
        defer { Syscall.close(fd) }
        var total = 0
        while total < capacity {
            let n = Glibc.read(fd, buffer.baseAddress! + total, capacity - total)
            if n > 0 {
                total += n
                continue
            }
            if n == 0 { break }
            if errno == EINTR { continue }
            return nil  // ESRCH: the process exited between open and read
        }
        return total
    }

    private func numericEntries(_ directory: String) -> [Int32] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var result: [Int32] = []
        while let entry = readdir(dir) {
            let value: Int32? = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                var number: Int32 = 0
                var digits = 0
                for byte in raw {
                    if byte == 0 { break }
                    guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 10 else { return nil }
                    number = number &* 10 &+ Int32(byte - UInt8(ascii: "0"))
                    digits += 1
                }
                return digits > 0 ? number : nil
            }
            if let value { result.append(value) }
        }
        return result.sorted()
    }

    /// A decimal integer (optional '-', surrounding spaces allowed) parsed from bytes without a String.
    private static func integer(_ bytes: Slice<UnsafeRawBufferPointer>) -> Int64? {
        var i = bytes.startIndex
        var end = bytes.endIndex
        while i < end && bytes[i] == 32 { i += 1 }
        while end > i && bytes[end - 1] == 32 { end -= 1 }
        guard i < end else { return nil }
        var negative = false
        if bytes[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
            guard i < end else { return nil }
        }
        var value: Int64 = 0
        while i < end {
            let digit = bytes[i] &- 48
            guard digit <= 9 else { return nil }
            let (times, overflowTimes) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowSum) = times.addingReportingOverflow(Int64(digit))
            guard !overflowTimes && !overflowSum else { return nil }
            value = sum
            i += 1
        }
        return negative ? -value : value
    }
}
