import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's per-task accounting record at exit, over generic netlink (the `TASKSTATS` family,
/// linux/taskstats.h): every task that exits on the registered CPUs is sent here as a `struct taskstats`,
/// which carries its name (`ac_comm`), real uid, parent, start time and executable (device and inode).
///
/// Why Vigil listens: the proc connector's exec event carries no name, so Vigil reads `/proc/PID` when it
/// handles the exec. A process that has already exited and been reaped by then (a `/bin/true` run from a
/// shell loop lives well under a millisecond) leaves nothing to read. The kernel sends this record in
/// `do_exit()` *before* the connector's exit event, from the dying task itself, so the record is in this
/// socket by the time the exit event is read: the exit of such a process is judged by its real name.
///
/// Opening it: `socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC)`, the family's id from `CTRL_CMD_GETFAMILY`,
/// then `TASKSTATS_CMD_GET` with `TASKSTATS_CMD_ATTR_REGISTER_CPUMASK` set to every possible CPU. The kernel
/// accepts the registration only from `CAP_NET_ADMIN` in the initial user and pid namespaces, and the
/// family exists only in the initial network namespace of a kernel built with `CONFIG_TASKSTATS` (Debian's
/// is). Closing the socket ends the registration (the kernel drops a listener it cannot send to).
public final class TaskExitStats: @unchecked Sendable {
    // @unchecked Sendable: the descriptor is an int; `receive` and `close` are used by the one thread
    // that owns it, like `ProcConnector`.

    /// One exiting task as the kernel reported it.
    public struct Exit: Sendable, Equatable {
        /// The task (thread) id, and its process: equal for a process's main thread.
        public var pid: Int32
        /// The thread group id; `pid` when the kernel's struct predates `ac_tgid` (version 12; Debian 12's 6.1 sends 13).
        public var tgid: Int32
        public var parent: Int32
        public var realUser: UInt32
        /// The kernel's name for the task (`comm`, at most 15 bytes).
        public var comm: String
        /// The executable's device (the kernel's encoding, as `stat`'s `st_dev`) and inode; 0 before struct
        /// version 12, and for kernel threads.
        public var executableDevice: UInt64
        public var executableInode: UInt64

    }

    /// Why the listener could not be set up: the step, the errno, and what to do.
    public struct OpenError: Error, Sendable, CustomStringConvertible {
        public enum Step: String, Sendable {
            case socket = "opening a generic netlink socket"
            case family = "looking up the TASKSTATS generic netlink family"
            case register = "registering for exit records (TASKSTATS_CMD_ATTR_REGISTER_CPUMASK)"
        }

        public let step: Step
        public let errno: Errno

        public var description: String {
            let cause: String
            switch (step, errno) {
            case (.family, .noSuchFileOrDirectory):
                cause =
                    "the kernel has no TASKSTATS family here: built without CONFIG_TASKSTATS, or Vigil is not in the host's initial network namespace (a container, PrivateNetwork=yes)"
            case (.register, .notPermitted), (.register, .permissionDenied):
                cause = "the kernel accepts the registration only from CAP_NET_ADMIN; grant it to vigil"
            case (.register, .invalidArgument):
                cause = "the kernel accepts the registration only in the initial user and pid namespaces"
            case (.socket, .addressFamilyNotSupported):
                cause = "AF_NETLINK is not allowed here (RestrictAddressFamilies= must include AF_NETLINK)"
            case (_, .timedOut):
                cause = "the kernel did not answer within a second"
            default:
                cause = "\(errno); docs/operations.md#taskstats lists what the registration needs"
            }
            return "Failed at \(step.rawValue): \(cause)"
        }
    }

    /// The outcome of one `receive`.
    public enum Receive: Sendable, Equatable {
        /// A datagram was read; its records went to the closure.
        case datagram
        /// Nothing to read now.
        case wouldBlock
        /// The receive buffer overflowed (`ENOBUFS`): records were lost.
        case lost
    }

    /// The socket (Vigil reads it at the proc connector's wake-ups; tests poll it).
    public let descriptor: CInt
    /// The TASKSTATS family's id.
    public let family: UInt16
    /// Datagrams another process sent to this socket (not the kernel): dropped.
    public private(set) var forgedDatagrams = 0
    private var isOpen = true

    /// A read buffer large enough for a record (a `struct taskstats` is about 400 bytes; the kernel sends
    /// one task per message, with its thread group's totals when the group ends).
    public static let recommendedReadSize = 8192

    /// Opens the socket, sizes its buffer (`SO_RCVBUFFORCE`, else `SO_RCVBUF`), finds the family and
    /// registers for the exits on every possible CPU.
    public init(receiveBufferSize: Int = 4 << 20) throws(OpenError) {
        let fd = socket(
            AF_NETLINK,
            CInt(SOCK_RAW.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue),
            NETLINK_GENERIC
        )
        guard fd >= 0 else { throw OpenError(step: .socket, errno: Errno(rawValue: errno)) }
        let size = CInt(clamping: receiveBufferSize)
        if CVigilLinux_setsockopt_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, size) != 0 {
            _ = CVigilLinux_setsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, size)
        }
        descriptor = fd
        do {
            family = try Self.familyID(fd)
            try Self.register(fd, family: family, cpus: Self.possibleCPUs())
        } catch {
            Syscall.close(fd)
            isOpen = false
            throw error
        }
    }

    deinit { close() }

    /// Reads one datagram without blocking and hands to `body` each per-task record in it that `keep`
    /// accepts by pid and thread group id (the others are skipped before their name is made a String).
    public func receive(
        into buffer: UnsafeMutableRawBufferPointer,
        where keep: (_ pid: Int32, _ tgid: Int32) -> Bool = { _, _ in true },
        _ body: (Exit) -> Void
    ) -> Receive {
        while true {
            let n = ProcConnector.receiveFromKernel(descriptor, into: buffer, forged: &forgedDatagrams)
            if n >= 0 {
                Self.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), family: family, where: keep, body)
                return .datagram
            }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            default: return .lost
            }
        }
    }

    /// Hands each per-task record of a taskstats datagram that `keep` accepts to `body` (thread group totals
    /// are skipped).
    public static func decode(
        _ bytes: UnsafeRawBufferPointer,
        family: UInt16,
        where keep: (_ pid: Int32, _ tgid: Int32) -> Bool = { _, _ in true },
        _ body: (Exit) -> Void
    ) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        var record = CVigilTaskExit()
        while CVigilLinux_taskstats_next(base, bytes.count, family, &offset, &record) == 1 {
            let pid = Int32(bitPattern: record.pid)
            let tgid = record.tgid == 0 ? pid : Int32(bitPattern: record.tgid)
            guard keep(pid, tgid) else { continue }
            let comm = withUnsafeBytes(of: record.comm) { raw -> String in
                let bytes = raw.prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            body(
                Exit(
                    pid: pid,
                    tgid: tgid,
                    parent: Int32(bitPattern: record.ppid),
                    realUser: record.uid,
                    comm: comm,
                    executableDevice: record.exe_dev,
                    executableInode: record.exe_inode
                )
            )
        }
    }

    /// Closes the socket (the kernel forgets the listener); later calls do nothing.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        Syscall.close(descriptor)
    }

    /// Every CPU the kernel could bring up (`/sys/devices/system/cpu/possible`, "0-N"), so that a CPU
    /// brought online later is covered too.
    static func possibleCPUs() -> String {
        let text = ProcFile.readText("/sys/devices/system/cpu/possible") ?? ""
        let trimmed = text.filter { !$0.isWhitespace }
        if !trimmed.isEmpty { return trimmed }
        let count = max(sysconf(Int32(_SC_NPROCESSORS_CONF)), 1)
        return "0-\(count - 1)"
    }

    /// Sends a request and reads datagrams (for a second at most) until `answer` finds the reply in one:
    /// exit records may come first once the registration took effect.
    private static func exchange<T>(
        _ fd: CInt,
        step: OpenError.Step,
        request: (UnsafeMutableRawPointer, Int) -> Int,
        answer: (UnsafeMutableRawBufferPointer, Int) throws(OpenError) -> T?
    ) throws(OpenError) -> T {
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let sent = withUnsafeTemporaryAllocation(byteCount: 512, alignment: 8) { buffer -> Int in
            let length = request(buffer.baseAddress!, buffer.count)
            precondition(length > 0, "TaskExitStats: the request does not fit in 512 bytes")
            return withUnsafePointer(to: &kernel) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, length, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
        }
        guard sent >= 0 else { throw OpenError(step: step, errno: Errno(rawValue: errno)) }
        let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: recommendedReadSize, alignment: 8)
        defer { reply.deallocate() }
        let deadline = Clock.monotonicNanoseconds() + 1_000_000_000
        while true {
            let n = recv(fd, reply.baseAddress, reply.count, 0)
            if n > 0, let found = try answer(reply, n) { return found }
            let code = errno
            guard n > 0 || code == EAGAIN || code == EINTR || code == ENOBUFS else {
                throw OpenError(step: step, errno: Errno(rawValue: n == 0 ? EIO : code))
            }
            let now = Clock.monotonicNanoseconds()
            guard now < deadline else { throw OpenError(step: step, errno: .timedOut) }
            if n > 0 { continue }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, CInt((deadline - now) / 1_000_000) + 1)
        }
    }

    private static func familyID(_ fd: CInt) throws(OpenError) -> UInt16 {
        try exchange(
            fd,
            step: .family,
            request: { CVigilLinux_genl_family_request($0, $1, "TASKSTATS", 1) },
            answer: { reply, n throws(OpenError) -> UInt16? in
                let id = CVigilLinux_genl_family_id(reply.baseAddress, n)
                if id > 0 { return UInt16(id) }
                if id < 0 { throw OpenError(step: .family, errno: Errno(rawValue: -id)) }
                return nil
            }
        )
    }

    private static func register(_ fd: CInt, family: UInt16, cpus: String) throws(OpenError) {
        _ = try exchange(
            fd,
            step: .register,
            request: { CVigilLinux_taskstats_register_request($0, $1, family, cpus, 2) },
            answer: { reply, n throws(OpenError) -> Bool? in
                let answer = CVigilLinux_netlink_ack(reply.baseAddress, n)
                if answer < 0 { throw OpenError(step: .register, errno: Errno(rawValue: -answer)) }
                return answer == 0 ? true : nil
            }
        )
    }
}
