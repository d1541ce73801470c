import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A bound `AF_UNIX` datagram socket that collects what a syslog sink sends, as the syslog daemon would.
public final class SyslogReceiver: @unchecked Sendable {
    // @unchecked Sendable: the socket, the buffer and what was received are touched under `mutex` (the
    // background drainer of `keepDraining` and the caller's thread).

    public let path: String
    private var descriptor: CInt
    private var received: [String] = []
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private let mutex = Locked(())
    private var drainer: ThreadHandle?
    private var stopping = false

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
        mutex.withLock { _ in
            drain()
            return received
        }
    }

    /// Reads the socket on a thread of its own from now on, as journald or rsyslog do. The kernel queues
    /// only `net.unix.max_dgram_qlen` datagrams for a reader (10 by default where systemd does not raise
    /// it to 512): a receiver read only now and then would make the sink back off.
    public func keepDraining() {
        guard drainer == nil else { return }
        // Weak: a receiver dropped without close() ends its drainer at the next wake-up.
        drainer = Threads.spawn(name: "vigil-syslog-rx") { [weak self] in
            while let receiver = self {
                let fd = receiver.mutex.withLock { _ in receiver.stopping ? -1 : receiver.descriptor }
                guard fd >= 0 else { return }
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, 100)
                receiver.mutex.withLock { _ in receiver.drain() }
            }
        }
    }

    /// Waits until at least `count` datagrams have arrived in all, or `timeoutSeconds` passed.
    public func waitForDatagrams(count: Int, timeoutSeconds: Double) -> Bool {
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutSeconds * 1e9)
        while true {
            let (seen, fd) = mutex.withLock { _ in
                drain()
                return (received.count, descriptor)
            }
            if seen >= count { return true }
            let now = Clock.monotonicNanoseconds()
            guard now < deadline, fd >= 0 else { return false }
            // With a background drainer this poll may miss what it takes: wake at least every 50 ms.
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, min(50, CInt((deadline - now) / 1_000_000) + 1))
        }
    }

    /// Closes and removes the socket: senders get `ENOENT` (or `ECONNREFUSED`) afterwards.
    public func close() {
        // The drainer is not joined (close may run in its own thread, from deinit): it sees `stopping` at its
        // next wake-up, within 100 ms, and only ever reads the socket under the lock, after this.
        mutex.withLock { _ in
            stopping = true
            guard descriptor >= 0 else { return }
            Glibc.close(descriptor)
            descriptor = -1
            unlink(path)
        }
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
