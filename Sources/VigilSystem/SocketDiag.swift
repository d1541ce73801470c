import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A TCP socket in `LISTEN`, or a UDP socket bound to a port and not connected: something on this host that
/// other hosts (or local processes) can reach, as `SocketDiag.listeners()` found it.
public struct ListeningSocket: Sendable, Hashable {
    /// The transport protocol.
    public enum Proto: String, Sendable {
        /// `IPPROTO_TCP`, in state `TCP_LISTEN`.
        case tcp
        /// `IPPROTO_UDP`, in state `TCP_CLOSE` (bound, not connected: it takes datagrams from anyone).
        case udp
    }

    /// The transport protocol.
    public var proto: Proto
    /// `AF_INET` or `AF_INET6` (`idiag_family`). An IPv6 socket bound to `::` also takes IPv4 unless it set
    /// `IPV6_V6ONLY`; it is still reported once, as IPv6.
    public var family: Int32
    /// The local address in its textual form (`inet_ntop`): `0.0.0.0`, `127.0.0.1`, `::`, `::1`; IPv6 is
    /// compressed as RFC 5952 says, and a v4-mapped address stays IPv6 text (`::ffff:127.0.0.1`).
    public var address: String
    /// The local port, in host byte order (`idiag_sport` is in network order).
    public var port: UInt16
    /// The socket's inode number (`idiag_inode`), as `/proc/PID/fd/N` shows it: `socket:[INODE]`. The
    /// kernel reports it in 32 bits, which is all the socket filesystem hands out.
    public var inode: UInt64
    /// The user that created the socket (`idiag_uid`), seen from our user namespace.
    public var uid: UInt32
    /// True for the wildcard address (`0.0.0.0` or `::`): the socket listens on every interface.
    public var isWildcard: Bool

    /// A listening socket with these fields (for tests and callers that build expectations).
    public init(
        proto: Proto,
        family: Int32,
        address: String,
        port: UInt16,
        inode: UInt64,
        uid: UInt32,
        isWildcard: Bool
    ) {
        self.proto = proto
        self.family = family
        self.address = address
        self.port = port
        self.inode = inode
        self.uid = uid
        self.isWildcard = isWildcard
    }
}

/// The kernel's socket table, asked through one `NETLINK_SOCK_DIAG` socket that is kept and reused: which
/// TCP and UDP sockets listen in this network namespace, with the inode and uid of each.
///
/// Each question is a dump: a `SOCK_DIAG_BY_FAMILY` request (`NLM_F_REQUEST | NLM_F_DUMP`, `struct
/// inet_diag_req_v2`) per address family and protocol, answered by one `struct inet_diag_msg` per socket,
/// several to a datagram, until `NLMSG_DONE`. The kernel produces the dump while we read it, so a dump is a
/// snapshot of no single instant: a socket opened or closed meanwhile may or may not be in it.
///
/// The socket is not bound to a multicast group and needs no capability; only a seccomp filter or
/// `RestrictAddressFamilies=` without `AF_NETLINK` stops it. Not thread-safe: one thread at a time.
///
/// See `man 7 sock_diag`, linux/inet_diag.h, and `ss(8)` from iproute2, which asks the same questions.
public final class SocketDiag {
    /// `TCP_LISTEN` (10) from the kernel's `enum tcp_state` (pinned in CVigilLinux's shims.c).
    static let tcpListen: UInt32 = 10
    /// `TCP_CLOSE` (7): the state of a UDP socket that is bound and not connected (`ss -uln` asks for it).
    static let tcpClose: UInt32 = 7
    /// The receive buffer: the kernel fills a dump datagram up to the size of our last read, at most
    /// 32 KiB (`netlink_recvmsg` caps `max_recvmsg_len`), so a larger one is never used.
    static let bufferSize = 32768

    /// The netlink socket.
    public let descriptor: CInt
    /// How long one read of a dump may wait for the kernel, in milliseconds; the kernel answers at once,
    /// so reaching it means something is wrong, not slow.
    public let timeoutMilliseconds: CInt

    private var isOpen = true
    private var sequence: UInt32 = 0
    private let buffer: UnsafeMutableRawBufferPointer

    /// Opens the socket: `socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)`.
    /// Nothing is bound: the kernel assigns a port id at the first `sendto`.
    public init(timeoutMilliseconds: CInt = 5000) throws(SocketDiagError) {
        let fd = socket(
            AF_NETLINK,
            CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue),
            NETLINK_SOCK_DIAG
        )
        if fd < 0 { throw SocketDiagError(step: .socket, errno: Errno(rawValue: errno)) }
        descriptor = fd
        self.timeoutMilliseconds = max(timeoutMilliseconds, 1)
        buffer = .allocate(byteCount: Self.bufferSize, alignment: 8)
    }

    deinit {
        close()
        buffer.deallocate()
    }

    /// Every TCP socket in `LISTEN` and every UDP socket bound to a port and not connected, IPv4 and IPv6,
    /// in this network namespace: four dumps, (IPv4, IPv6) × (TCP with states `1 << TCP_LISTEN`, UDP with
    /// `1 << TCP_CLOSE`), each read until `NLMSG_DONE`. An `NLMSG_ERROR` answer throws with the kernel's
    /// errno (`ENOENT` when the `tcp_diag`/`udp_diag` handler is missing).
    public func listeners() throws(SocketDiagError) -> [ListeningSocket] {
        var result: [ListeningSocket] = []
        for proto in [ListeningSocket.Proto.tcp, .udp] {
            for family in [AF_INET, AF_INET6] {
                try dump(family: family, proto: proto, into: &result)
            }
        }
        return result
    }

    /// Closes the socket; later calls do nothing. Calling `listeners()` after it traps (S3).
    public func close() {
        guard isOpen else { return }
        isOpen = false
        Syscall.close(descriptor)
    }

    /// One dump: sends the request, then reads datagrams until `NLMSG_DONE` of this request's sequence
    /// number. Messages with another sequence number are left-overs of a dump an earlier call abandoned
    /// after an error, and are skipped.
    private func dump(
        family: CInt,
        proto: ListeningSocket.Proto,
        into result: inout [ListeningSocket]
    )
        throws(SocketDiagError)
    {
        precondition(isOpen, "SocketDiag.listeners() called after close()")
        sequence = sequence == UInt32.max ? 1 : sequence + 1
        let states = proto == .tcp ? UInt32(1) << Self.tcpListen : UInt32(1) << Self.tcpClose
        let ipProto = proto == .tcp ? UInt8(IPPROTO_TCP) : UInt8(IPPROTO_UDP)
        do {
            try send(family: UInt8(family), protocol: ipProto, states: states)
        } catch {
            throw SocketDiagError(step: .send, errno: error)
        }
        let messageSize = CVigilLinux_inet_diag_msg_size()
        while true {
            let count: Int
            do {
                count = try receive()
            } catch {
                throw SocketDiagError(step: .receive, errno: error)
            }
            var message = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: nlmsghdr.self)
            var remaining = CInt(count)
            while CVigilLinux_nlmsg_ok(message, remaining) != 0 {
                let header = message.pointee
                defer { message = CVigilLinux_nlmsg_next(message, &remaining) }
                guard header.nlmsg_seq == sequence else { continue }
                let payload = CVigilLinux_nlmsg_data(message)!
                let payloadLength = Int(header.nlmsg_len) - CVigilLinux_nlmsg_hdrlen()
                switch CInt(header.nlmsg_type) {
                case NLMSG_DONE:
                    // The done message of a dump carries the dump's own result as an int.
                    if payloadLength >= MemoryLayout<CInt>.size {
                        let status = payload.loadUnaligned(as: CInt.self)
                        if status < 0 { throw SocketDiagError(step: .answer, errno: Errno(rawValue: -status)) }
                    }
                    return
                case NLMSG_ERROR:
                    guard payloadLength >= CVigilLinux_nlmsgerr_size() else {
                        throw SocketDiagError(parse: "an NLMSG_ERROR message of \(payloadLength) bytes")
                    }
                    let code = payload.loadUnaligned(as: nlmsgerr.self).error
                    // error 0 is an acknowledgement, which a dump without NLM_F_ACK does not get.
                    if code != 0 { throw SocketDiagError(step: .answer, errno: Errno(rawValue: -code)) }
                case CInt(SOCK_DIAG_BY_FAMILY):
                    guard payloadLength >= messageSize else {
                        throw SocketDiagError(
                            parse: "an inet_diag_msg of \(payloadLength) bytes (\(messageSize) expected)"
                        )
                    }
                    let socket = payload.loadUnaligned(as: inet_diag_msg.self)
                    if let listening = Self.listeningSocket(socket, proto: proto) { result.append(listening) }
                default:
                    continue  // NLMSG_NOOP, or a type a newer kernel may add
                }
            }
            if remaining > 0 {
                throw SocketDiagError(parse: "a datagram whose last \(remaining) bytes are not a whole message")
            }
        }
    }

    /// The listening socket an `inet_diag_msg` describes; nil for a socket bound to no port (an unbound UDP
    /// socket is never in the table, but the check costs nothing) or of a family we did not ask for.
    static func listeningSocket(_ message: inet_diag_msg, proto: ListeningSocket.Proto) -> ListeningSocket? {
        let family = CInt(message.idiag_family)
        guard family == AF_INET || family == AF_INET6 else { return nil }
        let port = UInt16(bigEndian: message.id.idiag_sport)
        guard port != 0 else { return nil }
        let (address, isWildcard) = withUnsafeBytes(of: message.id.idiag_src) { raw -> (String, Bool) in
            let length = family == AF_INET ? 4 : 16
            let wildcard = raw[0..<length].allSatisfy { $0 == 0 }
            return (Self.text(family: family, raw.baseAddress!), wildcard)
        }
        return ListeningSocket(
            proto: proto,
            family: family,
            address: address,
            port: port,
            inode: UInt64(message.idiag_inode),
            uid: message.idiag_uid,
            isWildcard: isWildcard
        )
    }

    /// `inet_ntop(3)` of an address in network byte order (4 or 16 bytes at `bytes`).
    static func text(family: CInt, _ bytes: UnsafeRawPointer) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { out -> String in
            guard inet_ntop(family, bytes, out.baseAddress!, socklen_t(out.count)) != nil else { return "?" }
            return String(cString: out.baseAddress!)
        }
    }

    /// `sendto(2)` of a dump request to the kernel (port id 0).
    @inline(never)
    private func send(family: UInt8, protocol ipProto: UInt8, states: UInt32) throws(Errno) {
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let fd = descriptor
        let request = sequence
        let failure: CInt = withUnsafeTemporaryAllocation(byteCount: 128, alignment: 8) { message in
            let length = CVigilLinux_inet_diag_request(
                message.baseAddress,
                message.count,
                family,
                ipProto,
                states,
                request
            )
            precondition(length > 0, "SocketDiag.send: the dump request does not fit in 128 bytes")
            while true {
                let n = withUnsafePointer(to: &kernel) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, message.baseAddress, length, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                    }
                }
                if n >= 0 { return 0 }
                let code = errno
                if code == EINTR { continue }
                return code
            }
        }
        if failure != 0 { throw Errno(rawValue: failure) }
    }

    /// `recv(2)` of one datagram into the buffer, waiting in `poll(2)` up to `timeoutMilliseconds` when
    /// none is there yet. `MSG_TRUNC` makes the kernel return a datagram's full length, so one larger than
    /// the buffer is caught (as `EMSGSIZE`) instead of parsed cut short.
    @inline(never)
    private func receive() throws(Errno) -> Int {
        while true {
            let n = recv(descriptor, buffer.baseAddress, buffer.count, CInt(MSG_TRUNC))
            if n > buffer.count { throw Errno.messageTooLong }
            if n >= 0 { return n }
            let code = errno
            switch code {
            case EINTR:
                continue
            case EAGAIN:
                var wait = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                let ready = poll(&wait, 1, timeoutMilliseconds)
                if ready == 0 { throw Errno.timedOut }
                if ready < 0 && errno != EINTR { throw Errno(rawValue: errno) }
            case EBADF, EFAULT, ENOTSOCK:
                preconditionFailure("SocketDiag.receive: recv failed with errno \(code) on our own socket")
            default:
                throw Errno(rawValue: code)
            }
        }
    }
}

/// Why asking the kernel for its listening sockets failed (E1): a code named for what the user experiences
/// (N4), the step, the errno, and one line that says what failed and what to do (E2, E4).
public struct SocketDiagError: Error, Sendable, CustomStringConvertible {
    /// What the user experiences; opaque so that codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case permissionDenied
            case addressFamilyRestricted
            case unsupported
            case timedOut
            case malformedAnswer
            case other(CInt)
        }

        private let wrapped: Wrapped

        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// A security policy refused the netlink socket or the request (seccomp, SELinux, AppArmor).
        public static var permissionDenied: Code { Code(.permissionDenied) }
        /// `AF_NETLINK` sockets are not allowed here (`EAFNOSUPPORT`, what systemd's
        /// `RestrictAddressFamilies=` returns).
        public static var addressFamilyRestricted: Code { Code(.addressFamilyRestricted) }
        /// The kernel has no socket diagnostics for the protocol: `EPROTONOSUPPORT` at `socket` (built
        /// without `CONFIG_INET_DIAG`), or `ENOENT` in the answer (the `tcp_diag`/`udp_diag` module is not
        /// loaded and could not be).
        public static var unsupported: Code { Code(.unsupported) }
        /// The kernel did not answer within the timeout.
        public static var timedOut: Code { Code(.timedOut) }
        /// The answer did not have the layout these headers describe.
        public static var malformedAnswer: Code { Code(.malformedAnswer) }
        /// Any other errno.
        public static func other(_ errno: Errno) -> Code { Code(.other(errno.rawValue)) }

        /// The code for `errno` at `step`.
        init(errno: Errno?, step: Step) {
            guard let errno else {
                self = .malformedAnswer
                return
            }
            switch errno {
            case .notPermitted, .permissionDenied: self = .permissionDenied
            case .addressFamilyNotSupported where step == .socket: self = .addressFamilyRestricted
            case .protocolNotSupported where step == .socket: self = .unsupported
            case .noSuchFileOrDirectory where step == .answer: self = .unsupported
            case .timedOut where step == .receive: self = .timedOut
            default: self = .other(errno)
            }
        }

        /// The code's name, e.g. `permissionDenied`.
        public var description: String {
            switch wrapped {
            case .permissionDenied: "permissionDenied"
            case .addressFamilyRestricted: "addressFamilyRestricted"
            case .unsupported: "unsupported"
            case .timedOut: "timedOut"
            case .malformedAnswer: "malformedAnswer"
            case .other(let code): "other(\(code))"
            }
        }
    }

    /// The step of `SocketDiag` that failed.
    public enum Step: Sendable, Equatable, CustomStringConvertible {
        /// `socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG)`.
        case socket
        /// Sending the `SOCK_DIAG_BY_FAMILY` dump request.
        case send
        /// Reading the dump.
        case receive
        /// The kernel answered the request with an error (`NLMSG_ERROR`, or a negative `NLMSG_DONE` status).
        case answer
        /// Decoding the answer.
        case parse

        /// What the step does, for messages.
        public var description: String {
            switch self {
            case .socket: "opening a NETLINK_SOCK_DIAG socket"
            case .send: "sending the SOCK_DIAG_BY_FAMILY dump request"
            case .receive: "reading the socket dump"
            case .answer: "the kernel's answer to the socket dump request"
            case .parse: "decoding the socket dump"
            }
        }
    }

    /// What the user experiences.
    public let code: Code
    /// Which step failed.
    public let step: Step
    /// The errno the step returned; nil for `.parse`.
    public let errno: Errno?
    /// What failed → cause → what to do, one line.
    public let message: String
    /// The underlying error (the `Errno`), nil for `.parse`.
    public let cause: (any Error & Sendable)?
    /// Where the error was made.
    public let fileID: String
    /// Where the error was made.
    public let line: Int

    /// The error for `errno` returned at `step`.
    public init(step: Step, errno: Errno, fileID: String = #fileID, line: Int = #line) {
        self.code = Code(errno: errno, step: step)
        self.step = step
        self.errno = errno
        self.cause = errno
        self.fileID = fileID
        self.line = line
        self.message = Self.message(code: code, step: step, what: "returned '\(errno)'")
    }

    /// The error for an answer that could not be decoded: `what` names the part that was wrong.
    public init(parse what: String, fileID: String = #fileID, line: Int = #line) {
        self.code = .malformedAnswer
        self.step = .parse
        self.errno = nil
        self.cause = nil
        self.fileID = fileID
        self.line = line
        self.message = Self.message(code: code, step: .parse, what: "found \(what)")
    }

    /// One line (E1).
    public var description: String { message }

    /// The message, the code and the cause, one per line, with where the error was made.
    public func detailedDescription() -> String {
        var lines = [message, "  code: \(code) at step \(step) (\(fileID):\(line))"]
        if let cause, let errno {
            lines.append("  cause: \(String(describing: type(of: cause))): \(cause) (errno \(errno.rawValue))")
        }
        return lines.joined(separator: "\n")
    }

    private static func message(code: Code, step: Step, what: String) -> String {
        let failed = "Failed to list listening sockets: \(step) \(what)."
        switch code {
        case .addressFamilyRestricted:
            return failed + " Netlink sockets are not allowed for this process;"
                + " add AF_NETLINK to 'RestrictAddressFamilies=' in vigil.service."
        case .permissionDenied:
            return failed + " A security policy refused it (seccomp SystemCallFilter=, SELinux or AppArmor);"
                + " allow NETLINK_SOCK_DIAG sockets for vigil."
        case .unsupported:
            return failed + " This kernel has no socket diagnostics for TCP/UDP (CONFIG_INET_DIAG,"
                + " CONFIG_INET_TCP_DIAG, CONFIG_INET_UDP_DIAG); load them with 'modprobe tcp_diag udp_diag'."
        case .timedOut:
            return failed + " The kernel did not answer; retry, and report it if it persists."
        case .malformedAnswer:
            return failed + " The kernel's answer does not match the inet_diag layout vigil was built with;"
                + " rebuild vigil against this kernel's headers."
        default:
            return failed + " Retry; if it persists, run 'ss -tuln' to see whether this host answers socket dumps."
        }
    }
}
