import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A bound `AF_UNIX` datagram socket that collects what a syslog sink sends, as the syslog daemon would.
public final class SyslogReceiver: @unchecked Sendable {
    // @unchecked Sendable: driven by one test thread at a time.

    public let path: String
    private var descriptor: CInt
    private var received: [String] = []
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)

    /// Binds a new socket at `path` (removing a stale one) with a 1 MiB receive buffer.
    public init(path: String) throws(HarnessError) {
        self.path = path
        unlink(path)
        descriptor = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw HarnessError("Failed to create a datagram socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(descriptor)
            throw HarnessError("Failed to bind '\(path)': longer than 107 bytes; use a shorter directory")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw HarnessError("Failed to bind '\(path)': \(String(cString: strerror(code)))")
        }
        // 8 MiB (SO_RCVBUFFORCE, as root) so a burst waits in the socket instead of pushing back on the sink.
        var size: CInt = 8 << 20
        if setsockopt(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<CInt>.size)) != 0 {
            size = 1 << 20
            _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        }
    }

    deinit { close() }

    /// Every datagram received so far, oldest first.
    public func datagrams() -> [String] {
        drain()
        return received
    }

    /// Waits until at least `count` datagrams have arrived in all, or `timeoutSeconds` passed.
    public func waitForDatagrams(count: Int, timeoutSeconds: Double) -> Bool {
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutSeconds * 1e9)
        while true {
            drain()
            if received.count >= count { return true }
            let now = Clock.monotonicNanoseconds()
            guard now < deadline, descriptor >= 0 else { return false }
            var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, CInt((deadline - now) / 1_000_000) + 1)
        }
    }

    /// Closes and removes the socket: senders get `ENOENT` (or `ECONNREFUSED`) afterwards.
    public func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
        unlink(path)
    }

    /// Takes every datagram waiting on the socket.
    private func drain() {
        guard descriptor >= 0 else { return }
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return }
            received.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
    }
}
