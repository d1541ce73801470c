import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A bound `AF_UNIX` datagram socket that collects what a syslog sink sends, as the syslog daemon would.
public final class SyslogReceiver: @unchecked Sendable {
    // @unchecked Sendable: the socket and what was received live in `state`, behind its mutex (shared with
    // the background drainer of `keepDraining`); `drainer` is touched by the owner's thread only.

    /// What the owner and the drainer share. The drainer holds this, never the receiver, so the receiver's
    /// deinit (which joins the drainer) never runs on the drainer's thread.
    private struct State {
        var descriptor: CInt
        var received: [String] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var stopping = false

        /// Takes every datagram waiting on the socket.
        mutating func drain() {
            guard descriptor >= 0 else { return }
            let fd = descriptor
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { return }
                received.append(String(decoding: buffer[0..<n], as: UTF8.self))
            }
        }
    }

    public let path: String
    private let state: Locked<State>
    private var drainer: ThreadHandle?

    /// Binds a new socket at `path` (removing a stale one) with a 1 MiB receive buffer.
    public init(path: String) throws(HarnessError) {
        self.path = path
        unlink(path)
        let descriptor = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
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
        state = Locked(State(descriptor: descriptor))
    }

    deinit { close() }

    /// Every datagram received so far, oldest first.
    public func datagrams() -> [String] {
        state.withLock { state in
            state.drain()
            return state.received
        }
    }

    /// Reads the socket on a thread of its own from now on, as journald or rsyslog do. The kernel queues
    /// only `net.unix.max_dgram_qlen` datagrams for a reader (10 by default where systemd does not raise
    /// it to 512): a receiver read only now and then would make the sink back off. `close()` stops it.
    public func keepDraining() {
        guard drainer == nil else { return }
        let shared = state
        drainer = Threads.spawn(name: "vigil-syslog-rx") {
            while true {
                let fd = shared.withLock { $0.stopping ? -1 : $0.descriptor }
                guard fd >= 0 else { return }
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, 100)
                shared.withLock { $0.drain() }
            }
        }
    }

    /// Waits until at least `count` datagrams have arrived in all, or `timeoutSeconds` passed.
    public func waitForDatagrams(count: Int, timeoutSeconds: Double) -> Bool {
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutSeconds * 1e9)
        while true {
            let (seen, fd) = state.withLock { state in
                state.drain()
                return (state.received.count, state.descriptor)
            }
            if seen >= count { return true }
            let now = Clock.monotonicNanoseconds()
            guard now < deadline, fd >= 0 else { return false }
            // With a background drainer this poll may miss what it takes: wake at least every 50 ms.
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, min(50, CInt((deadline - now) / 1_000_000) + 1))
        }
    }

    /// Closes and removes the socket: senders get `ENOENT` (or `ECONNREFUSED`) afterwards. The drainer
    /// sees `stopping` within 100 ms and is joined first, so the descriptor is never closed under it.
    public func close() {
        state.withLock { $0.stopping = true }
        if let drainer {
            Threads.join(drainer)
            self.drainer = nil
        }
        let removed = state.withLock { state -> Bool in
            guard state.descriptor >= 0 else { return false }
            Glibc.close(state.descriptor)
            state.descriptor = -1
            return true
        }
        if removed { unlink(path) }
    }
}
