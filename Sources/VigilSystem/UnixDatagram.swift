import CVigilLinux

#if canImport(Glibc)
import Glibc
#endif

/// The `sd_notify(3)` protocol without libsystemd: datagrams such as `READY=1` sent to the Unix socket named
/// by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace). See `man 3 sd_notify`.
public enum ServiceNotify {
    /// Sends `state` (e.g. "READY=1\nSTATUS=watching 3 files") when `$NOTIFY_SOCKET` is set; otherwise does nothing.
    /// Returns false when the socket is set but the send failed.
    @discardableResult
    public static func send(_ state: String) -> Bool {
        guard let raw = getenv("NOTIFY_SOCKET") else { return true }
        let path = String(cString: raw)
        guard !path.isEmpty else { return true }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Syscall.close(fd) }
        return UnixAddress.withAddress(path) { address, length in
            let bytes = Array(state.utf8)
            let sent = bytes.withUnsafeBytes {
                sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), address, length)
            }
            return sent == bytes.count
        } ?? false
    }
}

/// A bound `AF_UNIX` datagram socket that receives notify messages (the service manager's side; used by
/// `vigil demo`, the tests and the benchmarks to learn when a daemon they started is ready).
public final class NotifyListener: @unchecked Sendable {
    // @unchecked Sendable: used by one thread at a time.

    public let path: String
    private let descriptor: CInt

    /// Binds a new socket at `path` (removing a stale one).
    public init?(path: String) {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        let ok = UnixAddress.withAddress(path) { address, length in bind(fd, address, length) == 0 } ?? false
        guard ok else {
            Syscall.close(fd)
            return nil
        }
        self.path = path
        descriptor = fd
    }

    deinit {
        Syscall.close(descriptor)
        unlink(path)
    }

    /// Waits up to `timeoutMilliseconds` for a datagram containing the line `line` (e.g. "READY=1").
    public func waitFor(_ line: String, timeoutMilliseconds: Int) -> Bool {
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let now = Clock.monotonicNanoseconds()
            if now >= deadline { return false }
            var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let remaining = Int32((deadline - now) / 1_000_000) + 1
            if poll(&pfd, 1, remaining) <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n <= 0 { continue }
            let text = String(decoding: buffer[0..<n], as: UTF8.self)
            if text.split(separator: "\n").contains(where: { $0 == line }) { return true }
        }
    }
}

/// Builds a `sockaddr_un` for a path (`@` prefix: abstract namespace).
enum UnixAddress {
    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            if !abstract { raw[bytes.count] = 0 }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}
