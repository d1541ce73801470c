import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Which Linux namespaces a process is in, read from `/proc/PID/ns/*` (cold path: `vigil probe` and the
/// start-up probe). The proc connector reports only to listeners in the initial pid and user namespaces and
/// exists only in the initial network namespace, so these explain a connector that stays silent.
/// See `man 7 namespaces`.
public enum Namespaces {
    /// A namespace type, named as in `/proc/PID/ns/`.
    public enum Kind: String, Sendable, CaseIterable {
        case pid, user, net
    }

    /// The fixed inode numbers of the initial pid and user namespaces (`PROC_PID_INIT_INO`,
    /// `PROC_USER_INIT_INO` in the kernel's include/linux/proc_ns.h, unchanged since Linux 3.8). The initial
    /// network namespace has no fixed number.
    public static func initialInode(_ kind: Kind) -> UInt64? {
        switch kind {
        case .pid: 0xEFFF_FFFC
        case .user: 0xEFFF_FFFD
        case .net: nil
        }
    }

    /// The inode number of `kind` for `process` (`self`, `1`, a pid), from the `/proc/PROCESS/ns/KIND` link
    /// text `pid:[4026531836]`. Reading another process's links needs ptrace access to it: `EACCES` when
    /// PID 1 holds capabilities this process lacks.
    public static func inode(_ kind: Kind, of process: String = "self", root: String = "/proc") -> Result<UInt64, Errno>
    {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = readlink("\(root)/\(process)/ns/\(kind.rawValue)", &buffer, buffer.count - 1)
        guard n > 0 else { return .failure(Errno(rawValue: errno)) }
        let text = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let open = text.firstIndex(of: "["), let close = text.lastIndex(of: "]"), open < close,
            let value = UInt64(text[text.index(after: open)..<close])
        else { return .failure(.invalidArgument) }
        return .success(value)
    }

    /// Whether this process is in the initial namespace of `kind`: by the fixed inode for pid and user,
    /// by comparison with PID 1 for net (nil when that cannot be read).
    public static func isInitial(_ kind: Kind, root: String = "/proc") -> Bool? {
        guard case .success(let mine) = inode(kind, root: root) else { return nil }
        if let initial = initialInode(kind) { return mine == initial }
        guard case .success(let first) = inode(kind, of: "1", root: root) else { return nil }
        return mine == first
    }

    /// Moves the calling *thread* into a new, empty network namespace (`unshare(CLONE_NEWNET)`, needs
    /// `CAP_SYS_ADMIN`). For tests that show what the connector does outside the initial namespace; call it
    /// only on a thread that ends afterwards.
    public static func _unshareNetworkOfCallingThread() throws(Errno) {
        if CVigilLinux_unshare_network() != 0 { throw Errno(rawValue: errno) }
    }
}
