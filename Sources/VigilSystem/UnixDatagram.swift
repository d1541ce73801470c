import CVigilLinux

#if canImport(Glibc)
import Glibc
#endif

/// The `sd_notify(3)` protocol without libsystemd: datagrams such as `READY=1` sent to the Unix socket named
/// by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace). See `man 3 sd_notify`. Policy-free:
/// the daemon decides when each message is due; these only say it.
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
                // Never waits: a manager whose queue is full (net.unix.max_dgram_qlen, 10 here) would
                // otherwise block the caller, and WATCHDOG=1 is sent from the matcher's loop.
                sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), address, length)
            }
            return sent == bytes.count
        } ?? false
    }

    /// `READY=1`: start-up is complete (every source is watching), or a reload finished. `status` becomes
    /// the `STATUS=` line `systemctl status` shows.
    @discardableResult
    public static func ready(status: String? = nil) -> Bool {
        send("READY=1" + statusLine(status))
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (the `CLOCK_MONOTONIC` time in microseconds): a reload began.
    /// systemd 253 and later require the timestamp with `Type=notify-reload` (it tells a reload this
    /// process started from an older one); earlier versions ignore it. Follow with `reloaded()`.
    @discardableResult
    public static func reloading(status: String? = nil) -> Bool {
        send("RELOADING=1\nMONOTONIC_USEC=\(Clock.monotonicNanoseconds() / 1000)" + statusLine(status))
    }

    /// `READY=1` again after `reloading()`: the reload is over (whether it applied or was refused).
    @discardableResult
    public static func reloaded(status: String? = nil) -> Bool {
        ready(status: status)
    }

    /// `STOPPING=1`: shutdown began (systemd then waits `TimeoutStopSec=` rather than calling it a crash).
    @discardableResult
    public static func stopping(status: String? = nil) -> Bool {
        send("STOPPING=1" + statusLine(status))
    }

    /// `STATUS=text` alone: a one-line description `systemctl status` shows (newlines become spaces).
    @discardableResult
    public static func status(_ text: String) -> Bool {
        send(String(statusLine(text).dropFirst()))
    }

    /// `WATCHDOG=1`: the keep-alive ping for `WatchdogSec=`.
    @discardableResult
    public static func watchdogPing() -> Bool {
        send("WATCHDOG=1")
    }

    /// The watchdog period systemd asked for, in microseconds, with `sd_watchdog_enabled(3)`'s rules:
    /// `$WATCHDOG_USEC` must be a positive integer, and when `$WATCHDOG_PID` is set it must be this
    /// process's pid (otherwise the variables were inherited from a parent that is the one watched).
    /// nil: no watchdog; send no pings.
    public static func watchdogMicroseconds() -> UInt64? {
        watchdogMicroseconds(
            usec: getenv("WATCHDOG_USEC").map { String(cString: $0) },
            pid: getenv("WATCHDOG_PID").map { String(cString: $0) },
            myPID: getpid()
        )
    }

    /// `watchdogMicroseconds()` on given values (testable without changing the environment).
    public static func watchdogMicroseconds(usec: String?, pid: String?, myPID: Int32) -> UInt64? {
        guard let usec, let period = UInt64(usec), period > 0 else { return nil }
        if let pid {
            guard let owner = Int32(pid), owner > 0, owner == myPID else { return nil }
        }
        return period
    }

    private static func statusLine(_ status: String?) -> String {
        guard let status else { return "" }
        return "\nSTATUS=" + String(status.map { $0 == "\n" ? " " : $0 })
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

    /// One notify message as received: its lines and the `CLOCK_MONOTONIC` time it was read.
    public struct Datagram: Sendable, Equatable {
        /// The message's `KEY=value` lines, in order.
        public let lines: [String]
        /// When `next` read it, in monotonic nanoseconds (for intervals between watchdog pings).
        public let receivedNanoseconds: UInt64

        /// True when one of its lines is exactly `line` (e.g. "READY=1").
        public func contains(_ line: String) -> Bool { lines.contains(line) }

        /// The value of the first `KEY=` line, e.g. `value(of: "STATUS")`.
        public func value(of key: String) -> String? {
            let prefix = key + "="
            return lines.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        }
    }

    /// Every datagram received so far by `next` and `waitFor`, in order (for tests that check the sequence).
    public private(set) var received: [Datagram] = []

    /// Waits up to `timeoutMilliseconds` for the next datagram; nil when none came in time.
    public func next(timeoutMilliseconds: Int) -> Datagram? {
        let deadline = Clock.monotonicNanoseconds() + UInt64(max(0, timeoutMilliseconds)) * 1_000_000
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                let datagram = Datagram(
                    lines: text.split(separator: "\n").map(String.init),
                    receivedNanoseconds: Clock.monotonicNanoseconds()
                )
                received.append(datagram)
                return datagram
            }
            let now = Clock.monotonicNanoseconds()
            if now >= deadline { return nil }
            var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, Int32((deadline - now) / 1_000_000) + 1)
        }
    }

    /// Waits up to `timeoutMilliseconds` for a datagram containing the line `line` (e.g. "READY=1").
    public func waitFor(_ line: String, timeoutMilliseconds: Int) -> Bool {
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while true {
            let now = Clock.monotonicNanoseconds()
            if now >= deadline { return false }
            guard let datagram = next(timeoutMilliseconds: Int((deadline - now) / 1_000_000) + 1) else { continue }
            if datagram.contains(line) { return true }
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
