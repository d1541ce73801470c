import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A netlink socket subscribed to the kernel's process events connector: every fork, exec, uid/gid change,
/// comm change, core dump and exit on the host, as datagrams that `ProcEventDecoder` (VigilCore) decodes.
///
/// Opening it: `socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR)`, a receive
/// buffer forced to `receiveBufferSize` (`SO_RCVBUFFORCE`, which needs `CAP_NET_ADMIN`; without it
/// `SO_RCVBUF`, which `net.core.rmem_max` caps), `bind` to the multicast group `CN_IDX_PROC`, and a
/// `PROC_CN_MCAST_LISTEN` message to the kernel. The kernel answers the subscription with a
/// `PROC_EVENT_NONE` acknowledgement event in the same stream.
///
/// The kernel reports events only to listeners in the initial user and pid namespaces, and ignores the
/// subscription of any other one *silently*: in most containers the socket opens and binds and then
/// stays quiet. `ConnectorProbe` (VigilDaemon) checks that events really arrive (S6).
///
/// See `man 7 netlink`, linux/cn_proc.h and the kernel's drivers/connector/cn_proc.c.
public final class ProcConnector: @unchecked Sendable {
    // @unchecked Sendable: the descriptor is an int and recvfrom/sendto are thread-safe; `receive` and
    // `close` are used by the one source thread that owns the connector (C1).

    /// The buffer size asked for by default: 2,000 rapid spawns lost no event with it (DESIGN.md).
    public static let defaultReceiveBufferSize = 4 << 20

    /// A buffer large enough for any datagram the connector sends (it sends one event per datagram today;
    /// a page holds about 50).
    public static let recommendedReadSize = 8192

    /// The netlink socket, for registering with `Epoll`.
    public let descriptor: CInt

    /// How the receive buffer was sized.
    public let receiveBuffer: ReceiveBuffer

    /// The netlink port id the kernel assigned to the socket at `bind` (`nl_pid` from `getsockname`).
    public let portID: UInt32

    /// Datagrams `receive` dropped because a process, not the kernel, sent them (`nl_pid` != 0): anyone may
    /// send a unicast netlink message to our port and forge process events. Read by the owning thread.
    public private(set) var forgedDatagrams = 0

    private var isOpen = true

    /// The kernel's exit records (taskstats), when they could be set up: they name a process that was gone
    /// before `/proc` could be read at its exec. Set by the owner before the reader thread starts; handed
    /// over with the connector, and closed with it.
    public var exitRecords: TaskExitStats?

    /// The receive buffer actually set up.
    public struct ReceiveBuffer: Sendable, Equatable {
        /// The size asked for, in bytes.
        public let requested: Int
        /// `SO_RCVBUF` read back after setting it. The kernel doubles the value it is given (half is
        /// bookkeeping overhead), and `SO_RCVBUF` alone is capped by `net.core.rmem_max`.
        public let effective: Int
        /// True when `SO_RCVBUFFORCE` was accepted; false when it failed and `SO_RCVBUF` was used instead.
        public let forced: Bool
        /// Why `SO_RCVBUFFORCE` failed (`EPERM`: no `CAP_NET_ADMIN`), nil when `forced`.
        public let forceError: Errno?

        /// A description of a receive buffer (the connector makes its own; this is for results and tests).
        public init(requested: Int, effective: Int, forced: Bool, forceError: Errno?) {
            self.requested = requested
            self.effective = effective
            self.forced = forced
            self.forceError = forceError
        }
    }

    /// The outcome of one `receive`.
    public enum Receive: Sendable, Equatable {
        /// A datagram of this many bytes from the kernel is in the buffer.
        case datagram(Int)
        /// Nothing to read now (`EAGAIN`): wait in epoll.
        case wouldBlock
        /// The kernel dropped events because the receive buffer was full (`ENOBUFS`): resynchronise from
        /// /proc and count it (E5). The socket stays usable.
        case lost
    }

    /// Opens, sizes, binds and subscribes the socket; see the type's documentation.
    public init(receiveBufferSize: Int = ProcConnector.defaultReceiveBufferSize) throws(ProcConnectorError) {
        let fd = socket(
            AF_NETLINK,
            CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue),
            NETLINK_CONNECTOR
        )
        if fd < 0 { throw ProcConnectorError(step: .socket, errno: Errno(rawValue: errno)) }

        let requested = max(receiveBufferSize, 0)
        let clamped = CInt(clamping: requested)
        var forceError: Errno?
        if CVigilLinux_setsockopt_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, clamped) != 0 {
            forceError = Errno(rawValue: errno)
            // FIXME(kernel-baseline): without CAP_NET_ADMIN the buffer is capped by net.core.rmem_max;
            // a failure here only leaves the default size, so it is not fatal.
            _ = CVigilLinux_setsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, clamped)
        }
        var effective: CInt = 0
        _ = CVigilLinux_getsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, &effective)
        receiveBuffer = ReceiveBuffer(
            requested: requested,
            effective: Int(effective),
            forced: forceError == nil,
            forceError: forceError
        )

        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_pid = 0  // the kernel assigns a unique port id
        address.nl_groups = UInt32(CN_IDX_PROC)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
            }
        }
        if bound != 0 {
            let code = Errno(rawValue: errno)
            Syscall.close(fd)
            throw ProcConnectorError(step: .bind, errno: code)
        }
        var assigned = sockaddr_nl()
        var assignedLength = socklen_t(MemoryLayout<sockaddr_nl>.size)
        _ = withUnsafeMutablePointer(to: &assigned) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &assignedLength) }
        }
        portID = assigned.nl_pid
        descriptor = fd
        do {
            try Self.send(fd, operation: UInt32(PROC_CN_MCAST_LISTEN.rawValue))
        } catch {
            Syscall.close(fd)
            isOpen = false
            throw ProcConnectorError(step: .subscribe, errno: error)
        }
    }

    deinit { close() }

    /// `recvfrom(2)` of one datagram into `buffer`, without blocking. Datagrams not sent by the kernel are
    /// dropped and counted in `forgedDatagrams`. A datagram larger than `buffer` is cut to its size (the
    /// decoder counts the cut message as malformed); use `recommendedReadSize`.
    ///
    /// Hot path: one system call per datagram, no allocation.
    @inline(never)
    public func receive(into buffer: UnsafeMutableRawBufferPointer) -> Receive {
        while true {
            let n = Self.receiveFromKernel(descriptor, into: buffer, forged: &forgedDatagrams)
            if n >= 0 { return .datagram(n) }
            let code = errno
            switch code {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case ENOBUFS: return .lost
            case EBADF, EFAULT, ENOTSOCK, EINVAL:
                preconditionFailure("ProcConnector.receive: recvfrom failed with errno \(code) on our own socket")
            default:
                // The connector only ever leaves ENOBUFS as a pending socket error; any other one means the
                // stream cannot be trusted either, so it is treated as loss and resynchronised.
                return .lost
            }
        }
    }

    /// `recvfrom(2)` of one datagram from the kernel on a netlink socket: its length, or -1 with `errno`.
    /// Datagrams another process sent (`nl_pid` != 0: anyone may unicast to our port, not to a kernel group)
    /// are dropped and counted in `forged`. Shared by every netlink reader that trusts only the kernel.
    @inline(__always)
    static func receiveFromKernel(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer, forged: inout Int) -> Int {
        var sender = sockaddr_nl()
        while true {
            var length = socklen_t(MemoryLayout<sockaddr_nl>.size)
            let n = withUnsafeMutablePointer(to: &sender) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, buffer.baseAddress, buffer.count, 0, $0, &length)
                }
            }
            guard n >= 0 else { return -1 }
            // nl_pid 0 is the kernel.
            if sender.nl_pid == 0 { return n }
            forged += 1
        }
    }

    /// Sends `PROC_CN_MCAST_IGNORE` (the kernel stops counting this listener) and closes the socket. Call it
    /// once the reader thread has stopped; later calls do nothing.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        try? Self.send(descriptor, operation: UInt32(PROC_CN_MCAST_IGNORE.rawValue))
        Syscall.close(descriptor)
        exitRecords?.close()
    }

    /// `sendto(2)` of a subscribe/unsubscribe message to the kernel (port 0). The connector's kernel side
    /// is synchronous: when `sendto` returns, the kernel has processed the message.
    @inline(never)
    static func send(_ fd: CInt, operation: UInt32) throws(Errno) {
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let sent: Int = withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { buffer in
            let length = CVigilLinux_proc_cn_mcast_message(buffer.baseAddress, buffer.count, operation, 0)
            precondition(length > 0, "ProcConnector.send: the subscribe message does not fit in 64 bytes")
            while true {
                let n = withUnsafePointer(to: &kernel) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, buffer.baseAddress, length, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                    }
                }
                if n >= 0 { return 0 }
                let code = errno
                if code == EINTR { continue }
                return Int(code)
            }
        }
        if sent != 0 { throw Errno(rawValue: CInt(sent)) }
    }
}
