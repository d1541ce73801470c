import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The whole content of a file, read plainly (a writer may hold it open); nil when it cannot be opened.
public func fileBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += chunk[0..<n]
    }
    return out
}

/// Waits (on inotify, not by sleeping) until `path` exists and `predicate` holds for its content, or the
/// deadline passes; returns the last content seen.
@discardableResult
public func waitForFile(
    _ path: String,
    timeoutMilliseconds: Int = 10_000,
    until predicate: ([UInt8]) -> Bool = { _ in true }
) -> [UInt8]? {
    let slash = path.lastIndex(of: "/")!
    let directory = String(path[..<slash])
    guard let inotify = try? Inotify() else { return nil }
    // Every change in the directory wakes the wait (a file created, written, renamed in).
    _ = try? inotify.addWatch(directory, mask: 0x2 | 0x8 | 0x80 | 0x100 | 0x200 | 0x40)
    let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
    var buffer = [UInt8](repeating: 0, count: 4096)
    var last: [UInt8]?
    while true {
        last = fileBytes(path)
        if let content = last, predicate(content) { return content }
        let now = Clock.monotonicNanoseconds()
        if now >= deadline { return last }
        var pfd = pollfd(fd: inotify.descriptor, events: Int16(POLLIN), revents: 0)
        if poll(&pfd, 1, Int32(min((deadline - now) / 1_000_000 + 1, 1000))) > 0 {
            _ = buffer.withUnsafeMutableBytes { read(inotify.descriptor, $0.baseAddress, $0.count) }
        }
    }
}
