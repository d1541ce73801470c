import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Follows a file that another process appends lines to (Vigil's JSON Lines alert file), waking on inotify
/// `IN_MODIFY` rather than sleeping: `next(timeoutMilliseconds:)` returns the next complete line the moment
/// it is written, or nil at the deadline. The wake-up time is recorded, so callers can measure latency.
public final class LineFollower: @unchecked Sendable {
    // @unchecked Sendable: used by one thread at a time.

    public let path: String
    private let inotify: Inotify
    private var fd: CInt = -1
    private var pending: [UInt8] = []
    private var lines: [(String, UInt64)] = []
    private var head = 0
    private var buffer = [UInt8](repeating: 0, count: 65536)
    private var eventBuffer = [UInt8](repeating: 0, count: 4096)

    /// Creates the file if needed (empty) and starts following from its current end (or its start).
    public init(path: String, fromStart: Bool = false) throws(HarnessError) {
        self.path = path
        do { inotify = try Inotify() } catch { throw HarnessError(error.description) }
        let created = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
        if created >= 0 { close(created) }
        do {
            _ = try inotify.addWatch(path, mask: 0x2 | 0x8)  // IN_MODIFY | IN_CLOSE_WRITE
        } catch {
            throw HarnessError(error.description)
        }
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HarnessError("Failed to open '\(path)': errno \(errno)") }
        if !fromStart { lseek(fd, 0, SEEK_END) }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The next complete line and the monotonic time (ns) it was seen, or nil after `timeoutMilliseconds`.
    public func next(timeoutMilliseconds: Int) -> (line: String, seenAt: UInt64)? {
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while true {
            if let line = popLine() { return line }
            // One buffer at a time: a follower far behind (a million alert lines) keeps a bounded queue.
            while readChunk() {
                if let line = popLine() { return line }
            }
            let now = Clock.monotonicNanoseconds()
            if now >= deadline { return nil }
            var pfd = pollfd(fd: inotify.descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, Int32((deadline - now) / 1_000_000) + 1) > 0 {
                _ = eventBuffer.withUnsafeMutableBytes { read(inotify.descriptor, $0.baseAddress, $0.count) }
            }
        }
    }

    /// Every complete line available now (without waiting).
    public func drain() -> [String] {
        while readChunk() {}
        defer {
            lines.removeAll()
            head = 0
        }
        return lines[head...].map(\.0)
    }

    private func popLine() -> (line: String, seenAt: UInt64)? {
        guard head < lines.count else { return nil }
        let line = lines[head]
        head += 1
        if head == lines.count {
            lines.removeAll(keepingCapacity: true)
            head = 0
        }
        return line
    }

    /// Reads one buffer and queues the complete lines in it; false when nothing was there.
    private func readChunk() -> Bool {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return false }
        let now = Clock.monotonicNanoseconds()
        pending.append(contentsOf: buffer[0..<n])
        var start = 0
        while let newline = pending[start...].firstIndex(of: 0x0A) {
            lines.append((String(decoding: pending[start..<newline], as: UTF8.self), now))
            start = newline + 1
        }
        pending.removeSubrange(0..<start)
        return true
    }
}
