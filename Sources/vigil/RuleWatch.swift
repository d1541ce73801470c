import Logging
import VigilCore
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Watches the rule files and directories for changes, so that `vigil run` reloads when one is saved:
/// every name written, renamed, created, deleted or changed in mode or owner in a rules directory (editors
/// save through a temporary file and a rename; `chmod o+w` makes a file untrusted). Nothing is decoded:
/// any event means "compile again soon", and the daemon's thread debounces.
final class RuleWatch {
    private let inotify: Inotify
    private var buffer = [UInt8](repeating: 0, count: 4096)

    /// Watches each directory given, and the directory of each file given (and for a path that does not
    /// exist yet, the nearest existing directory above it). Nil, after logging why, when inotify fails.
    init?(paths: [String], logger: Logger) {
        do {
            inotify = try Inotify()
        } catch {
            logger.warning("\(error); rule files are reloaded on SIGHUP only")
            return nil
        }
        let mask =
            InotifyMask.closedAfterWriting | InotifyMask.movedTo | InotifyMask.movedFrom | InotifyMask.created
            | InotifyMask.deleted | InotifyMask.attributesChanged | InotifyMask.selfDeleted | InotifyMask.selfMoved
        for path in paths {
            var directory = path
            var info = stat()
            while !directory.isEmpty {
                if stat(directory, &info) == 0 {
                    if (info.st_mode & S_IFMT) != S_IFDIR { directory = Self.parent(of: directory) }
                    break
                }
                directory = Self.parent(of: directory)
            }
            if directory.isEmpty { directory = "/" }
            do {
                _ = try inotify.addWatch(directory, mask: mask)
            } catch {
                logger.warning("\(error); changes there are picked up on SIGHUP only")
            }
        }
    }

    /// The descriptor to poll.
    var descriptor: CInt { inotify.descriptor }

    /// Reads every queued event; true when there was one.
    func drain() -> Bool {
        var any = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(inotify.descriptor, $0.baseAddress, $0.count) }
            if n <= 0 { return any }
            any = true
        }
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
