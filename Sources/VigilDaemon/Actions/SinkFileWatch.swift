import Logging
import Synchronization
import VigilCore
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A counter every writer of a JSON Lines sink compares with the one it opened its file at: when it moved
/// on (the file was rotated away, or SIGHUP asked), the writer reopens the file by name before its next
/// write, so alerts follow the name (`logrotate` without `copytruncate`, or Vigil's own `rotate:` rule).
final class SinkFileGeneration: Sendable {
    let value = Atomic<UInt64>(0)

    /// Makes every writer reopen its file before its next write.
    func bump() { value.add(1, ordering: .releasing) }
}

/// Watches the directories of the JSON Lines sinks for their files being renamed away or deleted (one
/// inotify instance, a watch per directory, the names filtered here), so the writers reopen them.
final class SinkFileWatch {
    private let inotify: Inotify
    /// Watch descriptor → the sink file names in that directory.
    private var names: [Int32: Set<[UInt8]>] = [:]
    private var buffer = [UInt8](repeating: 0, count: 4096)

    /// Watches what it can; a directory that cannot be watched is logged (SIGHUP still reopens).
    init?(paths: [String], logger: Logger) {
        guard let inotify = try? Inotify() else {
            logger.warning("Cannot watch the alert files' directories (inotify); send SIGHUP after rotating them")
            return nil
        }
        self.inotify = inotify
        for path in paths {
            guard let slash = path.lastIndex(of: "/") else { continue }
            let directory = slash == path.startIndex ? "/" : String(path[..<slash])
            let name = Array(path[path.index(after: slash)...].utf8)
            let mask = UInt32(IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR)
            do {
                let wd = try inotify.addWatch(directory, mask: mask)
                names[wd, default: []].insert(name)
            } catch {
                logger.warning(
                    "Cannot watch \(directory) for the rotation of alert file \(path): \(error); send SIGHUP after rotating it"
                )
            }
        }
    }

    var descriptor: CInt { inotify.descriptor }

    /// Reads what the kernel queued; true when one of the sink files was renamed away or deleted.
    func readMovedAway() -> Bool {
        var moved = false
        while true {
            let count = buffer.withUnsafeMutableBytes { read(inotify.descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { return moved }
            let bytes = buffer.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[0..<count]) }
            _ = try? InotifyDecoder.decode(bytes, readTime: 0) { event in
                if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    moved = true
                } else if let wanted = names[event.watch], event.withName({ name, _ in wanted.contains(Array(name)) }) {
                    moved = true
                }
            }
        }
    }
}
